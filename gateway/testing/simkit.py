"""Plumbing shared by the upstream simulators (payment channels, banks, HIS, insurance).

Only the parts that are the same for every simulator live here; the wire protocol,
the error bodies and the fault kinds stay in each simulator's own package.

- :func:`serve_app`: serve an aiohttp app on ``host:port`` (0: any free port) and
  give back the runner and the base URL a client should use.
- :class:`SimHandleBase`: ``stop()`` and ``async with`` for a running simulator;
  :class:`ChannelSimHandle` adds what every channel simulator's handle has.
- :func:`read_json_object`: the JSON object body of a ``/_sim/`` control call, or a
  clear 400.
- :func:`json_error`: the ``{"error", "code"}`` answer of a control call.
- :func:`add_fault_routes` / :func:`add_script_routes`: the ``/_sim/faults`` and
  ``/_sim/scripts`` routes over a fault set or a simulator kept in the app.
- :func:`reset_connection` / :func:`abort_request`: drop a connection with a TCP reset.
- :func:`hold`: keep a caller waiting, what a "timeout" fault does.
- :class:`FaultList`: the planned faults of a channel simulator (add, clear, remove,
  and the ``rate``/``count`` bookkeeping of ``pick``).
- :func:`act_out_fault`: the connection-level fault kinds (latency, timeout,
  http_error, reset) shared by the channel simulators.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Self

from aiohttp import web

# a wildcard bind is reached through loopback
_WILDCARD_SHOWN = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}


def shown_base_url(host: str, port: int) -> str:
    """The ``http://host:port`` a client uses for a server bound to ``host:port``."""
    ipv6 = ":" in host
    shown = _WILDCARD_SHOWN.get(host, f"[{host}]" if ipv6 else host)
    return f"http://{shown}:{port}"


async def serve_app(app: web.Application, host: str = "127.0.0.1", port: int = 0, *,
                    on_bound: Callable[[str], object] | None = None,
                    on_started: Callable[[], Awaitable[object]] | None = None) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (IPv4 or IPv6, 0: any free port); return its runner and base URL.

    ``on_bound(base_url)`` runs once the port is known, before the first request can
    arrive; ``on_started()`` after the site is up (e.g. to start a notifier). If
    anything fails the runner is cleaned up and the error raised. Handler
    cancellation is on, so a held ("timeout") request ends when its caller gives up
    or the server stops.
    """
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        await runner.cleanup()
        raise
    base_url = shown_base_url(host, sock.getsockname()[1])
    try:
        if on_bound is not None:
            on_bound(base_url)
        await web.SockSite(runner, sock).start()
        if on_started is not None:
            await on_started()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, base_url


class SimHandleBase:
    """A running simulator's ``stop()`` and ``async with``; subclasses set ``_runner``.

    Override ``stop()`` to stop more (a notifier) and call ``super().stop()`` last.
    """

    _runner: web.AppRunner

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ChannelSimHandle(SimHandleBase):
    """A running channel simulator: ``simulator`` (with ``merchants`` and a ``notifier``),
    ``app``, ``base_url``, ``control_url`` (``<base>/_sim``), ``faults`` and ``merchants``.

    Subclasses set ``faults_key``, the app key of their fault set.
    """

    faults_key: ClassVar[web.AppKey[Any]]

    def __init__(self, sim: Any, app: web.Application, runner: web.AppRunner, base_url: str) -> None:
        self.simulator = sim
        self.app = app
        self.base_url = base_url
        self.control_url = f"{base_url}/_sim"
        self._runner = runner

    @property
    def faults(self) -> Any:
        return self.app[self.faults_key]

    @property
    def merchants(self) -> list[Any]:
        return list(self.simulator.merchants.values())

    async def stop(self) -> None:
        await self.simulator.notifier.stop()
        await super().stop()


async def read_json_object(request: web.Request, *, empty_ok: bool = True) -> dict[str, Any]:
    """The JSON object a control call sent; ``{}`` for no body when ``empty_ok``; else HTTP 400."""
    if empty_ok and not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error":"body must be JSON"}', content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error":"body must be a JSON object"}', content_type="application/json")
    return data


def json_error(status: int, message: str, code: str = "") -> web.Response:
    """A control call's error answer: ``{"error": message, "code": code or null}``."""
    return web.json_response({"error": message, "code": code or None}, status=status)


def add_fault_routes(router: web.UrlDispatcher, faults_key: web.AppKey[Any]) -> None:
    """``GET``/``POST``/``DELETE /_sim/faults`` and ``DELETE /_sim/faults/{id}`` over ``app[faults_key]``.

    The fault set needs ``faults``, ``add(spec)`` (a fault with ``as_dict()``),
    ``clear()`` and ``remove(id) -> bool``.
    """

    async def add_fault(request: web.Request) -> web.Response:
        return web.json_response(request.app[faults_key].add(await read_json_object(request)).as_dict(), status=201)

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response([f.as_dict() for f in request.app[faults_key].faults])

    async def clear_faults(request: web.Request) -> web.Response:
        request.app[faults_key].clear()
        return web.json_response({"cleared": True})

    async def remove_fault(request: web.Request) -> web.Response:
        if not request.app[faults_key].remove(request.match_info["id"]):
            return json_error(404, "no such fault")
        return web.json_response({"removed": request.match_info["id"]})

    router.add_get("/_sim/faults", list_faults)
    router.add_post("/_sim/faults", add_fault)
    router.add_delete("/_sim/faults", clear_faults)
    router.add_delete("/_sim/faults/{id}", remove_fault)


def add_script_routes(router: web.UrlDispatcher, sim_key: web.AppKey[Any]) -> None:
    """``GET``/``POST``/``DELETE /_sim/scripts`` over the scripts of the simulator ``app[sim_key]``.

    The simulator needs ``scripts`` (a list) and ``add_script(spec)`` (a script with ``as_dict()``).
    """

    async def add_script(request: web.Request) -> web.Response:
        return web.json_response(request.app[sim_key].add_script(await read_json_object(request)).as_dict(),
                                 status=201)

    async def list_scripts(request: web.Request) -> web.Response:
        return web.json_response([s.as_dict() for s in request.app[sim_key].scripts])

    async def clear_scripts(request: web.Request) -> web.Response:
        request.app[sim_key].scripts.clear()
        return web.json_response({"cleared": True})

    router.add_get("/_sim/scripts", list_scripts)
    router.add_post("/_sim/scripts", add_script)
    router.add_delete("/_sim/scripts", clear_scripts)


def reset_connection(transport: asyncio.BaseTransport | None) -> None:
    """Close a connection with a TCP reset (SO_LINGER 0), answering nothing."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def abort_request(request: web.Request) -> web.Response:
    """Drop the request's connection with a TCP reset; the returned response never reaches the client."""
    reset_connection(request.transport)
    return web.Response(status=500)


async def hold(seconds: float) -> None:
    """Keep the caller waiting (the handler is cancelled when the caller leaves or the server stops)."""
    await asyncio.sleep(seconds)


async def act_out_fault(request: web.Request, kind: str, delay_seconds: float,
                        error: Callable[[], web.Response]) -> web.Response | None:
    """Act out a connection-level fault; ``None`` means "go on" (latency, or a kind acting on the answer).

    ``latency`` waits, ``timeout`` waits then resets, ``http_error`` answers ``error()``,
    ``reset`` resets at once.
    """
    if kind == "latency":
        await hold(delay_seconds)
    elif kind == "timeout":
        await hold(delay_seconds)
        return abort_request(request)
    elif kind == "http_error":
        return error()
    elif kind == "reset":
        return abort_request(request)
    return None


class FaultList:
    """Planned faults, first match wins. Subclasses set ``fault_type`` and write ``pick``.

    ``fault_type.from_spec(spec)`` builds a fault from a control call's JSON; a fault has
    ``id``, ``rate``, ``count`` (``None``: no limit) and ``fired``.
    """

    fault_type: ClassVar[Any]

    def __init__(self, seed: int | None = None) -> None:
        self.faults: list[Any] = []
        self._rng = random.Random(seed)

    def add(self, spec: dict[str, Any]) -> Any:
        fault = self.fault_type.from_spec(spec)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def remove(self, fault_id: str) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def _fires(self, fault: Any) -> bool:
        """For a fault matching the call: whether it fires now (its ``count`` and ``rate`` allow); counts it."""
        if fault.count is not None and fault.count <= 0:
            return False
        if fault.rate < 1.0 and self._rng.random() >= fault.rate:
            return False
        fault.fired += 1
        if fault.count is not None:
            fault.count -= 1
        return True
