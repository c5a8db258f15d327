"""One HTTP exchange with the system, and the reading of its result envelope.

This is where transport failures become the core's HIS errors: a timeout is
``HisTimeout``; a refused or reset connection and any 5xx are ``HisUnavailable``;
an answer that is not a JSON object, lacks its result code or carries a code the
configuration does not know is ``HisProtocolError``. JSON numbers are parsed as
``Decimal`` so a yuan amount written as a number stays exact.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import aiohttp

from gateway.errors import HisProtocolError, HisTimeout, HisUnavailable
from gateway.mapping import MISSING, dig

from .config import Operation, ResultRule, RestHisConfig
from .signing import Signer, param_text


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    RECORDED = "recorded"  # "already recorded": an idempotent repeat of a write-back
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    code: str
    message: str
    root: dict[str, Any]


def plain(value: Any) -> Any:
    """The answer with Decimals as text, for ``raw`` fields that may be stored as JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


class RestClient:
    def __init__(self, config: RestHisConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self.signer = Signer(config.auth)

    async def call(self, name: str, op: Operation, values: dict[str, Any]) -> Answer:
        """Render, sign and send ``op``; return its classified answer."""
        try:
            params = op.mapping.render(op.request, {**values, "now": dt.datetime.now(dt.UTC)})
        except (ValueError, TypeError, KeyError) as exc:
            # the template passed validation, so this is a value the core handed over
            raise HisProtocolError(f"{name}: cannot render the request: {exc}", operation=name) from exc
        if op.drop_empty:
            params = drop_empty(params)
        params, auth_headers = self.signer.sign(params)
        headers = {**self.config.headers, **auth_headers}
        url = self.config.base_url + op.path
        timeout = aiohttp.ClientTimeout(total=op.timeout_seconds or self.config.timeout_seconds)
        kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout}
        if op.method == "GET":
            kwargs["params"] = {k: param_text(v) for k, v in params.items()}
        else:
            headers["Content-Type"] = "application/json; charset=utf-8"
            kwargs["data"] = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            async with self.session.request(op.method, url, **kwargs) as resp:
                body = await resp.read()
                status, charset = resp.status, resp.charset
        except TimeoutError as exc:
            raise HisTimeout(f"{name}: no answer within {timeout.total}s", operation=name) from exc
        except aiohttp.ClientError as exc:
            raise HisUnavailable(f"{name}: {type(exc).__name__}: {exc}", operation=name) from exc
        if status >= 500:
            raise HisUnavailable(f"{name}: HTTP {status}", operation=name, http_status=status)
        root = self._parse(name, body, self.config.response_encoding or charset or "utf-8", status)
        return self.classify(name, self.config.result.merged(op.result), root, status)

    @staticmethod
    def _parse(name: str, body: bytes, encoding: str, status: int) -> dict[str, Any]:
        try:
            root = json.loads(body.decode(encoding), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError, LookupError) as exc:
            raise HisProtocolError(f"{name}: HTTP {status}, the answer is not JSON: {exc}",
                                   operation=name, http_status=status) from exc
        if not isinstance(root, dict):
            raise HisProtocolError(f"{name}: the answer is not a JSON object", operation=name)
        return root

    @staticmethod
    def classify(name: str, rule: ResultRule, root: dict[str, Any], status: int = 200) -> Answer:
        raw_code = dig(root, rule.code_path)
        if raw_code is MISSING or raw_code is None or isinstance(raw_code, dict | list):
            raise HisProtocolError(f"{name}: HTTP {status}, no result code at {rule.code_path}",
                                   operation=name, http_status=status)
        code = param_text(raw_code).strip()
        message = ""
        if rule.message_path:
            raw_message = dig(root, rule.message_path)
            message = "" if raw_message is MISSING or raw_message is None else str(raw_message)
        for outcome, codes in ((Outcome.OK, rule.ok_codes), (Outcome.REFUSED, rule.refuse_codes),
                               (Outcome.RECORDED, rule.recorded_codes), (Outcome.NOT_FOUND, rule.not_found_codes)):
            if code in codes:
                return Answer(outcome, code, message, root)
        raise HisProtocolError(f"{name}: result code {code!r} ({message}) is not configured", operation=name,
                               his_code=code, his_message=message)
