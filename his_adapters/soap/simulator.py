"""A SOAP 1.1 HIS web service over real HTTP, in front of the shared simulated hospital.

``start_simulator()`` serves ``POST <base>/his/soap`` (SOAP 1.1, and 1.2 envelopes
too, answered in the caller's version), its WSDL at ``GET <base>/his/soap?wsdl``,
and the hospital's JSON control routes under ``/_sim/``. Calls need a WS-Security
UsernameToken (text or digest) with the sandbox credentials of
``configs/his/soap-sim.toml``. Faults planned on ``hospital.faults`` are honoured
per operation (see :mod:`his_adapters.simhis.faults`).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from pathlib import Path
from typing import Any

from aiohttp import web
from lxml import etree

from gateway.channel import SimulatorInfo
from gateway.testing.simkit import SimHandleBase, serve_app
from his_adapters.config_file import load_system_toml
from his_adapters.simhis import Fault, SimHospital
from his_adapters.simhis.control import add_control_routes
from his_adapters.simhis.faults import drop_connection, hold

from .envelope import (CONTENT_TYPES, PASSWORD_DIGEST, WSSE_NS, WSU_NS, Envelope, UnsafeXml, child,
                       envelope, fault_envelope, local, parse_xml, password_digest, read_envelope, to_bytes)
from .sim_service import OPS, SYSTEM_REFUSED, UNKNOWN_STATUS, handle, response
from .sim_wsdl import INLINE_OPERATION, NAMESPACE, OPERATION, RESULT_ELEMENT, wsdl

ENDPOINT_PATH = "/his/soap"
SIM_USERNAME = "yinyi"
SIM_PASSWORD = "sandbox-soap-his"  # a loopback sandbox credential, also in the shipped TOML
CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "his" / "soap-sim.toml"
TOKEN_WINDOW = dt.timedelta(minutes=5)


class SoapHisSimulator:
    """The service: authenticates, dispatches by trade code, applies planned faults."""

    def __init__(self, hospital: SimHospital, *, require_auth: bool = True) -> None:
        self.hospital = hospital
        self.require_auth = require_auth
        self.base_url = ""
        self._nonces: set[bytes] = set()

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}{ENDPOINT_PATH}"

    async def describe(self, request: web.Request) -> web.Response:
        if not {k.lower() for k in request.query} & {"wsdl"}:
            return web.Response(status=405, text="POST SOAP messages here; GET ?wsdl for the description")
        return web.Response(text=wsdl(self.endpoint), content_type="text/xml", charset="utf-8")

    async def serve(self, request: web.Request) -> web.StreamResponse:
        try:
            env = read_envelope(await request.read())
        except UnsafeXml as exc:
            return _fault("1.2" if "soap+xml" in request.content_type else "1.1", False, f"报文格式错误: {exc}")
        refused = self._authenticate(env)
        if refused:
            return _fault(env.version, False, refused)
        payload = env.payload
        name = local(payload) if payload is not None else ""
        if payload is None or name not in (OPERATION, INLINE_OPERATION):
            return _fault(env.version, False, f"未知操作: {name or '(空)'}")
        if name == OPERATION:
            message = child(payload, "inputXml")
            try:
                req = parse_xml("".join(message.itertext()).strip()) if message is not None else None
            except UnsafeXml as exc:
                return _fault(env.version, False, f"入参XML格式错误: {exc}")
            if req is None:
                return _fault(env.version, False, "缺少入参inputXml")
        else:
            req = payload
        code = _text(payload, "tradeCode") or _text(req, "TradeCode")
        op = OPS.get(code)
        if op is None:
            return self._answer(env.version, name, response("100", f"交易码{code or '(空)'}无效"))
        fault = self.hospital.faults.take(op)
        if fault is not None and not fault.after:
            return await self._fail(request, env, name, fault)
        result = handle(self.hospital, op, req)
        if fault is not None:
            return await self._fail(request, env, name, fault, result)
        return self._answer(env.version, name, result)

    def _authenticate(self, env: Envelope) -> str | None:
        """Why the caller is refused, or ``None``."""
        if not self.require_auth:
            return None
        sec = env.header.find(f"{{{WSSE_NS}}}Security") if env.header is not None else None
        token = sec.find(f"{{{WSSE_NS}}}UsernameToken") if sec is not None else None
        if token is None:
            return "缺少WS-Security UsernameToken"
        username = (token.findtext(f"{{{WSSE_NS}}}Username") or "").strip()
        pw = token.find(f"{{{WSSE_NS}}}Password")
        given = (pw.text or "").strip() if pw is not None else ""
        if pw is not None and pw.get("Type") == PASSWORD_DIGEST:
            try:
                nonce = base64.b64decode(token.findtext(f"{{{WSSE_NS}}}Nonce") or "", validate=True)
            except binascii.Error:
                return "Nonce格式错误"
            created = (token.findtext(f"{{{WSU_NS}}}Created") or "").strip()
            try:
                when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
            except ValueError:
                return "Created格式错误"
            if when.tzinfo is None or abs(dt.datetime.now(dt.UTC) - when) > TOKEN_WINDOW:
                return "UsernameToken已过期"
            if nonce in self._nonces:
                return "Nonce重复使用"
            expected = password_digest(nonce, created, SIM_PASSWORD)
            self._nonces.add(nonce)
        else:
            expected = SIM_PASSWORD
        if username != SIM_USERNAME or not hmac.compare_digest(given.encode(), expected.encode()):
            return "用户名或密码错误"
        return None

    def _answer(self, version: str, name: str, result: etree._Element) -> web.Response:
        if name == OPERATION:
            out = etree.Element(etree.QName(NAMESPACE, "HisServiceResponse"), nsmap={"ns": NAMESPACE})
            inner = '<?xml version="1.0" encoding="UTF-8"?>' + etree.tostring(result, encoding="unicode")
            etree.SubElement(out, RESULT_ELEMENT).text = inner
        else:
            out = etree.Element(etree.QName(NAMESPACE, "HisInlineResponse"), nsmap={"ns": NAMESPACE})
            out.extend(list(result))
        return web.Response(body=to_bytes(envelope(version, [out])),
                            content_type=CONTENT_TYPES[version], charset="utf-8")

    async def _fail(self, request: web.Request, env: Envelope, name: str, fault: Fault,
                    done: etree._Element | None = None) -> web.StreamResponse:
        kind = fault.kind
        if kind == "refuse":
            return self._answer(env.version, name, response(SYSTEM_REFUSED, "系统拒绝: 业务繁忙，请稍后再试"))
        if kind == "unknown_status":
            return self._answer(env.version, name, response(UNKNOWN_STATUS, "处理中，状态未知"))
        if kind == "timeout":
            await hold()
            return _fault(env.version, True, "处理超时")
        if kind == "error":
            return _fault(env.version, True, "HIS内部错误: 数据库连接失败")
        if kind == "malformed":
            whole = self._answer(env.version, name, done if done is not None else response("0", "成功"))
            body = whole.body if isinstance(whole.body, bytes) else b""
            return web.Response(body=body[: max(40, len(body) // 2)], content_type=CONTENT_TYPES[env.version],
                                charset="utf-8")
        drop_connection(request.transport)  # "down"
        return web.Response(status=500)  # never reaches the caller


def _text(el: etree._Element, name: str) -> str:
    found = child(el, name)
    return (found.text or "").strip() if found is not None else ""


def _fault(version: str, server: bool, reason: str) -> web.Response:
    return web.Response(status=500, body=fault_envelope(version, server=server, reason=reason),
                        content_type=CONTENT_TYPES[version], charset="utf-8")


SIM_KEY = web.AppKey("soap_his_sim", SoapHisSimulator)


def build_app(sim: SoapHisSimulator) -> web.Application:
    app = web.Application()
    app[SIM_KEY] = sim
    app.router.add_get(ENDPOINT_PATH, sim.describe)
    app.router.add_post(ENDPOINT_PATH, sim.serve)
    add_control_routes(app, sim.hospital)
    return app


def load_shipped_system(path: Path = CONFIG_PATH) -> dict[str, Any]:
    """The shipped system TOML as ``{"id", "name", "adapter", "business_types", "config"}``."""
    return load_system_toml(path)


class SoapHisSimHandle(SimHandleBase):
    """A running simulator: its hospital, where it listens, and ``stop()``."""

    def __init__(self, sim: SoapHisSimulator, runner: web.AppRunner) -> None:
        self.simulator = sim
        self.hospital = sim.hospital
        self.base_url = sim.base_url
        self.endpoint = sim.endpoint
        self.wsdl_url = f"{sim.endpoint}?wsdl"
        self.control_url = f"{sim.base_url}/_sim"
        self._runner = runner

    @property
    def info(self) -> SimulatorInfo:
        return SimulatorInfo(channel="his-soap", base_url=self.base_url, control_url=self.control_url,
                             merchants=[{"system_id": s["id"], "endpoint": self.endpoint, "wsdl": self.wsdl_url}
                                        for s in self.system_configs()])

    def system_configs(self) -> list[dict[str, Any]]:
        """The shipped ``configs/his/soap-sim.toml``, its endpoint pointed at this simulator."""
        system = load_shipped_system()
        return [{**system, "config": {**system["config"], "endpoint": self.endpoint}}]



async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, hospital: SimHospital | None = None,
                          require_auth: bool = True) -> SoapHisSimHandle:
    """Serve a SOAP HIS for ``hospital`` (a fresh seeded one by default) on ``host:port``."""
    sim = SoapHisSimulator(hospital or SimHospital(), require_auth=require_auth)
    runner, _ = await serve_app(build_app(sim), host, port, on_bound=lambda url: setattr(sim, "base_url", url))
    return SoapHisSimHandle(sim, runner)
