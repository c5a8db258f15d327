"""Pytest fixtures and helpers shared by the simulator-backed test suites.

Import what a suite needs into its ``conftest.py`` (fixtures are found by name there):

- ``session``: an ``aiohttp.ClientSession`` for the test.
- :func:`loopback_server`: serve an aiohttp app on ``127.0.0.1`` (a free port) for a
  ``with`` block and give its base URL.
- :class:`NotifySink` / :func:`notify_sink`: a loopback callback endpoint that records
  what arrives and answers as the test tells it.
- :func:`control_caller`: call a simulator's ``/_sim/`` control surface.
- :func:`eventually`: poll an async predicate until it holds.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@asynccontextmanager
async def loopback_server(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on ``127.0.0.1`` and a free port; yield ``http://127.0.0.1:<port>``."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclass
class NotifySink:
    """A merchant notify endpoint: records what arrives, answers as told.

    ``answers`` holds what to answer first (its items are the suite's own: statuses, or
    ``(status, text)`` pairs); the suite's answer function reads it. Accepted callbacks
    are also put on ``queue``: ``await sink.next()`` waits for one.
    """

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)
    queue: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 5.0) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.queue.get(), timeout)


SinkAnswer = Callable[[NotifySink], tuple[web.Response, bool]]


@asynccontextmanager
async def notify_sink(answer: SinkAnswer) -> AsyncIterator[NotifySink]:
    """A :class:`NotifySink` at ``POST <loopback>/notify`` for a ``with`` block.

    ``answer(sink)`` gives the response to a callback and whether it counts as
    accepted (then it is queued).
    """
    holder: dict[str, NotifySink] = {}

    async def receive(request: web.Request) -> web.Response:
        s = holder["sink"]
        item = (dict(request.headers), await request.read())
        s.received.append(item)
        resp, accepted = answer(s)
        if accepted:
            s.queue.put_nowait(item)
        return resp

    app = web.Application()
    app.router.add_post("/notify", receive)
    async with loopback_server(app) as base_url:
        holder["sink"] = NotifySink(f"{base_url}/notify")
        yield holder["sink"]


Control = Callable[..., Awaitable[Any]]


def control_caller(session: aiohttp.ClientSession, control_url: str, *, text_ok: bool = False) -> Control:
    """``await call(method, path, body=None, expect=None)`` on a simulator's control surface.

    Returns the JSON answer (with ``text_ok``, a non-JSON answer as text). With
    ``expect`` the status must be that; without, any status under 400.
    """

    async def call(method: str, path: str, body: dict[str, Any] | None = None, expect: int | None = None) -> Any:
        async with session.request(method, control_url + path, json=body) as resp:
            if text_ok:
                data = await resp.json(content_type=None) if resp.content_type == "application/json" \
                    else await resp.text()
            else:
                data = await resp.json()
            if expect is not None:
                assert resp.status == expect, (resp.status, data)
            elif resp.status >= 400:
                raise AssertionError(f"{method} {path}: {resp.status} {data}")
            return data

    return call


async def eventually(predicate: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll ``predicate`` every 50 ms until it returns a truthy value (returned), or fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {value!r}")
        await asyncio.sleep(0.05)
