"""Nonce stores for replay protection: Redis when configured (shared by all
processes), in-process otherwise (the embedded single-process default)."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol


class NonceStore(Protocol):
    async def claim(self, app_id: str, nonce: str, ttl: int) -> bool:
        """True if the nonce was unused (and is now used) for ``ttl`` seconds."""

    async def close(self) -> None: ...


class MemoryNonceStore:
    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries

    async def claim(self, app_id: str, nonce: str, ttl: int) -> bool:
        now = time.monotonic()
        while self._seen:
            key, exp = next(iter(self._seen.items()))
            if exp > now and len(self._seen) < self._max:
                break
            self._seen.popitem(last=False)
        key = f"{app_id}:{nonce}"
        if key in self._seen and self._seen[key] > now:
            return False
        self._seen[key] = now + ttl
        return True

    async def close(self) -> None:
        return None


class RedisNonceStore:
    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url)

    async def ping(self) -> None:
        await self._redis.ping()

    async def claim(self, app_id: str, nonce: str, ttl: int) -> bool:
        return bool(await self._redis.set(f"yinyi:nonce:{app_id}:{nonce}", b"1", nx=True, ex=ttl))

    async def close(self) -> None:
        await self._redis.aclose()
