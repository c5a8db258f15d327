"""The REST simulator's wire: a typical HIS vendor's JSON interface.

Requests are POSTed JSON objects with camelCase parameters and the auth fields
(``appId``, ``timestamp`` yyyyMMddHHmmss, ``nonceStr``, ``signType`` MD5 or
HMAC-SHA256, ``sign``) beside them, or the same in ``X-App-Id`` … headers. Answers
are ``{"resultCode", "resultMsg", "data"}``; amounts are yuan strings, times
``yyyy-MM-dd HH:mm:ss`` China time. The signature check is written apart from the
adapter's signer on purpose, so the two sides cannot share a mistake.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from gateway.money import fen_to_yuan, yuan_to_fen

from ..simhis.model import CST

SANDBOX_APP_ID = "YINYI_SANDBOX"
SANDBOX_SECRET = "sandbox-secret-not-for-production"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIMESTAMP_WINDOW = dt.timedelta(minutes=5)

BIZ_TYPES = {"outpatient_registration": "GH", "outpatient_settlement": "MZ",
             "inpatient_deposit": "ZYYJ", "inpatient_settlement": "ZYJS"}
BILL_TYPE_OF = {v: k for k, v in BIZ_TYPES.items()}
# SimHospital refusal code → (the wire's resultCode, its message)
CODES = {
    "CHARGE_NOT_FOUND": "1001", "BILL_PAID": "1002", "AMOUNT_MISMATCH": "1003", "PAYMENT_NOT_FOUND": "1004",
    "REFUND_EXCEEDS": "1005", "PATIENT_NOT_FOUND": "1006", "MIXED_CHARGES": "1008", "INVALID_AMOUNT": "1009",
    "VISIT_NOT_FOUND": "1010", "SPLIT_MISMATCH": "1011", "SETTLEMENT_NOT_FOUND": "1012", "SYSTEM_REFUSED": "1099",
    "INVALID_PARAMETER": "9002",
}
OK = ("0", "成功")
NO_RECORD = ("1007", "未查询到该订单的收费记录")
ALREADY_PAID = ("2001", "该订单已确认收费，请勿重复提交")
ALREADY_REFUNDED = ("2002", "该退费已处理，请勿重复提交")
ALREADY_SETTLED = ("2003", "该医保结算已登记，请勿重复提交")
ALREADY_REVERSED = ("2004", "该医保结算已撤销，请勿重复提交")
SYSTEM_REFUSED = ("1099", "HIS系统维护中，暂停收费业务")
PROCESSING = ("8888", "处理中，请稍后查询")  # a code the shipped configuration does not know
BAD_SIGN = ("9001", "签名校验失败")
BAD_PARAM = "9002"
BAD_TIMESTAMP = ("9003", "请求时间戳超出允许范围")
BAD_APP = ("9004", "应用ID不存在")
HEADER_FIELDS = {"X-App-Id": "appId", "X-Timestamp": "timestamp", "X-Nonce": "nonceStr",
                 "X-Sign-Type": "signType", "X-Sign": "sign"}


class WireError(Exception):
    """A request the simulated HIS answers with one of its error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def envelope(code: str, message: str, data: Any = None) -> web.Response:
    body: dict[str, Any] = {"resultCode": code, "resultMsg": message}
    if data is not None:
        body["data"] = data
    return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="application/json",
                        charset="utf-8")


def yuan(fen: int) -> str:
    return fen_to_yuan(fen)


def local_time(value: dt.datetime) -> str:
    return value.astimezone(CST).strftime(TIME_FORMAT)


def param(params: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise WireError(BAD_PARAM, f"参数{name}不能为空")
        return None
    return str(value)


def fen_param(params: dict[str, Any], name: str) -> int:
    text = param(params, name)
    try:
        return yuan_to_fen(str(text))
    except ValueError:
        raise WireError(BAD_PARAM, f"参数{name}金额格式错误: {text}") from None


def time_param(params: dict[str, Any], name: str) -> dt.datetime:
    text = param(params, name)
    try:
        return dt.datetime.strptime(str(text), TIME_FORMAT).replace(tzinfo=CST).astimezone(dt.UTC)
    except ValueError:
        raise WireError(BAD_PARAM, f"参数{name}时间格式错误，应为yyyy-MM-dd HH:mm:ss") from None


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, str]]:
    """The request's parameters, and the auth fields found in headers (if any)."""
    if request.method == "GET":
        params: Any = dict(request.query)
    else:
        try:
            params = json.loads((await request.read()).decode("utf-8"), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise WireError(BAD_PARAM, "请求报文不是合法的JSON") from None
        if not isinstance(params, dict):
            raise WireError(BAD_PARAM, "请求报文必须是JSON对象")
    headers = {name: request.headers[name] for name in HEADER_FIELDS if name in request.headers}
    return params, headers


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def verify(params: dict[str, Any], headers: dict[str, str], apps: dict[str, str],
           now: dt.datetime) -> None:
    """Check app id, timestamp and signature; raise ``WireError`` with the HIS's code if wrong."""
    if headers:
        signed = {**params, **headers}
        auth = {HEADER_FIELDS[k]: v for k, v in headers.items()}
        sign_key = "X-Sign"
    else:
        signed, auth, sign_key = params, params, "sign"
    app_id = str(auth.get("appId") or "")
    if app_id not in apps:
        raise WireError(*BAD_APP)
    stamp = str(auth.get("timestamp") or "")
    try:
        if stamp.isdigit() and len(stamp) in (10, 13):
            sent = dt.datetime.fromtimestamp(int(stamp) / (1000 if len(stamp) == 13 else 1), dt.UTC)
        else:
            sent = dt.datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=CST)
    except ValueError:
        raise WireError(*BAD_TIMESTAMP) from None
    if abs(now - sent) > TIMESTAMP_WINDOW:
        raise WireError(*BAD_TIMESTAMP)
    pairs = sorted((k, _text(v)) for k, v in signed.items() if k != sign_key and v is not None and v != "")
    text = "&".join(f"{k}={v}" for k, v in pairs)
    secret = apps[app_id]
    sign_type = str(auth.get("signType") or "MD5").upper()
    if sign_type == "MD5":
        expected = hashlib.md5((text + "&key=" + secret).encode()).hexdigest()  # noqa: S324 - the wire's choice
    elif sign_type == "HMAC-SHA256":
        expected = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    else:
        raise WireError(BAD_SIGN[0], f"不支持的签名类型{sign_type}")
    if not hmac.compare_digest(expected.upper(), str(auth.get("sign") or "").upper()):
        raise WireError(*BAD_SIGN)
