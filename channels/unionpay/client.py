"""HTTP transport of the adapter: signs requests, verifies answers, maps broken calls.

Failure mapping (the outcome of the call is unknown in all three):
- no answer within ``timeout_seconds`` → ``UpstreamTimeout``;
- connection refused or reset, HTTP 5xx → ``UpstreamUnavailable``;
- any other non-200 status, a body that is not an ACP field map, or an answer whose
  signature is missing or wrong (or whose ``signPubKeyCert`` holds another key) →
  ``UpstreamProtocolError``.
A verified answer is returned as a plain ``dict`` for the adapter to read, declines
included. Only reads (query, file transfer) are retried, on connection errors.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from yarl import URL

from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable

from . import crypto
from .config import UnionPayConfig
from .wire import (
    ACCESS_TYPE_MERCHANT,
    BACK_TRANS_PATH,
    ENCODING,
    QUERY_PATH,
    SIGN_METHOD_RSA,
    VERSION,
    Txn,
    WireFormatError,
    decode_answer,
    decode_form,
    encode_form,
)

CHANNEL = "unionpay"
USER_AGENT = "yinyi-unionpay/0.1"

Answer = dict[str, str]


class _ConnectionLost(UpstreamUnavailable):
    """The connection broke before an answer arrived; safe to retry for reads."""


class UnionPayClient:
    def __init__(self, config: UnionPayConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self._key = crypto.load_private_key(config.private_key.get_secret_value())
        self._unionpay = crypto.load_public_key(config.unionpay_public_key)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)

    # --- message pieces -------------------------------------------------------------
    def common(self) -> dict[str, str]:
        c = self.config
        return {"version": VERSION, "encoding": ENCODING, "signMethod": SIGN_METHOD_RSA,
                "accessType": ACCESS_TYPE_MERCHANT, "merId": c.mer_id, "certId": c.cert_id}

    def sign_request(self, params: Mapping[str, str]) -> dict[str, str]:
        """Common fields + ``params`` (empty values dropped), signed."""
        full = {**self.common(), **{k: v for k, v in params.items() if v not in (None, "")}}
        return crypto.signed(full, self._key)

    def read_signed(self, body: bytes, *, form_first: bool = False) -> Answer:
        """Decode a message from UnionPay and verify it; raise ``SignatureError``/``WireFormatError``.

        Answers are normally raw ``k=v&…`` and notifies percent-encoded forms; the other
        decoding is tried too, and whichever verifies is taken.
        """
        decoders: list[Callable[[bytes], Answer]] = (
            [decode_form, decode_answer] if form_first else [decode_answer, decode_form])
        first: Exception | None = None
        for decode in decoders:
            try:
                params = decode(body)
                crypto.verify_answer(params, self._unionpay)
            except (WireFormatError, crypto.SignatureError) as exc:
                first = first or exc
                continue
            return params
        assert first is not None
        raise first

    # --- calls ----------------------------------------------------------------------
    async def back_trans(self, params: Mapping[str, str]) -> Answer:
        """A consume, undo or refund (never retried: it may have taken effect)."""
        return await self._call(self.config.base_url + BACK_TRANS_PATH, params, retry=False)

    async def query(self, order_id: str, txn_time: str) -> Answer:
        txn_type, sub, biz = Txn.QUERY
        params = {"txnType": txn_type, "txnSubType": sub, "bizType": biz, "orderId": order_id,
                  "txnTime": txn_time}
        return await self._call(self.config.base_url + QUERY_PATH, params, retry=True)

    async def file_transfer(self, settle_date: str, txn_time: str) -> Answer:
        txn_type, sub, biz = Txn.FILE
        params = {"txnType": txn_type, "txnSubType": sub, "bizType": biz, "settleDate": settle_date,
                  "txnTime": txn_time, "fileType": "00"}
        return await self._call(self.config.file_transfer_url, params, retry=True)

    async def _call(self, url: str, params: Mapping[str, str], *, retry: bool) -> Answer:
        body = encode_form(self.sign_request(params))
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3 if retry else 1),
            wait=wait_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception_type(_ConnectionLost),
            reraise=True,
        ):
            with attempt:
                status, data = await self._exchange(URL(url), body)
        what = f"POST {URL(url).path} txnType={params.get('txnType')}"
        if status >= 500:
            raise UpstreamUnavailable(f"{what}: HTTP {status}", channel=CHANNEL, http_status=status)
        if status != 200:
            raise UpstreamProtocolError(f"{what}: unexpected HTTP {status}", channel=CHANNEL, http_status=status)
        try:
            answer = self.read_signed(data)
        except WireFormatError as exc:
            raise UpstreamProtocolError(f"{what}: unreadable answer: {exc}", channel=CHANNEL) from exc
        except crypto.SignatureError as exc:
            raise UpstreamProtocolError(f"{what}: answer not signed by UnionPay: {exc}",
                                        channel=CHANNEL) from exc
        if answer.get("merId") not in (None, self.config.mer_id):
            raise UpstreamProtocolError(f"{what}: answer is for merchant {answer.get('merId')}", channel=CHANNEL)
        if not answer.get("respCode"):
            raise UpstreamProtocolError(f"{what}: answer has no respCode", channel=CHANNEL)
        return answer

    async def _exchange(self, url: URL, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
                   "Accept": "*/*", "User-Agent": USER_AGENT}
        what = f"POST {url.path}"
        try:
            async with self.session.post(url, data=body, headers=headers, timeout=self._timeout,
                                         allow_redirects=False) as resp:
                return resp.status, await resp.read()
        except TimeoutError as exc:  # also aiohttp's ServerTimeoutError / ConnectionTimeoutError
            raise UpstreamTimeout(f"{what}: no answer within {self.config.timeout_seconds}s",
                                  channel=CHANNEL) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError) as exc:
            raise _ConnectionLost(f"{what}: connection failed: {exc!r}", channel=CHANNEL) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"{what}: {exc!r}", channel=CHANNEL) from exc


__all__ = ["CHANNEL", "Answer", "UnionPayClient"]
