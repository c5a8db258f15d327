"""HTTP transport of the adapter: signs requests, verifies answers, maps failures.

Failure mapping (the outcome of the call is unknown in all three):
- timeout → ``UpstreamTimeout``;
- connection refused/reset, 5xx, 429 → ``UpstreamUnavailable``;
- an answer whose platform signature is missing or wrong, or whose body does not
  parse → ``UpstreamProtocolError``.
Any other answer (2xx and 4xx) is returned, verified, for the adapter to read.
Only idempotent reads are retried, on connection errors, a few times.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from yarl import URL

from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable

from . import crypto
from .config import WeChatPayConfig
from .wire import V2Answer, Wire, from_xml, to_xml

CHANNEL = "wechatpay"
USER_AGENT = "yinyi-wechatpay/0.1"


def seg(value: str) -> str:
    """Percent-encode one path segment (order numbers may hold ``|`` or ``*``)."""
    return quote(value, safe="")


class _ConnectionLost(UpstreamUnavailable):
    """The connection broke before an answer arrived; safe to retry for reads."""


@dataclass(frozen=True)
class V3Response:
    status: int
    body: bytes
    data: dict[str, Any]
    request_id: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return str(self.data.get("code", "")) if not self.ok else ""

    @property
    def message(self) -> str:
        return str(self.data.get("message", "")) if not self.ok else ""


class WeChatPayClient:
    def __init__(self, config: WeChatPayConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self._key = crypto.load_private_key(config.private_key.get_secret_value())
        self._platform = crypto.load_public_key(config.platform_public_key)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)

    @property
    def merchant_key(self):  # noqa: ANN201 - cryptography key type
        return self._key

    def verify(self, headers: Any, body: bytes) -> None:
        """Raise ``crypto.SignatureError`` unless the platform signed ``body``."""
        crypto.verify_signed(
            headers, body, key=self._platform, serial=self.config.platform_public_key_id
        )

    # --- v3 -------------------------------------------------------------------------
    async def call(self, method: str, path: str, body: Wire | None = None, *, retry: bool = False) -> V3Response:
        """Send a signed v3 request (``path`` already encoded, with its query)."""
        data = body.dump() if body is not None else b""
        if not retry:
            return await self._send(method, path, data)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception_type(_ConnectionLost),
            reraise=True,
        ):
            with attempt:
                return await self._send(method, path, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def _headers(self, method: str, path: str, data: bytes) -> dict[str, str]:
        return {
            "Authorization": crypto.build_authorization(
                method, path, data, mchid=self.config.mchid,
                serial_no=self.config.serial_no, key=self._key,
            ),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Wechatpay-Serial": self.config.platform_public_key_id,
        }

    async def _exchange(self, method: str, url: URL, headers: dict[str, str], data: bytes):  # noqa: ANN202
        what = f"{method} {url.path}"
        try:
            async with self.session.request(
                method, url, data=data or None, headers=headers, timeout=self._timeout,
                allow_redirects=False, raise_for_status=False,
            ) as resp:
                return resp.status, resp.headers.copy(), await resp.read()
        except TimeoutError as exc:  # also aiohttp's ServerTimeoutError / ConnectionTimeoutError
            raise UpstreamTimeout(f"{what}: no answer within {self.config.timeout_seconds}s",
                                  channel=CHANNEL) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError) as exc:
            raise _ConnectionLost(f"{what}: connection failed: {exc!r}", channel=CHANNEL) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"{what}: {exc!r}", channel=CHANNEL) from exc

    async def _send(self, method: str, path: str, data: bytes) -> V3Response:
        url = URL(self.config.base_url + path, encoded=True)
        status, headers, body = await self._exchange(method, url, self._headers(method, path, data), data)
        request_id = headers.get("Request-ID", "")
        if status >= 500 or status == 429:
            code = _peek_code(body)
            raise UpstreamUnavailable(
                f"{method} {url.path}: HTTP {status} {code}".strip(),
                channel=CHANNEL, http_status=status, upstream_code=code, request_id=request_id,
            )
        try:
            self.verify(headers, body)
        except crypto.SignatureError as exc:
            raise UpstreamProtocolError(
                f"{method} {url.path}: HTTP {status} answer not signed by the platform: {exc}",
                channel=CHANNEL, http_status=status, request_id=request_id,
            ) from exc
        try:
            parsed = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"{method} {url.path}: answer is not JSON", channel=CHANNEL) from exc
        if not isinstance(parsed, dict):
            raise UpstreamProtocolError(f"{method} {url.path}: answer is not a JSON object", channel=CHANNEL)
        return V3Response(status, body, parsed, request_id)

    async def download(self, download_url: str) -> bytes:
        """GET a bill ``download_url`` (signed request; the file itself is not signed)."""
        parts, base = urlsplit(download_url), urlsplit(self.config.base_url)
        same = (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
        if not same and not (parts.scheme == "https" and parts.hostname and
                             parts.hostname.endswith(".mch.weixin.qq.com")):
            raise UpstreamProtocolError(f"refusing bill download from {parts.netloc!r}", channel=CHANNEL)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        url = URL(f"{parts.scheme}://{parts.netloc}{path}", encoded=True)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception_type(_ConnectionLost), reraise=True,
        ):
            with attempt:
                status, _, body = await self._exchange("GET", url, self._headers("GET", path, b""), b"")
        if status >= 500:
            raise UpstreamUnavailable(f"bill download: HTTP {status}", channel=CHANNEL, http_status=status)
        if status != 200:
            raise UpstreamProtocolError(f"bill download: HTTP {status} {_peek_code(body)}",
                                        channel=CHANNEL, http_status=status)
        return body

    # --- v2 (payment code family) -------------------------------------------------------
    async def v2_call(self, path: str, params: dict[str, str], *, retry: bool = False) -> V2Answer:
        cfg = self.config
        assert cfg.api_v2_key is not None
        key = cfg.api_v2_key.get_secret_value()
        full = {"appid": cfg.appid, "mch_id": cfg.mchid, **params,
                "nonce_str": secrets.token_hex(16), "sign_type": cfg.v2_sign_type}
        if cfg.sub_mchid:
            full["sub_mch_id"] = cfg.sub_mchid
            if cfg.sub_appid:
                full["sub_appid"] = cfg.sub_appid
        full["sign"] = crypto.v2_sign(full, key, cfg.v2_sign_type)
        data = to_xml(full)
        url = URL(cfg.base_url + path, encoded=True)
        headers = {"Content-Type": "text/xml; charset=utf-8", "User-Agent": USER_AGENT}
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3 if retry else 1), wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception_type(_ConnectionLost), reraise=True,
        ):
            with attempt:
                status, _, body = await self._exchange("POST", url, headers, data)
        if status >= 500:
            raise UpstreamUnavailable(f"POST {path}: HTTP {status}", channel=CHANNEL, http_status=status)
        try:
            answer = from_xml(body)
            parsed = V2Answer.model_validate(answer)
        except ValueError as exc:
            raise UpstreamProtocolError(f"POST {path}: unreadable answer: {exc}", channel=CHANNEL) from exc
        if status != 200 or parsed.return_code != "SUCCESS":
            # unsigned protocol-level refusal: it cannot be trusted as a decline
            raise UpstreamProtocolError(
                f"POST {path}: return_code={parsed.return_code} {parsed.return_msg or ''}".strip(),
                channel=CHANNEL, upstream_code=parsed.return_code,
            )
        if not crypto.v2_verify(answer, key, cfg.v2_sign_type):
            raise UpstreamProtocolError(f"POST {path}: answer signature invalid", channel=CHANNEL)
        if parsed.mch_id not in (None, cfg.mchid):
            raise UpstreamProtocolError(f"POST {path}: answer for another merchant", channel=CHANNEL)
        return parsed


def _peek_code(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    return str(data.get("code", "")) if isinstance(data, dict) else ""


__all__ = ["V3Response", "WeChatPayClient", "seg"]
