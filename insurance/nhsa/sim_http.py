"""HTTP face of the simulated centre: the call endpoint(s), OAuth token, e-voucher decode."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
from typing import Any

from aiohttp import web

from gateway.testing.simkit import abort_request as abort

from .sim_core import InsuranceCentre
from .sim_faults import Fault, FaultSet
from .sim_model import SimError
from .sim_recon import RawFile
from .sim_security import SimPlain, SimSm
from .wire import CST, dumps, loads

CENTRE_KEY = web.AppKey("nhsa_centre", InsuranceCentre)
SECURITY_KEY = web.AppKey("nhsa_security", SimPlain)
FAULTS_KEY = web.AppKey("nhsa_faults", FaultSet)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json", charset="utf-8")


def _answer(centre: InsuranceCentre, *, output: Any = None, err_msg: str | None = None,
            warn_msg: str | None = None) -> dict[str, Any]:
    now = dt.datetime.now(CST)
    return {"infcode": "-1" if err_msg else "0",
            "inf_refmsgid": f"{centre.admvs}{now.strftime('%Y%m%d%H%M%S')}{secrets.randbelow(10**10):010d}",
            "refmsg_time": now.strftime("%Y%m%d%H%M%S%f")[:17], "respond_time": now.strftime("%Y%m%d%H%M%S%f")[:17],
            "err_msg": err_msg, "warn_msg": warn_msg, "output": output}


async def _apply(fault: Fault, request: web.Request) -> web.Response | None:
    """Act out a connection-level fault; ``None`` when the fault acts on the answer."""
    if fault.kind == "timeout":
        await asyncio.sleep(fault.delay_seconds)
        return abort(request)
    if fault.kind == "drop":
        return abort(request)
    if fault.kind == "http_500":
        return web.Response(status=500, text="<html><body>500 Internal Server Error</body></html>",
                            content_type="text/html")
    return None


async def call_service(request: web.Request) -> web.StreamResponse:
    centre, security, faults = request.app[CENTRE_KEY], request.app[SECURITY_KEY], request.app[FAULTS_KEY]
    try:
        payload = loads(await request.read())
        if not isinstance(payload, dict):
            raise ValueError
    except ValueError:
        return _json({"infcode": "-1", "err_msg": "请求报文不是有效的JSON"}, status=400)
    security.authenticate(request.headers)
    infno = str(payload.get("infno") or "")
    path_infno = request.match_info.get("infno")
    fault = faults.pick(infno)
    if fault and fault.when == "before":
        if (resp := await _apply(fault, request)) is not None:
            return resp
        if fault.kind == "error":
            return _json(security.seal_answer(_answer(centre, err_msg=fault.err_msg)))
    output: Any = None
    try:
        if path_infno is not None and path_infno != infno:
            raise SimError(f"交易编号[{infno}]与请求路径不符")
        env = security.open_request(payload)
        output = centre.process(env)
        answer = _answer(centre, output=output, warn_msg=centre.last_warn)
    except SimError as exc:
        answer = _answer(centre, err_msg=exc.err_msg)
    if fault and fault.when == "after":
        if (resp := await _apply(fault, request)) is not None:
            return resp
        if fault.kind == "error":
            answer = _answer(centre, err_msg=fault.err_msg)
    if isinstance(output, RawFile) and answer["infcode"] == "0":
        return web.Response(body=output.content, content_type="application/octet-stream",
                            headers={"Content-Disposition": f'attachment; filename="{output.filename}"'})
    sealed = security.seal_answer(answer)
    if fault and fault.kind == "bad_signature" and sealed.get("cainfo"):
        sig = bytearray(base64.b64decode(sealed["cainfo"]))
        sig[len(sig) // 2] ^= 0xFF
        sealed["cainfo"] = base64.b64encode(bytes(sig)).decode()
    return _json(sealed)


async def oauth_token(request: web.Request) -> web.Response:
    security = request.app[SECURITY_KEY]
    if not isinstance(security, SimSm):
        raise web.HTTPNotFound()
    form = await request.post()
    return _json(security.issue_token({k: str(v) for k, v in form.items()}))


async def evoucher_decode(request: web.Request) -> web.Response:
    centre = request.app[CENTRE_KEY]
    try:
        body = loads(await request.read())
        data = body["data"]
    except (ValueError, KeyError, TypeError):
        return _json({"code": 1, "message": "请求格式错误", "data": None})
    if body.get("transType") != "ec.query" or data.get("orgId") != centre.fixmedins_code:
        return _json({"code": 1, "message": "机构或交易类型无效", "data": None})
    try:
        token, person = centre.issue_ec_token(str(data.get("qrCode") or ""))
    except SimError as exc:
        return _json({"code": 1, "message": exc.err_msg, "data": None})
    inner = {"idNo": person.certno, "idType": "01", "userName": person.name, "ecToken": token,
             "insuOrg": person.insuplc_admdvs, "ecIndexNo": f"EC{person.psn_no[-8:]}", "gender": person.gender,
             "birthday": person.birthday.strftime("%Y%m%d"), "nationality": "CHN"}
    return _json({"code": 0, "message": "成功", "data": dumps(inner)})


def add_routes(app: web.Application) -> None:
    profile = app[CENTRE_KEY].profile
    path = profile.path
    app.router.add_post(path, call_service)
    app.router.add_post(profile.token_path, oauth_token)
    app.router.add_post(profile.evoucher_path, evoucher_decode)
