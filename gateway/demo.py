"""``yinyi demo``: the gateway, every registered simulator and a sandbox hospital.

Embedded defaults (SQLite in the data directory, in-process nonces). Prints and
writes ``sandbox.json`` with the caller credentials and each simulator's base URL
and merchant credentials, so an integrator can point an SDK at it at once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from .api.app import create_app
from .config import Settings
from .core import Core

log = logging.getLogger("yinyi.demo")

SANDBOX_CAMPUS = ("main", "本院区")
SANDBOX_APPS = (
    # (app id, name, scopes)
    ("app_sandbox_kiosk", "自助机(沙箱) / sandbox kiosk", ["pay"]),
    ("app_sandbox_admin", "运维管理(沙箱) / sandbox admin", ["pay", "admin"]),
)


# Stable simulator ports (gateway port + offset) so an integrator's settings survive restarts.
_SIM_PORTS = {"wechatpay": 1, "alipay": 2, "unionpay": 3, "ecny": 4}


def _sim_port_offset(channel: str, all_channels: dict[str, Any]) -> int:
    if channel in _SIM_PORTS:
        return _SIM_PORTS[channel]
    others = sorted(c for c in all_channels if c not in _SIM_PORTS)
    return 10 + others.index(channel)


async def _ensure_app(core: Core, app_id: str, name: str, scopes: list[str]) -> dict[str, str]:
    if not await core.directory.app_exists(app_id):
        await core.directory.create_app(name, app_id=app_id, scopes=scopes)
    info = await core.directory.get_app(app_id)
    return {"app_id": info.id, "secret": info.secret, "name": info.name}


async def setup_sandbox(core: Core, simulators: dict[str, Any]) -> dict[str, Any]:
    """Create the sandbox hospital in the ledger: campus, merchants from the simulators, apps."""
    await core.directory.upsert_campus(*SANDBOX_CAMPUS)
    sims: dict[str, Any] = {}
    for channel, handle in simulators.items():
        configs = handle.merchant_configs()
        merchant_ids = []
        for i, cfg in enumerate(configs, start=1):
            mid = f"mch_{channel}_{i}"
            await core.directory.create_merchant(channel=channel, name=f"{channel} 沙箱商户 {i}", config=cfg,
                                                 merchant_id=mid, priority=i)
            merchant_ids.append(mid)
        sims[channel] = {**handle.info.model_dump(mode="json"), "gateway_merchant_ids": merchant_ids}
    apps = [await _ensure_app(core, *a) for a in SANDBOX_APPS]
    return {"simulators": sims, "caller": apps[0], "admin": apps[1]}


_HIS_SIM_PORTS = {"his-rest": 20, "his-soap": 21}


async def setup_his(core: Core, his_sims: dict[str, Any]) -> dict[str, Any]:
    """Configure the sandbox business systems pointing at the HIS simulators."""
    from .services.his_systems import SystemIn

    out: dict[str, Any] = {}
    for name, handle in his_sims.items():
        systems = []
        for cfg in handle.system_configs():
            await core.his.put("demo", cfg["id"], SystemIn(
                name=cfg["name"], adapter=cfg["adapter"], business_types=cfg.get("business_types", []),
                config=cfg["config"], **({"options": cfg["options"]} if cfg.get("options") else {})))
            systems.append(cfg["id"])
        hospital = getattr(handle, "hospital", None)
        sample = _sample_patient(hospital) if hospital is not None else None
        out[name] = {**handle.info.model_dump(mode="json"), "systems": systems, "sample_patient": sample}
    return out


# The business type a caller names for a charge of each bill type, for the printed example.
_BILL_BUSINESS_TYPE = {"outpatient_registration": "registration", "outpatient_settlement": "outpatient",
                       "inpatient_deposit": "inpatient_deposit", "inpatient_settlement": "inpatient_settlement"}


def _sample_patient(hospital: Any) -> dict[str, Any] | None:
    """A patient with a pending charge, preferring a registration fee (the kiosk example).

    Charge ids carry the day the simulator was seeded, so the demo prints them
    rather than the README fixing one."""
    from .money import fen_to_yuan

    best: tuple[int, Any, Any] | None = None
    for patient in hospital.patients.values():
        for charge in hospital.pending(patient.patient_id):
            rank = {"outpatient_registration": 0, "outpatient_settlement": 1}.get(charge.bill_type, 2)
            if best is None or rank < best[0]:
                best = (rank, patient, charge)
        if best is not None and best[0] == 0:
            break
    if best is None:
        return None
    _, patient, charge = best
    return {"patient_id": patient.patient_id, "card_no": patient.card_no, "visit_no": charge.visit_no,
            "charge_id": charge.charge_id, "amount": charge.amount, "amount_yuan": fen_to_yuan(charge.amount),
            "bill_type": charge.bill_type, "business_type": _BILL_BUSINESS_TYPE.get(charge.bill_type, "outpatient")}


async def setup_insurance(core: Core, ins_sims: dict[str, Any]) -> dict[str, Any]:
    """Configure the sandbox insurance centres pointing at the insurance-centre simulators."""
    from .services.insurance_centres import CentreIn

    out: dict[str, Any] = {}
    for name, handle in ins_sims.items():
        centres = []
        for cfg in handle.system_configs():
            await core.insurance_centres.put("demo", cfg["id"], CentreIn(name=cfg["name"], adapter=cfg["adapter"],
                                                                         config=cfg["config"]))
            centres.append(cfg["id"])
        persons = getattr(getattr(handle, "centre", None), "persons", {})
        qr = next((p.qr_code for p in persons.values() if p.qr_code and p.wallet_balance), None)
        out[name] = {**handle.info.model_dump(mode="json"), "centres": centres, "sample_evoucher_qr": qr}
    return out


async def setup_day(core: Core, simulators: dict[str, Any], his_sims: dict[str, Any],
                    his: dict[str, Any]) -> dict[str, Any]:
    """Today's activity through the gateway's services (gateway/demo_day.py), reconciled T+0; the
    printed sample charge is looked up again afterwards."""
    from .demo_day import make_day

    out = await make_day(core, simulators, his_sims, his)
    for name, handle in his_sims.items():
        if getattr(handle, "hospital", None) is not None and name in his:
            his[name]["sample_patient"] = _sample_patient(handle.hospital)
    return out


async def setup_recon(core: Core, his: dict[str, Any]) -> dict[str, Any]:
    """Generated bills of past days, reconciled, so that the calendar, differences and reports have data."""
    from .recon.demo_data import seed_history

    systems = [sys_id for sim in his.values() for sys_id in sim.get("systems", [])]
    return await seed_history(core, his_system=systems[0] if systems else "his")


# The sandbox console's users: a known password and fixed TOTP secrets, printed and written to
# sandbox.json so that a tester can compute codes. Demo only: never use these anywhere else.
DEMO_CONSOLE_PASSWORD = "Yinyi-demo-2025"
DEMO_CONSOLE_USERS = (
    # (username, display name, role, TOTP secret)
    ("admin", "系统管理员", "admin", "YINYIDEMQADMINAAYINYIDEMQADMINAA"),
    ("dir-qian", "钱主管", "finance_director", "YINYIDEMQDIRQIANYINYIDEMQDIRQIAN"),
    ("fin-zhao", "赵会计", "finance", "YINYIDEMQFINZHAQYINYIDEMQFINZHAQ"),
    ("cashier-li", "李收费", "cashier", "YINYIDEMQCASHLIAYINYIDEMQCASHLIA"),
    ("audit-sun", "孙审计", "auditor", "YINYIDEMQAUDSUNAYINYIDEMQAUDSUNA"),
)


async def setup_console(core: Core, base_url: str) -> dict[str, Any]:
    """The sandbox's console users (finance console at /console/), each with the known demo password
    and a fixed TOTP secret."""
    from .console.security import otpauth_uri

    users = []
    for username, name, role, secret in DEMO_CONSOLE_USERS:
        await core.console.set_demo_user(username, name, [role], DEMO_CONSOLE_PASSWORD, secret)
        users.append({"username": username, "display_name": name, "role": role, "password": DEMO_CONSOLE_PASSWORD,
                      "totp_secret": secret,
                      "otpauth_uri": otpauth_uri(secret, username, core.settings.console_totp_issuer)})
    return {"url": f"{base_url}/console/", "users": users}


async def run_demo(host: str = "127.0.0.1", port: int = 8080, data_dir: str | None = None,
                   ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> dict[str, Any]:
    overrides: dict[str, Any] = {"host": host, "port": port}
    if data_dir:
        overrides["data_dir"] = Path(data_dir)
    settings = Settings(**overrides)
    core = Core(settings)
    # the scheduled reconciliation starts once the sandbox and today's activity are in place
    await core.start(recon_scheduler=False)
    simulators: dict[str, Any] = {}
    his_sims: dict[str, Any] = {}
    ins_sims: dict[str, Any] = {}
    runner: web.AppRunner | None = None
    try:
        for channel, factory in sorted(core.registry.simulators.items()):
            simulators[channel] = await factory(host, port + _sim_port_offset(channel, core.registry.simulators))
        for i, (name, factory) in enumerate(sorted(core.registry.his_simulators.items())):
            his_sims[name] = await factory(host, port + _HIS_SIM_PORTS.get(name, 25 + i))
        for i, (name, factory) in enumerate(sorted(core.registry.insurance_simulators.items())):
            # the wallet profile, so that the receipt shows the insurance wallet apart
            kwargs = {"profile": "sm_oauth"} if name == "nhsa" else {}
            ins_sims[name] = await factory(host, port + 30 + i, **kwargs)
        sandbox = await setup_sandbox(core, simulators)
        sandbox["his"] = await setup_his(core, his_sims)
        sandbox["insurance"] = await setup_insurance(core, ins_sims)
        sandbox["recon"] = await setup_recon(core, sandbox["his"])
        app = create_app(core=core)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        base = f"http://{host}:{port}"
        sandbox["gateway"] = {"base_url": base, "openapi": f"{base}/v1/openapi.json", "health": f"{base}/v1/health",
                              "metrics": f"{base}/metrics"}
        sandbox["console"] = await setup_console(core, base)
        sandbox["today"] = await setup_day(core, simulators, his_sims, sandbox["his"])
        if settings.recon_scheduler_enabled:
            core.recon_scheduler.start()
        path = settings.data_dir / "sandbox.json"
        path.write_text(json.dumps(sandbox, ensure_ascii=False, indent=2), encoding="utf-8")
        os.chmod(path, 0o600)
        _print_banner(sandbox, path)
        if ready is not None:
            ready.set()
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await stop.wait()
        return sandbox
    finally:
        if runner is not None:
            await runner.cleanup()  # stops the core through the app's cleanup context
        else:
            await core.stop()
        for handle in [*simulators.values(), *his_sims.values(), *ins_sims.values()]:
            await handle.stop()


def _print_banner(sandbox: dict[str, Any], path: Path) -> None:
    g = sandbox["gateway"]
    c = sandbox["caller"]
    lines = [
        "", "yinyi demo is running / 银医沙箱已启动", "",
        f"  gateway    {g['base_url']}   (OpenAPI {g['openapi']})",
        f"  caller app {c['app_id']}   secret {c['secret']}",
        f"  admin app  {sandbox['admin']['app_id']}   secret {sandbox['admin']['secret']}",
    ]
    for channel, sim in sandbox["simulators"].items():
        lines.append(f"  simulator  {channel:<10} {sim['base_url']}   control {sim.get('control_url')}")
    for name, sim in sandbox.get("his", {}).items():
        lines.append(f"  business   {name:<10} {sim['base_url']}   control {sim.get('control_url')}   "
                     f"systems {', '.join(sim['systems'])}")
    his_demo = next((s for s in sandbox.get("his", {}).values() if s.get("sample_patient")), None)
    if his_demo:
        sp = his_demo["sample_patient"]
        system = his_demo["systems"][0]
        subject = "挂号费" if sp["bill_type"] == "outpatient_registration" else "门诊缴费"
        pay = {"out_trade_no": "k-1", "amount": sp["amount"], "subject": subject,
               "business_type": sp["business_type"], "method": "code", "auth_code": "134567890123451234",
               "his": {"system": system, "patient_id": sp["patient_id"], "charge_ids": [sp["charge_id"]]}}
        pay_json = json.dumps(pay, ensure_ascii=False, separators=(",", ":"))
        lines += ["", f"  sandbox patient (沙箱患者) of {system}: card_no {sp['card_no']}   patient_id "
                      f"{sp['patient_id']}   pending charge (待缴费) {sp['charge_id']}   "
                      f"{sp['amount']} fen ({sp['amount_yuan']} 元)",
                  f"        yinyi call GET '/v1/his/pending-charges?system={system}&card_no={sp['card_no']}'",
                  f"        yinyi call POST /v1/payments '{pay_json}'",
                  f"  HIS faults (模拟HIS故障): POST {his_demo.get('control_url')}/faults "
                  "'{\"op\":\"write_back\",\"kind\":\"refuse\"}'",
                  "  single-sided cases: yinyi call --admin GET /v1/admin/cases"]
    ins_demo = next((s for s in sandbox.get("insurance", {}).values() if s.get("sample_evoucher_qr")), None)
    if ins_demo:
        lines += ["", f"  insurance  centre {', '.join(ins_demo['centres'])} at {ins_demo['base_url']}; identify a "
                      "sandbox patient by e-voucher (医保电子凭证):",
                  "        yinyi call POST /v1/insurance/persons/identify "
                  f"'{{\"method\":\"evoucher\",\"qr_code\":\"{ins_demo['sample_evoucher_qr']}\"}}'",
                  "  then register, upload fees and POST /v1/insurance/settlements (docs/insurance/flows.md)"]
    recon = sandbox.get("recon")
    if recon:
        first, last = recon["days"][0], recon["days"][-1]
        lines += ["", f"  reconciliation (对账): generated bills {first} … {last}, "
                      f"{recon['injected_differences']} differences injected",
                  f"        yinyi recon diffs --date {recon['runs'][len(recon['runs']) // 2]['day']}   "
                  "yinyi recon run --date <today>   yinyi report long_short --begin "
                  f"{first} --end {last}",
                  f"        yinyi call --admin GET '/v1/admin/recon/calendar?month={last[:7]}'"]
    day = sandbox.get("today")
    if day and day.get("payments"):
        from .money import fen_to_yuan

        case = day.get("case") or {}
        lines += ["", f"  today (今日, {day['day']}): {day['payments']} payments ({fen_to_yuan(day['paid'])} 元), "
                      f"{day['refunds']} refunds ({fen_to_yuan(day['refunded'])} 元), reconciled T+0"]
        if case:
            state = ("refund applied for by cashier-li, waiting for fin-zhao's approval (待审核)"
                     if case["status"] == "APPROVING" else case["status"])
            lines.append(f"        single-sided case (单边账) {case['id']} {fen_to_yuan(case['amount'])} 元: {state}")
    con = sandbox.get("console")
    if con:
        lines += ["", f"  finance console (财务管理后台) {con['url']}   demo password (演示密码) "
                      f"{con['users'][0]['password']}   TOTP secrets (动态验证码密钥, for an authenticator app):"]
        lines += [f"        {u['username']:<11} {u['role']:<17} {u['totp_secret']}" for u in con["users"]]
    lines += ["", f"  credentials for SDKs and simulators: {path}",
              "  try:  yinyi call POST /v1/payments "
              "'{\"out_trade_no\":\"demo-1\",\"amount\":1,\"subject\":\"挂号费\",\"business_type\":\"outpatient\","
              "\"method\":\"code\",\"auth_code\":\"134567890123456789\"}'", "",
              "  Ctrl-C stops the demo.", ""]
    print("\n".join(lines), flush=True)
