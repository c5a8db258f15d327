"""HTTP transport of the adapter: signs requests, verifies answers, maps failures.

Failure mapping (the outcome of the call is unknown in all three):
- timeout → ``UpstreamTimeout``;
- connection refused/reset, HTTP 5xx or 429 → ``UpstreamUnavailable``;
- an answer that is not the expected JSON, or whose ``sign`` is missing or does not
  verify with the Alipay public key → ``UpstreamProtocolError``.
Any other answer is returned verified, as an ``Answer``, for the adapter to read
(business codes 20000/ACQ.SYSTEM_ERROR are the adapter's to map). Only idempotent
reads are retried, on connection errors, a few times.

Requests go the way the platform's own SDKs send them: the common parameters in
the query string, ``biz_content`` in a UTF-8 form body, one POST to the gateway.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from yarl import URL

from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable

from . import crypto
from .config import AlipayConfig
from .wire import CST, Answer, format_time, response_key

CHANNEL = "alipay"
USER_AGENT = "yinyi-alipay/0.1"
FORM_TYPE = "application/x-www-form-urlencoded;charset=utf-8"
_BILL_HOSTS = (".alipay.com", ".alipaydev.com")


class _ConnectionLost(UpstreamUnavailable):
    """The connection broke before an answer arrived; safe to retry for reads."""


class AlipayClient:
    def __init__(self, config: AlipayConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self._key = crypto.load_private_key(config.app_private_key.get_secret_value())
        self._alipay = crypto.load_public_key(config.alipay_public_key)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)

    # --- requests -------------------------------------------------------------------
    def signed_params(self, method: str, biz: Mapping[str, Any], **extra: str | None) -> dict[str, str]:
        """Every parameter of one call, ``sign`` included."""
        c = self.config
        params: dict[str, str] = {
            "app_id": c.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": c.sign_type,
            "timestamp": format_time(dt.datetime.now(CST)),
            "version": "1.0",
            "biz_content": crypto.dumps({k: v for k, v in biz.items() if v is not None}),
        }
        if c.app_auth_token is not None:
            params["app_auth_token"] = c.app_auth_token.get_secret_value()
        params.update({k: v for k, v in extra.items() if v})
        params["sign"] = crypto.sign_params(params, self._key, c.sign_type)
        return params

    def page_url(self, method: str, biz: Mapping[str, Any], **extra: str | None) -> str:
        """A signed GET URL for the page APIs (``alipay.trade.wap.pay``): the browser opens it."""
        return f"{self.config.gateway_url}?{urlencode(self.signed_params(method, biz, **extra))}"

    async def call(self, method: str, biz: Mapping[str, Any], *, retry: bool = False,
                   **extra: str | None) -> Answer:
        params = self.signed_params(method, biz, **extra)
        body = urlencode({"biz_content": params.pop("biz_content")}).encode()
        sep = "&" if "?" in self.config.gateway_url else "?"
        url = URL(f"{self.config.gateway_url}{sep}{urlencode(params)}", encoded=True)
        headers = {"Content-Type": FORM_TYPE, "Accept": "application/json", "User-Agent": USER_AGENT}
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3 if retry else 1),
            wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception_type(_ConnectionLost),
            reraise=True,
        ):
            with attempt:
                status, data = await self._exchange("POST", url, headers, body, what=method)
        if status >= 500 or status == 429:
            raise UpstreamUnavailable(f"{method}: HTTP {status}", channel=CHANNEL, http_status=status)
        if status != 200:
            raise UpstreamProtocolError(f"{method}: unexpected HTTP {status}", channel=CHANNEL,
                                        http_status=status)
        return self.verify_answer(method, data)

    async def _exchange(self, method: str, url: URL, headers: dict[str, str], data: bytes | None, *,
                        what: str) -> tuple[int, bytes]:
        try:
            async with self.session.request(method, url, data=data, headers=headers, timeout=self._timeout,
                                            allow_redirects=False) as resp:
                return resp.status, await resp.read()
        except TimeoutError as exc:  # also aiohttp's ServerTimeoutError / ConnectionTimeoutError
            raise UpstreamTimeout(f"{what}: no answer within {self.config.timeout_seconds}s",
                                  channel=CHANNEL) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError) as exc:
            raise _ConnectionLost(f"{what}: connection failed: {exc!r}", channel=CHANNEL) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"{what}: {exc!r}", channel=CHANNEL) from exc

    # --- answers --------------------------------------------------------------------
    def verify_answer(self, method: str, data: bytes) -> Answer:
        """Find the ``…_response`` (or ``error_response``) and check the ``sign`` over its raw text."""
        try:
            text = data.decode("utf-8")
            spans = crypto.top_level_spans(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UpstreamProtocolError(f"{method}: the answer is not a JSON object: {exc}",
                                        channel=CHANNEL) from exc
        key = response_key(method)
        error = key not in spans and "error_response" in spans
        if error:
            key = "error_response"
        if key not in spans:
            raise UpstreamProtocolError(f"{method}: the answer has no {key}", channel=CHANNEL)
        start, end, value = spans[key]
        sign = spans.get("sign", (0, 0, None))[2]
        if not isinstance(value, dict):
            raise UpstreamProtocolError(f"{method}: {key} is not an object", channel=CHANNEL)
        if not isinstance(sign, str) or not sign:
            raise UpstreamProtocolError(f"{method}: unsigned answer {value.get('code')} {value.get('sub_code')}",
                                        channel=CHANNEL, upstream_code=value.get("sub_code") or value.get("code"))
        raw = text[start:end]
        if not crypto.rsa_verify(self._alipay, raw, sign, self.config.sign_type):
            raise UpstreamProtocolError(f"{method}: the answer's signature does not verify", channel=CHANNEL)
        return Answer(method=method, data=value, raw=raw, error_response=error)

    def verify_notify(self, params: Mapping[str, str]) -> None:
        crypto.verify_notify(params, self._alipay, self.config.sign_type)

    # --- bill file --------------------------------------------------------------------
    async def download(self, url: str) -> bytes:
        """GET a ``bill_download_url`` (neither the request nor the file is signed)."""
        parts, base = urlsplit(url), urlsplit(self.config.gateway_url)
        same = (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
        host = parts.hostname or ""
        if not same and not (parts.scheme in ("http", "https") and host.endswith(_BILL_HOSTS)):
            raise UpstreamProtocolError(f"refusing a bill download from {parts.netloc!r}", channel=CHANNEL)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception_type(_ConnectionLost), reraise=True,
        ):
            with attempt:
                status, body = await self._exchange("GET", URL(url, encoded=True),
                                                    {"User-Agent": USER_AGENT}, None, what="bill download")
        if status >= 500:
            raise UpstreamUnavailable(f"bill download: HTTP {status}", channel=CHANNEL, http_status=status)
        if status != 200:
            raise UpstreamProtocolError(f"bill download: HTTP {status} (the URL is valid for 30 s)",
                                        channel=CHANNEL, http_status=status)
        return body


__all__ = ["CHANNEL", "AlipayClient"]
