"""Fixtures: the reference bank simulator and a hand-rolled signed client for its raw wire."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from gateway.testing.fixtures import session  # noqa: F401 - a fixture
from plugins.banks.refbank import crypto
from plugins.banks.refbank.simulator import RefBankSimHandle, start_simulator


@pytest.fixture
async def sim() -> AsyncIterator[RefBankSimHandle]:
    handle = await start_simulator("127.0.0.1", 0, merchants=2)
    try:
        yield handle
    finally:
        await handle.stop()


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    nonce: str  # of the request

    def json(self) -> Any:
        return json.loads(self.body)

    def verify(self, sim: RefBankSimHandle, merchant_id: str) -> crypto.Signed:
        return crypto.verify_headers(self.headers, self.body, scope=crypto.response_scope(self.status, self.nonce),
                                     merchant_id=merchant_id, key=sim.simulator.bank_key.public_key(),
                                     key_id=sim.simulator.bank_key_id)


class Wire:
    """Signs requests exactly as the wire format says, with knobs to break them."""

    def __init__(self, sim: RefBankSimHandle, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session

    async def post(self, path: str, body: dict[str, Any] | bytes, *, merchant: int = 0, **kw: Any) -> Answer:
        m = self.sim.merchants[merchant]
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        headers = crypto.sign_headers(kw.get("key", m.merchant_key), kw.get("key_id", m.key_id),
                                      crypto.request_scope("POST", kw.get("signed_path", path)),
                                      kw.get("merchant_id", m.merchant_id), kw.get("signed_body", data),
                                      timestamp=kw.get("timestamp"), nonce=kw.get("nonce"))
        headers.update(kw.get("headers", {}))
        for name in kw.get("drop", ()):
            headers.pop(name, None)
        async with self.session.request(kw.get("method", "POST"), self.sim.base_url + path, data=data,
                                        headers=headers) as resp:
            return Answer(resp.status, resp.headers, await resp.read(),
                              headers.get(crypto.HEADER_NONCE) or "-")  # "-": the request had no nonce


@pytest.fixture
def wire(sim: RefBankSimHandle, session: aiohttp.ClientSession) -> Wire:
    return Wire(sim, session)
