"""Console login (password, then TOTP), sessions, lockout, CSRF and the security headers, over real HTTP."""
from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp

from tests.console.conftest import PASSWORD, ConsoleFactory, ConsoleGateway, oplog

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _secure(headers: Any) -> None:
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_login_with_password_and_totp_then_logout(cgw: ConsoleGateway) -> None:
    c = cgw.client()
    status, step1 = await c.call("POST", "/console/api/login", {"username": "fin-zhao", "password": PASSWORD})
    assert status == 200 and step1 == {"totp_required": True, "login_token": step1["login_token"]}
    _secure(c.last_headers)
    assert c.last_headers["Cache-Control"] == "no-store"
    # A wrong code is refused; the token stays good for the right one.
    status, problem = await c.call("POST", "/console/api/login/totp",
                                   {"login_token": step1["login_token"], "code": "000000"})
    assert status == 401 and problem["code"] == "CONSOLE_TOTP_INVALID", problem
    assert problem["message_zh"] and problem["message_en"]
    status, me = await c.call("POST", "/console/api/login/totp",
                              {"login_token": step1["login_token"], "code": await cgw.code("fin-zhao")})
    assert status == 200, me
    cookie = c.last_headers["Set-Cookie"]
    assert cookie.startswith("yinyi_console=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie  # plain http here
    user = me["user"]
    assert user["username"] == "fin-zhao" and user["display_name"] == "赵会计" and user["roles"] == ["finance"]
    assert "approvals.decide" in user["permissions"] and "system.users" not in user["permissions"]
    assert user["approval_roles"] == ["finance"] and me["csrf_token"]
    # The cookie holds a random token; the database only its hash.
    token = cookie.split(";")[0].split("=", 1)[1]
    from sqlalchemy import text

    async with cgw.core.engine.connect() as conn:
        hashes = [r[0] for r in (await conn.execute(text("SELECT token_hash FROM console_sessions")))]
    assert token not in hashes and len(hashes) == 1 and len(hashes[0]) == 64
    # The login token is spent.
    status, problem = await c.call("POST", "/console/api/login/totp",
                                   {"login_token": step1["login_token"], "code": await cgw.code("fin-zhao")})
    assert status == 401 and problem["code"] == "CONSOLE_LOGIN_EXPIRED"

    c.csrf = me["csrf_token"]
    status, again = await c.get("/console/api/me")
    assert status == 200 and again == me
    _secure(c.last_headers)
    status, _ = await c.post("/console/api/logout")
    assert status == 200
    status, problem = await c.get("/console/api/me")
    assert status == 401 and problem["code"] == "CONSOLE_SESSION_EXPIRED"
    _secure(c.last_headers)  # errors carry the headers too

    admin = await cgw.login("admin")
    actions = [e["action"] for e in await oplog(admin, user="fin-zhao")]
    assert actions[:3] == ["logout", "login", "login.totp_failed"], actions
    entry = (await oplog(admin, user="fin-zhao", action="login"))[-1]
    assert entry["ip"] == "127.0.0.1" and entry["action_zh"] == "动态验证码错误"


async def test_a_user_without_totp_enrols_at_first_login(cgw: ConsoleGateway) -> None:
    admin = await cgw.login("admin")
    status, created = await admin.post("/console/api/system/users", {
        "username": "clerk-wu", "display_name": "吴出纳", "roles": ["cashier"], "password": "Clerk-wu-2025!"})
    assert status == 201 and created["user"]["totp_enrolled"] is False, created
    assert "password" not in created  # given, so not shown back
    c = cgw.client()
    status, step1 = await c.call("POST", "/console/api/login", {"username": "clerk-wu", "password": "Clerk-wu-2025!"})
    assert status == 200 and step1["totp_enrolment"] is True, step1
    uri = urlparse(step1["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp" and "clerk-wu" in uri.path
    secret = parse_qs(uri.query)["secret"][0]
    assert parse_qs(uri.query)["issuer"] == ["yinyi"]
    status, me = await c.call("POST", "/console/api/login/totp",
                              {"login_token": step1["login_token"], "code": await cgw.code("clerk-wu", secret)})
    assert status == 200 and me["user"]["roles"] == ["cashier"], me
    # Enrolled: the next login asks for a code of the same secret.
    status, step1 = await cgw.client().call("POST", "/console/api/login",
                                            {"username": "clerk-wu", "password": "Clerk-wu-2025!"})
    assert status == 200 and step1.get("totp_required") is True and "otpauth_uri" not in step1
    from sqlalchemy import text

    async with cgw.core.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT totp_secret_enc, password_hash FROM console_users "
                                          "WHERE username = 'clerk-wu'"))).one()
    assert secret not in stored[0] and cgw.core.vault.decrypt(stored[0]) == secret  # encrypted at rest
    assert stored[1].startswith("scrypt$") and "Clerk-wu" not in stored[1]
    assert [e["action"] for e in await oplog(admin, user="clerk-wu")][:2] == ["login", "totp.enrol"]


async def test_wrong_passwords_lock_the_account_and_an_administrator_unlocks_it(
        console_factory: ConsoleFactory) -> None:
    cgw = await console_factory(console_lockout_attempts=3, console_lockout_minutes=10)
    c = cgw.client()
    status, unknown = await c.call("POST", "/console/api/login", {"username": "nobody", "password": "x"})
    assert status == 401 and unknown["code"] == "CONSOLE_LOGIN_FAILED"
    for _ in range(2):
        status, wrong = await c.call("POST", "/console/api/login", {"username": "cashier-li", "password": "wrong!"})
        assert status == 401 and wrong["code"] == "CONSOLE_LOGIN_FAILED"
        assert {k: wrong[k] for k in ("title", "message_zh", "message_en")} == \
            {k: unknown[k] for k in ("title", "message_zh", "message_en")}  # no hint which part was wrong
    status, locked = await c.call("POST", "/console/api/login", {"username": "cashier-li", "password": "wrong!"})
    assert status == 423 and locked["code"] == "CONSOLE_ACCOUNT_LOCKED" and locked["locked_until"], locked
    # Locked: even the right password is refused (counted in the database, for every process).
    status, still = await c.call("POST", "/console/api/login", {"username": "cashier-li", "password": PASSWORD})
    assert status == 423 and still["code"] == "CONSOLE_ACCOUNT_LOCKED"

    admin = await cgw.login("admin")
    _, listed = await admin.get("/console/api/system/users")
    li = next(u for u in listed["items"] if u["username"] == "cashier-li")
    assert li["locked"] is True
    actions = [e["action"] for e in await oplog(admin, target="cashier-li")]
    assert actions[:3] == ["login.locked", "login.lockout", "login.failed"], actions
    status, _ = await admin.call("PUT", "/console/api/system/users/cashier-li", {"unlock": True})
    assert status == 200
    await cgw.login("cashier-li")
    assert (await oplog(admin, target="cashier-li"))[0]["action"] == "login"


async def test_failed_codes_count_towards_the_lockout(console_factory: ConsoleFactory) -> None:
    cgw = await console_factory(console_lockout_attempts=2)
    c = cgw.client()
    _, step1 = await c.call("POST", "/console/api/login", {"username": "fin-zhao", "password": PASSWORD})
    status, _ = await c.call("POST", "/console/api/login/totp", {"login_token": step1["login_token"], "code": "111111"})
    assert status == 401
    status, problem = await c.call("POST", "/console/api/login/totp",
                                   {"login_token": step1["login_token"], "code": "222222"})
    assert status == 423 and problem["code"] == "CONSOLE_ACCOUNT_LOCKED"
    status, problem = await c.call("POST", "/console/api/login/totp",
                                   {"login_token": step1["login_token"], "code": await cgw.code("fin-zhao")})
    assert status == 401 and problem["code"] == "CONSOLE_LOGIN_EXPIRED"  # the lockout spent the token


async def test_sessions_end_when_idle_and_at_their_lifetime(console_factory: ConsoleFactory) -> None:
    cgw = await console_factory(console_session_idle_seconds=2, console_session_lifetime_seconds=5)
    idle = await cgw.login("fin-zhao")
    assert (await idle.get("/console/api/me"))[0] == 200
    await asyncio.sleep(2.6)
    status, problem = await idle.get("/console/api/me")
    assert status == 401 and problem["code"] == "CONSOLE_SESSION_EXPIRED"
    busy = await cgw.login("fin-zhao")
    for _ in range(3):  # kept alive by use, up to the absolute lifetime
        await asyncio.sleep(1.3)
        assert (await busy.get("/console/api/me"))[0] == 200
    await asyncio.sleep(1.6)
    status, problem = await busy.get("/console/api/me")
    assert status == 401 and problem["code"] == "CONSOLE_SESSION_EXPIRED"
    admin = await cgw.login("admin")
    ended = [e for e in await oplog(admin, action="session.expired")]
    assert sorted(e["detail"]["reason"] for e in ended) == ["expired", "idle"]


async def test_a_new_session_beyond_the_limit_ends_the_oldest(console_factory: ConsoleFactory) -> None:
    cgw = await console_factory(console_max_sessions_per_user=1)
    first = await cgw.login("dir-qian")
    second = await cgw.login("dir-qian")
    status, problem = await first.get("/console/api/me")
    assert status == 401 and problem["code"] == "CONSOLE_SESSION_EXPIRED"
    status, mine = await second.get("/console/api/system/sessions")
    assert status == 200 and len(mine["items"]) == 1 and mine["items"][0]["current"] is True
    assert mine["all_users"] is False
    admin = await cgw.login("admin")
    login = (await oplog(admin, user="dir-qian", action="login"))[0]
    assert len(login["detail"]["ended_sessions"]) == 1
    # An administrator sees every session and may end one.
    _, every = await admin.get("/console/api/system/sessions")
    assert {s["username"] for s in every["items"]} == {"dir-qian", "admin"} and every["all_users"] is True
    sid = next(s["id"] for s in every["items"] if s["username"] == "dir-qian")
    status, _ = await admin.call("DELETE", f"/console/api/system/sessions/{sid}")
    assert status == 200
    assert (await second.get("/console/api/me"))[0] == 401
    # Nobody else ends an administrator's session.
    other = await cgw.login("fin-zhao")
    admin_sid = next(s["id"] for s in (await admin.get("/console/api/system/sessions"))[1]["items"]
                     if s["username"] == "admin")
    status, problem = await other.call("DELETE", f"/console/api/system/sessions/{admin_sid}")
    assert status == 403 and problem["code"] == "CONSOLE_PERMISSION_DENIED"


async def test_every_change_needs_the_csrf_token(cgw: ConsoleGateway) -> None:
    c = await cgw.login("fin-zhao")
    status, problem = await c.call("POST", "/console/api/admin/cases/C1/refund", {}, csrf=False)
    assert status == 403 and problem["code"] == "CONSOLE_CSRF_FAILED", problem
    status, problem = await c.call("POST", "/console/api/admin/cases/C1/refund", {},
                                   headers={"X-CSRF-Token": "not-the-token"})
    assert status == 403 and problem["code"] == "CONSOLE_CSRF_FAILED"
    status, problem = await c.call("POST", "/console/api/logout", {}, csrf=False)
    assert status == 403 and problem["code"] == "CONSOLE_CSRF_FAILED"
    assert (await c.get("/console/api/me"))[0] == 200  # reads need no token; the session is still there
    status, problem = await c.post("/console/api/admin/cases/C1/refund", {})
    assert status == 404 and problem["code"] == "CASE_NOT_FOUND"  # with the token it reaches the handler


async def test_pages_and_static_files_carry_the_security_headers(cgw: ConsoleGateway) -> None:
    c = cgw.client()
    status, page = await c.get("/console/")
    assert status == 200 and "<html" in page.lower()
    _secure(c.last_headers)
    assert c.last_headers["Content-Type"].startswith("text/html")
    status, _ = await c.get("/console")
    assert status == 302 and c.last_headers["Location"] == "/console/"
    for bad in ("/console/static/../../config.py", "/console/static/%2e%2e/%2e%2e/config.py",
                "/console/static/no-such-file.js"):
        status, _ = await c.get(bad)
        assert status == 404, bad
        _secure(c.last_headers)
    status, problem = await c.get("/console/api/no-such-route")
    assert status == 404 and problem["code"] == "NOT_FOUND"
    _secure(c.last_headers)


async def test_initial_password_must_be_changed_and_meet_the_policy(cgw: ConsoleGateway) -> None:
    admin = await cgw.login("admin")
    status, created = await admin.post("/console/api/system/users", {
        "username": "new-he", "display_name": "何新", "roles": ["finance"]})
    assert status == 201 and created["user"]["must_change_password"] is True
    initial = created["password"]
    c = cgw.client()
    _, step1 = await c.call("POST", "/console/api/login", {"username": "new-he", "password": initial})
    secret = parse_qs(urlparse(step1["otpauth_uri"]).query)["secret"][0]
    status, me = await c.call("POST", "/console/api/login/totp",
                              {"login_token": step1["login_token"], "code": await cgw.code("new-he", secret)})
    assert status == 200 and me["user"]["must_change_password"] is True
    c.csrf = me["csrf_token"]
    status, problem = await c.get("/console/api/overview")
    assert status == 403 and problem["code"] == "CONSOLE_PASSWORD_CHANGE_REQUIRED"
    for weak in ("short1A!", "alllowercaseletters", "new-he"):
        status, problem = await c.post("/console/api/me/password", {"old": initial, "new": weak})
        assert status == 400 and problem["code"] == "CONSOLE_PASSWORD_POLICY", (weak, problem)
        assert problem["errors"][0]["message_zh"]
    status, problem = await c.post("/console/api/me/password", {"old": "wrong-Old-1", "new": "Good-password-9"})
    assert status == 400 and problem["code"] == "CONSOLE_PASSWORD_WRONG"
    status, _ = await c.post("/console/api/me/password", {"old": initial, "new": "Good-password-9"})
    assert status == 200
    status, overview = await c.get("/console/api/overview")
    assert status == 200 and "totals" in overview
    assert (await oplog(admin, user="new-he", action="password.change"))[0]["action"] == "password.change"
    # A wrong password on /login for a known user still reads like any failure.
    status, problem = await cgw.client().call("POST", "/console/api/login", {"username": "new-he", "password": initial})
    assert status == 401 and problem["code"] == "CONSOLE_LOGIN_FAILED"
    assert pyotp  # codes are computed with pyotp throughout
