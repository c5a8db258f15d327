"""Simulator: the ACP HTTP surface (form requests in, signed ``k=v&…`` answers out) and its faults.

Endpoints: ``POST /gateway/api/backTransReq.do`` (consume, undo, refund),
``POST /gateway/api/queryTrans.do`` (query) and ``POST /`` (file transfer, as the
file-download host serves it). Every answer is HTTP 200 and signed, refusals included.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from channels.wechatpay.sim_faults import Fault, FaultSet
from gateway.testing.simkit import act_out_fault

from . import crypto
from .sim_core import UnionPaySimulator
from .sim_model import AcpError, SimMerchant
from .wire import (
    BACK_TRANS_PATH,
    QUERY_PATH,
    TXN_CONSUME,
    TXN_FILE,
    TXN_QUERY,
    TXN_REFUND,
    TXN_UNDO,
    VERSION,
    WireFormatError,
    decode_answer,
    decode_form,
    encode_answer,
)

SIM_KEY = web.AppKey("unionpay_sim", UnionPaySimulator)
FAULTS_KEY = web.AppKey("unionpay_faults", FaultSet)
ECHO = ("merId", "orderId", "txnTime", "txnType", "txnSubType", "bizType", "txnAmt", "currencyCode",
        "reqReserved", "settleDate")
ACP_PATHS = (BACK_TRANS_PATH, QUERY_PATH, "/")
KINDS = {  # (txnType, txnSubType) -> what it is
    (TXN_CONSUME, "06"): "consume", (TXN_UNDO, "00"): "undo", (TXN_REFUND, "00"): "refund",
}


def answer(sim: UnionPaySimulator, fields: Mapping[str, str]) -> web.Response:
    body = encode_answer(sim.sign({k: v for k, v in fields.items() if v != ""}))
    return web.Response(status=200, body=body, content_type="text/plain", charset="utf-8")


def authenticate(sim: UnionPaySimulator, p: Mapping[str, str]) -> SimMerchant:
    if p.get("version") != VERSION:
        raise AcpError("10", "报文格式错误[version]")
    if p.get("encoding", "").upper() != "UTF-8" or p.get("signMethod") != "01":
        raise AcpError("10", "报文格式错误[encoding/signMethod]")
    if p.get("accessType") != "0":
        raise AcpError("10", "报文格式错误[accessType]")
    m = sim.by_cert.get(p.get("certId", ""))
    if m is None:
        raise AcpError("11", "验证签名失败[certId]")
    if p.get("merId") != m.mer_id:
        raise AcpError("11", "验证签名失败[merId与证书不符]")
    try:
        crypto.verify(p, m.key.public_key())
    except crypto.SignatureError:
        raise AcpError("11") from None
    return m


async def _serve(request: web.Request, handler: Any) -> web.Response:
    sim = request.app[SIM_KEY]
    echo: dict[str, str] = {}
    try:
        try:
            params = decode_form(await request.read())
        except WireFormatError:
            raise AcpError("10") from None
        echo = {k: params[k] for k in ECHO if params.get(k)}
        m = authenticate(sim, params)
        fields = handler(sim, m, params)
        return answer(sim, {**echo, **fields, "respCode": "00", "respMsg": "成功[0000000]"})
    except AcpError as exc:
        return answer(sim, {**echo, "respCode": exc.code, "respMsg": exc.message})


def _back_trans(sim: UnionPaySimulator, m: SimMerchant, p: Mapping[str, str]) -> dict[str, str]:
    kind = KINDS.get((p.get("txnType", ""), p.get("txnSubType", "")))
    if kind is None or p.get("bizType") != "000000":
        raise AcpError("10", "报文格式错误[txnType/txnSubType/bizType]")
    if p.get("channelType") not in ("07", "08"):
        raise AcpError("10", "报文格式错误[channelType]")
    txn = {"consume": sim.consume, "undo": sim.undo, "refund": sim.refund}[kind](m, p)
    return {"queryId": txn.query_id} if kind != "consume" else {}


def _query(sim: UnionPaySimulator, m: SimMerchant, p: Mapping[str, str]) -> dict[str, str]:
    if (p.get("txnType"), p.get("txnSubType")) != (TXN_QUERY, "00") or p.get("bizType") not in ("000000", "000201"):
        raise AcpError("10", "报文格式错误[txnType/txnSubType/bizType]")
    txn = sim.query(m, p)
    msg = txn.result_msg or ""
    return {**txn.fields(), "origRespCode": txn.result_code,
            "origRespMsg": (msg + "[0000000]") if txn.result_code == "00" else msg}


def _file(sim: UnionPaySimulator, m: SimMerchant, p: Mapping[str, str]) -> dict[str, str]:
    if (p.get("txnType"), p.get("txnSubType")) != (TXN_FILE, "01"):
        raise AcpError("10", "报文格式错误[txnType/txnSubType]")
    return sim.file_transfer(m, p)


async def back_trans(request: web.Request) -> web.Response:
    return await _serve(request, _back_trans)


async def query_trans(request: web.Request) -> web.Response:
    return await _serve(request, _query)


async def file_transfer(request: web.Request) -> web.Response:
    return await _serve(request, _file)


def add_routes(app: web.Application) -> None:
    app.router.add_post(BACK_TRANS_PATH, back_trans)
    app.router.add_post(QUERY_PATH, query_trans)
    app.router.add_post("/", file_transfer)


# --- faults -------------------------------------------------------------------------------


def _spoil(resp: web.StreamResponse, kind: str) -> web.StreamResponse:
    """bad_signature: a well-formed signature over something else; no_signature: none at all."""
    if not isinstance(resp, web.Response) or not isinstance(resp.body, bytes):
        return resp
    try:
        fields = decode_answer(resp.body)
    except WireFormatError:
        return resp
    if kind == "no_signature":
        fields.pop("signature", None)
        fields.pop("signPubKeyCert", None)
    elif "signature" in fields:
        raw = bytearray(base64.b64decode(fields["signature"]))
        raw[len(raw) // 2] ^= 0xFF
        fields["signature"] = base64.b64encode(bytes(raw)).decode()
    resp.body = encode_answer(fields)
    return resp


def _error_page(status: int) -> web.Response:
    return web.Response(status=status, text=f"<html><body><h1>{status} Server Error</h1></body></html>",
                        content_type="text/html")


async def _break(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    return await act_out_fault(request, fault.kind, fault.delay_seconds, lambda: _error_page(fault.status))


@web.middleware
async def fault_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/_sim") or request.path not in ACP_PATHS:
        return await handler(request)
    fault = request.app[FAULTS_KEY].pick(request.method, request.path)
    if fault is None:
        return await handler(request)
    if fault.when == "before" and fault.kind not in ("bad_signature", "no_signature"):
        broken = await _break(request, fault)
        if broken is not None:
            return broken
    resp = await handler(request)
    if fault.kind in ("bad_signature", "no_signature"):
        return _spoil(resp, fault.kind)
    if fault.when == "after":
        broken = await _break(request, fault)
        if broken is not None:
            return broken
    return resp
