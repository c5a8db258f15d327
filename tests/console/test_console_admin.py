"""Console users from the command line, the demo's users, the permission map, the scheduled-jobs view,
and the operation log's chain under concurrent writers (two cores on one database, as two processes)."""
from __future__ import annotations

import asyncio
import json
import os
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
from click.testing import CliRunner

from gateway.api.console import permission_for
from gateway.cli import cli
from gateway.console.permissions import admin_permission
from gateway.core import Core
from tests.console.conftest import PASSWORD, ConsoleGateway, oplog


def _cli(cgw: ConsoleGateway, *args: str) -> Any:
    s = cgw.gw.settings
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("YINYI_")}  # nothing else
    env.update({"YINYI_DATA_DIR": str(s.data_dir), "YINYI_DATABASE_URL": s.database_url,
                "YINYI_REDIS_URL": s.redis_url})
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


async def test_cli_adds_lists_resets_and_unlocks_users(cgw: ConsoleGateway) -> None:
    out = await asyncio.to_thread(_cli, cgw, "console", "user", "add", "fin-liu", "--role", "finance",
                                  "--password", "Fin-liu-2025!", "--display-name", "刘会计", "--department", "财务科")
    assert out.exit_code == 0, out.output
    uri = re.search(r"otpauth://\S+", out.output).group(0)
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    assert "fin-liu" in uri and "finance" in out.output
    # The printed secret logs in.
    c = cgw.client()
    _, step1 = await c.call("POST", "/console/api/login", {"username": "fin-liu", "password": "Fin-liu-2025!"})
    assert step1.get("totp_required") is True, step1
    status, me = await c.call("POST", "/console/api/login/totp",
                              {"login_token": step1["login_token"], "code": await cgw.code("fin-liu", secret)})
    assert status == 200 and me["user"]["display_name"] == "刘会计", me
    # Without a password one is generated, and must be changed.
    out = await asyncio.to_thread(_cli, cgw, "console", "user", "add", "cash-ma", "--role", "cashier", "--json")
    created = json.loads(out.output)
    assert created["password"] and created["user"]["must_change_password"] is True and created["otpauth_uri"]
    out = await asyncio.to_thread(_cli, cgw, "console", "user", "add", "cash-ma", "--role", "cashier")
    assert out.exit_code != 0 and "exists" in out.output
    out = await asyncio.to_thread(_cli, cgw, "console", "user", "add", "weak", "--role", "cashier",
                                  "--password", "weak")
    assert out.exit_code != 0 and "CONSOLE_PASSWORD_POLICY" in out.output
    out = await asyncio.to_thread(_cli, cgw, "console", "user", "list")
    assert out.exit_code == 0
    names = [line.split()[0] for line in out.output.splitlines()]
    assert {"fin-liu", "cash-ma", "admin", "fin-zhao"} <= set(names)
    rows = json.loads((await asyncio.to_thread(_cli, cgw, "console", "user", "list", "--json")).output)
    assert next(u for u in rows if u["username"] == "fin-liu")["totp_enrolled"] is True

    # reset-totp: a new secret, the old one no longer works, sessions end.
    out = await asyncio.to_thread(_cli, cgw, "console", "user", "reset-totp", "fin-liu")
    assert out.exit_code == 0, out.output
    new_secret = parse_qs(urlparse(re.search(r"otpauth://\S+", out.output).group(0)).query)["secret"][0]
    assert new_secret != secret
    assert (await c.get("/console/api/me"))[0] == 401
    c2 = cgw.client()
    _, step1 = await c2.call("POST", "/console/api/login", {"username": "fin-liu", "password": "Fin-liu-2025!"})
    status, _ = await c2.call("POST", "/console/api/login/totp",
                              {"login_token": step1["login_token"], "code": pyotp.TOTP(secret).now()})
    assert status == 401
    # unlock
    for _ in range(cgw.gw.settings.console_lockout_attempts):
        await cgw.client().call("POST", "/console/api/login", {"username": "fin-liu", "password": "nope"})
    status, locked = await cgw.client().call("POST", "/console/api/login",
                                             {"username": "fin-liu", "password": "Fin-liu-2025!"})
    assert status == 423
    out = await asyncio.to_thread(_cli, cgw, "console", "user", "unlock", "fin-liu")
    assert out.exit_code == 0, out.output
    status, step1 = await cgw.client().call("POST", "/console/api/login",
                                            {"username": "fin-liu", "password": "Fin-liu-2025!"})
    assert status == 200
    admin = await cgw.login("admin")
    actions = [(e["user"], e["action"]) for e in await oplog(admin, target="fin-liu")]
    assert ("cli", "user.unlock") in actions and ("cli", "user.reset_totp") in actions
    assert ("cli", "user.create") in actions


async def test_the_demo_users_log_in_with_the_printed_secrets(cgw: ConsoleGateway,
                                                             capsys: Any) -> None:
    from gateway.demo import DEMO_CONSOLE_USERS, _print_banner, setup_console

    con = await setup_console(cgw.core, cgw.gw.base_url)
    assert con["url"].endswith("/console/")
    roles = {u["username"]: u["role"] for u in con["users"]}
    assert roles["fin-zhao"] == "finance" and roles["dir-qian"] == "finance_director" and roles["admin"] == "admin"
    for u in con["users"][:3]:
        c = cgw.client()
        _, step1 = await c.call("POST", "/console/api/login", {"username": u["username"], "password": u["password"]})
        assert step1.get("totp_required"), step1
        status, me = await c.call("POST", "/console/api/login/totp", {
            "login_token": step1["login_token"], "code": await cgw.code(u["username"], u["totp_secret"])})
        assert status == 200 and me["user"]["roles"] == [u["role"]], me
    # Again (a restarted demo): the same password and secrets still hold.
    await setup_console(cgw.core, cgw.gw.base_url)
    assert len(DEMO_CONSOLE_USERS) == len(con["users"])
    sandbox = {"gateway": {"base_url": cgw.gw.base_url, "openapi": "", "health": "", "metrics": ""},
               "caller": {"app_id": "a", "secret": "s"}, "admin": {"app_id": "b", "secret": "t"},
               "simulators": {}, "console": con}
    _print_banner(sandbox, cgw.gw.settings.data_dir / "sandbox.json")
    banner = capsys.readouterr().out
    assert con["url"] in banner and con["users"][0]["password"] in banner
    assert all(u["totp_secret"] in banner for u in con["users"])
    assert PASSWORD != con["users"][0]["password"]


def test_the_permission_map() -> None:
    assert admin_permission("GET", "/cases") == "cases.view"
    assert admin_permission("HEAD", "/cases/{id}") == "cases.view"
    assert admin_permission("POST", "/cases/{id}/refund") == "cases.handle"
    assert admin_permission("POST", "/approvals/{id}/approve") == "approvals.decide"
    assert admin_permission("POST", "/approvals/{id}/withdraw") == "approvals.view"
    assert admin_permission("GET", "/recon/runs") == "recon.view"
    assert admin_permission("POST", "/recon/runs") == "recon.run"
    assert admin_permission("POST", "/recon/diffs/{id}/mark") == "recon.handle"
    assert admin_permission("GET", "/his/systems/{id}/bill") == "recon.view"
    assert admin_permission("POST", "/his/systems/{id}/bill-import") == "recon.handle"
    assert admin_permission("PUT", "/his/systems/{id}") == "config.edit"
    assert admin_permission("POST", "/apps/{id}/rotate-secret") == "system.users"
    assert admin_permission("GET", "/audit") == "oplog.view"
    assert admin_permission("DELETE", "/cases/{id}") == "cases.handle"
    # Routes nobody classified (a plugin's, say) are for administrators only.
    assert admin_permission("GET", "/plugin-thing") == "system.users"
    assert admin_permission("POST", "/auditx") == "system.users"
    assert permission_for("GET", "/console/api/admin/reviews") == "payments.view"
    assert permission_for("GET", "/console/api/me") == "any"
    assert permission_for("POST", "/console/api/login") == "public"
    assert permission_for("GET", "/console/api/unknown") == "system.users"


async def test_jobs_show_workers_runs_and_fetches(cgw: ConsoleGateway) -> None:
    from gateway.timeutil import local_today

    await cgw.core.recon.run(local_today(), actor="test", mode="t0")
    admin = await cgw.login("admin")
    status, jobs = await admin.get("/console/api/system/jobs")
    assert status == 200, jobs
    names = {w["name"]: w for w in jobs["workers"]}
    assert names["resolver"]["running"] is True and names["his-writeback"]["interval_seconds"] == 0.1
    assert names["recon-scheduler"]["running"] is False  # switched off in tests
    assert jobs["recon_runs"] and jobs["recon_runs"][0]["mode"] == "t0"
    assert jobs["fetches"] and {"source", "status"} <= set(jobs["fetches"][0])
    cashier = await cgw.login("cashier-li")
    assert (await cashier.get("/console/api/system/jobs"))[0] == 403


async def test_two_processes_append_to_one_chain(cgw: ConsoleGateway) -> None:
    other = Core(cgw.gw.settings)  # a second gateway process on the same database
    await other.start(background=False, run_migrations=False)
    try:
        writes = [core.console.oplog.write(username=f"p{i % 2}", ip="10.0.0.1", action="test.concurrent",
                                           target=str(i), detail={"i": i, "nested": {"b": [1, 2], "a": "值"}})
                  for i, core in enumerate([cgw.core, other] * 20)]
        ids = await asyncio.gather(*writes)
    finally:
        await other.stop()
    assert len(set(ids)) == 40
    admin = await cgw.login("admin")
    status, verdict = await admin.get("/console/api/system/oplog/verify")
    assert verdict["ok"] is True and verdict["checked"] == verdict["last_id"], verdict
    assert len(await oplog(admin, action="test.concurrent", limit="100")) == 40
