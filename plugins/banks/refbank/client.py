"""HTTP transport to the reference bank: signs requests, verifies answers, maps failures.

Failure mapping (the outcome of the call is unknown in all three):
- no answer within ``timeout_seconds`` → ``UpstreamTimeout``;
- connection refused or reset, HTTP 5xx, HTTP 429 → ``UpstreamUnavailable``;
- an answer whose bank signature is missing or wrong (or signed for another
  request, status or merchant), or whose body does not parse →
  ``UpstreamProtocolError``.
Any other answer is returned verified, with its ``code``, for the adapter to read.
Only idempotent reads are retried, on connection errors, up to three attempts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from yarl import URL

from gateway.bank import ECNY_CHANNEL
from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable

from . import crypto
from .config import RefBankConfig
from .wire import BANK_ID, SUCCESS, Envelope, Wire

USER_AGENT = "yinyi-ecny-refbank/0.1"
ORIGIN = {"channel": ECNY_CHANNEL, "bank": BANK_ID}


class ConnectionLost(UpstreamUnavailable):
    """The connection broke before an answer arrived; safe to retry for reads."""


@dataclass(frozen=True)
class BankAnswer:
    """A verified answer: the envelope's ``code``/``message``/``data``, or a file (``body``)."""

    status: int
    code: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS


def protocol_error(what: str, exc: Exception | None = None, **extra: Any) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"{what}{f': {exc}' if exc else ''}", **ORIGIN, **extra)


class RefBankClient:
    def __init__(self, config: RefBankConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self._key = crypto.load_private_key(config.private_key.get_secret_value())
        self._bank = crypto.load_public_key(config.bank_public_key)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)

    def verify_notify(self, headers: Any, body: bytes) -> None:
        """Raise ``crypto.SignatureError`` unless the bank signed this callback for our merchant."""
        crypto.verify_headers(headers, body, scope=crypto.NOTIFY_SCOPE, merchant_id=self.config.merchant_id,
                              key=self._bank, key_id=self.config.bank_key_id)

    async def call(self, path: str, body: Wire, *, retry: bool = False, file_ok: bool = False) -> BankAnswer:
        """POST a signed request; ``retry`` for idempotent reads; ``file_ok`` accepts a non-JSON 200 body."""
        data = body.dump()
        if not retry:
            return await self._send(path, data, file_ok)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception_type(ConnectionLost), reraise=True,
        ):
            with attempt:
                return await self._send(path, data, file_ok)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, path: str, data: bytes, file_ok: bool) -> BankAnswer:
        cfg = self.config
        # a fresh nonce and timestamp per attempt: the bank refuses a nonce it has seen
        headers = crypto.sign_headers(self._key, cfg.key_id, crypto.request_scope("POST", path), cfg.merchant_id,
                                      data)
        headers |= {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
                    "User-Agent": USER_AGENT}
        url = URL(cfg.base_url + path, encoded=True)
        what = f"POST {path}"
        try:
            async with self.session.post(url, data=data, headers=headers, timeout=self._timeout,
                                         allow_redirects=False) as resp:
                status, got, raw = resp.status, resp.headers.copy(), await resp.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{what}: no answer within {cfg.timeout_seconds}s", **ORIGIN) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError) as exc:
            raise ConnectionLost(f"{what}: connection failed: {exc!r}", **ORIGIN) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"{what}: {exc!r}", **ORIGIN) from exc
        request_id = got.get(crypto.HEADER_REQUEST_ID, "")
        if status >= 500 or status == 429:
            code = _peek_code(raw)
            raise UpstreamUnavailable(f"{what}: HTTP {status} {code}".strip(), **ORIGIN, http_status=status,
                                      upstream_code=code, request_id=request_id)
        try:
            crypto.verify_headers(got, raw, scope=crypto.response_scope(status, headers[crypto.HEADER_NONCE]),
                                  merchant_id=cfg.merchant_id, key=self._bank, key_id=cfg.bank_key_id)
        except crypto.SignatureError as exc:
            raise protocol_error(f"{what}: HTTP {status} answer not signed by the bank", exc, http_status=status,
                                 request_id=request_id) from exc
        ctype = got.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            if file_ok and status == 200:
                return BankAnswer(status, SUCCESS, "", {}, raw, ctype, request_id)
            raise protocol_error(f"{what}: HTTP {status} answer is {ctype or 'untyped'}, not JSON")
        try:
            env = Envelope.model_validate(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise protocol_error(f"{what}: unreadable answer", exc, http_status=status) from exc
        if env.code == SUCCESS and env.data is None:
            raise protocol_error(f"{what}: SUCCESS without data")
        return BankAnswer(status, env.code, env.message, env.data or {}, raw, ctype, request_id)


def _peek_code(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    return str(data.get("code", "")) if isinstance(data, dict) else ""


__all__ = ["BankAnswer", "ConnectionLost", "RefBankClient", "protocol_error"]
