"""The finance console over real HTTP: a gateway with the WeChat Pay and REST HIS simulators, console
users with known passwords and TOTP secrets, and a browser-like client (cookie jar, CSRF header)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pyotp
import pytest
from yarl import URL

from gateway.console.service import UserIn
from gateway.testing.pytest_plugin import make_test_settings
from his_adapters.rest.simulator import start_simulator as start_rest_his
from tests.conftest import Gateway, free_port, start_gateway, stop_gateway
from tests.gateway.test_his_flow import _configure

PASSWORD = "Console-pass-2025"
# username → (role, display name)
USERS = {"admin": ("admin", "管理员"), "dir-qian": ("finance_director", "钱主管"), "fin-zhao": ("finance", "赵会计"),
         "cashier-li": ("cashier", "李收费"), "audit-sun": ("auditor", "孙审计")}


@dataclass
class ConsoleGateway:
    gw: Gateway
    secrets: dict[str, str]
    his_sim: Any
    last_step: dict[str, int] = field(default_factory=dict)
    clients: list[ConsoleClient] = field(default_factory=list)

    @property
    def core(self) -> Any:
        return self.gw.core

    async def code(self, username: str, secret: str | None = None) -> str:
        """A TOTP code the gateway has not seen for this user yet (each code is accepted once)."""
        cur = int(time.time() // 30)
        step = max(cur, self.last_step.get(username, -1) + 1)
        if step > cur + 1:  # both of this window's steps are used: wait for the next period
            await asyncio.sleep(max(0.0, (step - 1) * 30 - time.time()) + 0.2)
        self.last_step[username] = step
        return pyotp.TOTP(secret or self.secrets[username]).at(step * 30)

    def client(self) -> ConsoleClient:
        c = ConsoleClient(self.gw.base_url)
        self.clients.append(c)
        return c

    async def login(self, username: str, password: str = PASSWORD) -> ConsoleClient:
        c = self.client()
        status, body = await c.call("POST", "/console/api/login", {"username": username, "password": password})
        assert status == 200 and body.get("totp_required"), body
        status, me = await c.call("POST", "/console/api/login/totp",
                                  {"login_token": body["login_token"], "code": await self.code(username)})
        assert status == 200, me
        c.csrf = me["csrf_token"]
        c.me = me
        return c


class ConsoleClient:
    """What the browser does: keeps the cookie, sends X-CSRF-Token on every non-GET request."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None
        self.me: dict[str, Any] = {}
        self.last_headers: Any = None

    async def call(self, method: str, path: str, json: Any = None, *, csrf: bool = True,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        h = dict(headers or {})
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h.setdefault("X-CSRF-Token", self.csrf)
        data = orjson.dumps(json) if json is not None else None
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        url = URL(self.base_url + path, encoded=True)  # sent as written (no dot-segment clean-up)
        async with self.session.request(method, url, data=data, headers=h,
                                        allow_redirects=False) as resp:
            self.last_headers = resp.headers
            raw = await resp.read()
            try:
                return resp.status, orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return resp.status, raw.decode("utf-8", "replace")

    async def upload(self, path: str, data: bytes, content_type: str = "text/csv", *,
                     csrf: bool = True) -> tuple[int, Any]:
        """A file sent as the raw body, as the console page sends it."""
        h = {"Content-Type": content_type}
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        async with self.session.post(URL(self.base_url + path, encoded=True), data=data, headers=h) as resp:
            self.last_headers = resp.headers
            raw = await resp.read()
            return resp.status, orjson.loads(raw) if raw else None

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path)

    async def post(self, path: str, json: Any = None) -> tuple[int, Any]:
        return await self.call("POST", path, json if json is not None else {})

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def his_sim() -> AsyncIterator[Any]:
    handle = await start_rest_his("127.0.0.1", 0)
    try:
        yield handle
    finally:
        await handle.stop()


ConsoleFactory = Callable[..., Awaitable[ConsoleGateway]]


@pytest.fixture
async def console_factory(tmp_path: Path, wechat_sim: Any, his_sim: Any) -> AsyncIterator[ConsoleFactory]:
    """Start a gateway with console settings (overridable) and the sandbox users; stopped at teardown."""
    started: list[tuple[ConsoleGateway, Any]] = []

    async def make(**overrides: Any) -> ConsoleGateway:
        values: dict[str, Any] = {"his_worker_interval_seconds": 0.1, "his_writeback_retry_waits": [0.1, 0.1],
                                  "his_writeback_slow_interval_seconds": 0.3, "his_writeback_slow_max_seconds": 1.0,
                                  "single_sided_auto_refund_minutes": 60, "console_scrypt_n": 2 ** 12}
        values.update(overrides)
        settings = make_test_settings(tmp_path / f"gw{len(started)}", port=free_port(), **values)
        gw, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
        await _configure(gw, his_sim)
        secrets: dict[str, str] = {}
        for username, (role, name) in USERS.items():
            out = await gw.core.console.create_user(
                UserIn(username=username, display_name=name, roles=[role], password=PASSWORD,
                       must_change_password=False), by="test", totp=True)
            secrets[username] = out["totp_secret"]
        cg = ConsoleGateway(gw, secrets, his_sim)
        started.append((cg, runner))
        return cg

    yield make
    for cg, runner in started:
        for c in cg.clients:
            await c.close()
        await stop_gateway(cg.gw, runner)


@pytest.fixture
async def cgw(console_factory: ConsoleFactory) -> ConsoleGateway:
    return await console_factory()


async def oplog(c: ConsoleClient, **query: str) -> list[dict[str, Any]]:
    from urllib.parse import urlencode

    status, body = await c.get("/console/api/system/oplog?" + urlencode(query))
    assert status == 200, body
    return list(body["items"])


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)
