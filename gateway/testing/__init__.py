"""Test helpers for yinyi and for plugin authors: a signed API client over real HTTP."""
from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from ..api.signing import signed_headers


class SignedClient:
    """Calls the gateway as a caller app would: every request signed."""

    def __init__(self, base_url: str, app_id: str, secret: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.secret = secret
        self._session = session
        self._own = session is None

    async def __aenter__(self) -> SignedClient:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._own and self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, json: Any = None, *, headers: dict[str, str] | None = None,
                      raw: bytes | None = None) -> tuple[int, Any]:
        assert self._session is not None, "use 'async with SignedClient(...)'"
        body = raw if raw is not None else (orjson.dumps(json) if json is not None else b"")
        extra = dict(headers or {})
        # The person and roles at an admin app are part of the signature when given.
        h = signed_headers(self.app_id, self.secret, method, path, body,
                           operator=extra.pop("X-Operator", None), roles=extra.pop("X-Operator-Roles", None))
        h.update(extra)
        async with self._session.request(method, self.base_url + path, data=body or None, headers=h) as resp:
            data = await resp.read()
            try:
                return resp.status, orjson.loads(data) if data else None
            except orjson.JSONDecodeError:
                return resp.status, data.decode("utf-8", "replace")

    async def fetch(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """A signed request answered with bytes (an export): status, headers and body."""
        assert self._session is not None, "use 'async with SignedClient(...)'"
        h = signed_headers(self.app_id, self.secret, method, path, body)
        async with self._session.request(method, self.base_url + path, data=body or None, headers=h) as resp:
            return resp.status, dict(resp.headers), await resp.read()

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.request("GET", path)

    async def post(self, path: str, json: Any = None, *, operator: str | None = None,
                   roles: str | None = None) -> tuple[int, Any]:
        headers = {k: v for k, v in (("X-Operator", operator), ("X-Operator-Roles", roles)) if v}
        return await self.request("POST", path, json if json is not None else {}, headers=headers)
