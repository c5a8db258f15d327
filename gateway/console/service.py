"""Console users, roles, login (password, then TOTP), sessions and the lockout.

Nothing here is kept in process memory: failed-login counters, lockouts, login tokens and
sessions are rows, so any number of gateway processes serve one console.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..db.models import ConsoleLoginToken, ConsoleRole, ConsoleSession, ConsoleUser, utcnow
from ..errors import (Conflict, ConsoleAccountLocked, ConsoleLoginExpired, ConsoleLoginFailed, ConsolePasswordPolicy,
                      ConsolePasswordWrong, ConsolePermissionDenied, ConsoleRoleNotFound, ConsoleSessionExpired,
                      ConsoleTotpInvalid, ConsoleUserNotFound, NotFound, ValidationFailed)
from . import security
from .identity import Identity
from .oplog import OpLog, _insert_ignore, append
from .permissions import ALL, BUILTIN_ROLES, CODES, expand

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.console")
_U = ConsoleUser.__table__
_R = ConsoleRole.__table__
_S = ConsoleSession.__table__
_T = ConsoleLoginToken.__table__
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{1,31}$"
ROLE_ID = r"^[a-z][a-z0-9_\-]{1,39}$"
MAX_TOTP_TRIES_PER_TOKEN = 5


def _check_permissions(v: list[str]) -> list[str]:
    unknown = sorted(set(v) - CODES - {ALL})
    if unknown:
        raise ValueError(f"unknown permission codes: {', '.join(unknown)}")
    return sorted(set(v))


def _check_approval_roles(v: list[str]) -> list[str]:
    for name in v:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,40}", name):
            raise ValueError(f"approval role {name!r} is not a plain name")
    return sorted(set(v))


# --- request bodies ------------------------------------------------------------------------------------
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserIn(_In):
    username: str = Field(pattern=USERNAME)
    display_name: str = Field(min_length=1, max_length=64)
    roles: list[str] = Field(min_length=1, max_length=20)
    password: str | None = Field(default=None, max_length=128)
    campus_id: str | None = Field(default=None, max_length=40)
    department: str | None = Field(default=None, max_length=64)
    must_change_password: bool | None = None
    enabled: bool = True


class UserPatch(_In):
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    roles: list[str] | None = Field(default=None, min_length=1, max_length=20)
    password: str | None = Field(default=None, max_length=128)
    campus_id: str | None = Field(default=None, max_length=40)
    department: str | None = Field(default=None, max_length=64)
    must_change_password: bool | None = None
    enabled: bool | None = None
    unlock: bool = False
    reset_totp: bool = False


class RoleIn(_In):
    id: str = Field(pattern=ROLE_ID)
    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=256)
    permissions: list[str] = Field(default_factory=list, max_length=100)
    approval_roles: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("permissions")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _check_permissions(v)

    @field_validator("approval_roles")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return _check_approval_roles(v)


class RolePatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=256)
    permissions: list[str] | None = Field(default=None, max_length=100)
    approval_roles: list[str] | None = Field(default=None, max_length=20)

    @field_validator("permissions")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_permissions(v)

    @field_validator("approval_roles")
    @classmethod
    def _names(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_approval_roles(v)


class PasswordIn(_In):
    old: str = Field(min_length=1, max_length=128)
    new: str = Field(min_length=1, max_length=128)


# --- serialisation -------------------------------------------------------------------------------------
def user_out(u: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    locked = u.locked_until is not None and u.locked_until > now
    return {"id": u.id, "username": u.username, "display_name": u.display_name, "roles": list(u.roles or []),
            "campus_id": u.campus_id, "department": u.department, "enabled": u.enabled,
            "locked": locked, "locked_until": u.locked_until.isoformat() if locked else None,
            "failed_count": u.failed_count, "totp_enrolled": u.totp_confirmed_at is not None,
            "must_change_password": u.must_change_password,
            "password_changed_at": u.password_changed_at.isoformat() if u.password_changed_at else None,
            "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            "last_login_ip": u.last_login_ip, "created_at": u.created_at.isoformat()}


def role_out(r: Any) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "description": r.description, "permissions": expand(r.permissions or []),
            "all_permissions": ALL in (r.permissions or []), "approval_roles": list(r.approval_roles or []),
            "builtin": r.builtin, "updated_at": r.updated_at.isoformat()}


def session_out(s: Any, current: str | None = None) -> dict[str, Any]:
    return {"id": s.id, "username": s.username, "ip": s.ip, "user_agent": s.user_agent,
            "created_at": s.created_at.isoformat(), "last_seen_at": s.last_seen_at.isoformat(),
            "expires_at": s.expires_at.isoformat(), "current": s.id == current}


class ConsoleService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.oplog = OpLog(core)

    @property
    def s(self) -> Any:
        return self.core.settings

    async def start(self) -> None:
        """Create the built-in roles that are missing (existing ones keep their edits)."""
        now = utcnow()

        def tx(conn: Connection) -> None:
            for r in BUILTIN_ROLES:
                _insert_ignore(conn, _R, {"id": r.id, "name": r.name, "description": r.description,
                                          "permissions": list(r.permissions), "approval_roles": list(r.approval_roles),
                                          "builtin": True, "created_at": now, "updated_at": now})

        await self.core.writer.run(tx)

    # --- reading ------------------------------------------------------------------------------------
    async def _user(self, username: str) -> ConsoleUser | None:
        async with self.core.rsm() as s:
            return (await s.execute(select(ConsoleUser).where(ConsoleUser.username == username))).scalar()

    async def _user_by_id(self, user_id: str) -> ConsoleUser | None:
        async with self.core.rsm() as s:
            return await s.get(ConsoleUser, user_id)

    async def get_user(self, username: str) -> ConsoleUser:
        u = await self._user(username)
        if u is None:
            raise ConsoleUserNotFound(f"user {username!r} not found")
        return u

    async def list_users(self) -> list[dict[str, Any]]:
        async with self.core.rsm() as s:
            rows = (await s.execute(select(ConsoleUser).order_by(ConsoleUser.username))).scalars().all()
        now = utcnow()
        return [user_out(u, now) for u in rows]

    async def list_roles(self) -> list[dict[str, Any]]:
        async with self.core.rsm() as s:
            rows = (await s.execute(select(ConsoleRole).order_by(ConsoleRole.builtin.desc(),
                                                                 ConsoleRole.id))).scalars().all()
        return [role_out(r) for r in rows]

    async def get_role(self, role_id: str) -> ConsoleRole:
        async with self.core.rsm() as s:
            r = await s.get(ConsoleRole, role_id)
        if r is None:
            raise ConsoleRoleNotFound(f"role {role_id!r} not found")
        return r

    async def _roles(self, ids: list[str]) -> list[ConsoleRole]:
        if not ids:
            return []
        async with self.core.rsm() as s:
            return list((await s.execute(select(ConsoleRole).where(ConsoleRole.id.in_(ids)))).scalars())

    async def _check_roles(self, ids: list[str]) -> None:
        found = {r.id for r in await self._roles(ids)}
        missing = sorted(set(ids) - found)
        if missing:
            raise ValidationFailed(f"unknown roles: {', '.join(missing)}",
                                   errors=[{"field": "roles", "message": f"unknown role {m}", "type": "unknown_role"}
                                           for m in missing])

    def _policy(self, password: str, username: str) -> None:
        problems = security.password_problems(password, username, min_length=self.s.console_password_min_length,
                                              min_classes=self.s.console_password_min_classes)
        if problems:
            raise ConsolePasswordPolicy("; ".join(p["message_en"] for p in problems), errors=problems)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(security.hash_password, password, self.s.console_scrypt_n)

    # --- users ----------------------------------------------------------------------------------------
    async def create_user(self, body: UserIn, *, by: str | None, ip: str | None = None,
                          totp: bool = False) -> dict[str, Any]:
        """A new user. Without a password one is generated (shown once) and must be changed at first
        login. With ``totp`` the TOTP secret is created now and its otpauth URI answered (the CLI);
        otherwise the user enrols at first login."""
        await self._check_roles(body.roles)
        generated = None
        password = body.password
        if password is None:
            password = generated = security.random_password()
        else:
            self._policy(password, body.username)
        must_change = body.must_change_password
        if must_change is None:
            must_change = generated is not None or self.s.console_password_change_on_first_login
        secret = security.new_totp_secret() if totp else None
        now = utcnow()
        values = {"id": "U" + secrets.token_hex(8), "username": body.username, "display_name": body.display_name,
                  "password_hash": await self._hash(password), "password_changed_at": now,
                  "must_change_password": must_change, "roles": body.roles, "campus_id": body.campus_id,
                  "department": body.department,
                  "totp_secret_enc": self.core.vault.encrypt(secret) if secret else None,
                  "totp_confirmed_at": None, "totp_last_step": None, "failed_count": 0, "locked_until": None,
                  "enabled": body.enabled, "last_login_at": None, "last_login_ip": None, "created_at": now,
                  "updated_at": now}

        def tx(conn: Connection) -> None:
            conn.execute(_U.insert().values(**values))
            append(conn, username=by, ip=ip, action="user.create", target=body.username,
                   detail={"roles": body.roles, "campus_id": body.campus_id, "department": body.department,
                           "must_change_password": must_change, "totp_issued": bool(secret)})

        try:
            await self.core.writer.run(tx)
        except IntegrityError as exc:
            raise Conflict(f"user {body.username!r} exists") from exc
        out: dict[str, Any] = {"user": user_out(await self.get_user(body.username))}
        if generated:
            out["password"] = generated
        if secret:
            out["otpauth_uri"] = security.otpauth_uri(secret, body.username, self.s.console_totp_issuer)
            out["totp_secret"] = secret
        return out

    async def update_user(self, username: str, body: UserPatch, *, by: str | None, ip: str | None = None,
                          by_user_id: str | None = None) -> dict[str, Any]:
        u = await self.get_user(username)
        fields: dict[str, Any] = {}
        changed: list[str] = []
        for name in ("display_name", "roles", "enabled", "must_change_password"):
            if name in body.model_fields_set and getattr(body, name) is not None:
                fields[name] = getattr(body, name)
                changed.append(name)
        for name in ("campus_id", "department"):  # null clears them
            if name in body.model_fields_set:
                fields[name] = getattr(body, name)
                changed.append(name)
        if body.roles is not None:
            await self._check_roles(body.roles)
        if by_user_id == u.id and ((body.enabled is False) or (body.roles is not None and "admin" in u.roles
                                                              and "admin" not in body.roles)):
            raise Conflict("you cannot disable yourself or take away your own admin role")
        if body.password is not None:
            self._policy(body.password, u.username)
            fields["password_hash"] = await self._hash(body.password)
            fields["password_changed_at"] = utcnow()
            fields.setdefault("must_change_password", True)
            changed.append("password")
        if body.unlock:
            fields.update(failed_count=0, locked_until=None)
            changed.append("unlock")
        if body.reset_totp:  # the user enrols a new secret at the next login
            fields.update(totp_secret_enc=None, totp_confirmed_at=None, totp_last_step=None)
            changed.append("reset_totp")
        fields["updated_at"] = utcnow()
        end_sessions = bool({"password", "reset_totp"} & set(changed)) or fields.get("enabled") is False
        await self._ensure_an_admin_remains(u.id, fields)

        def tx(conn: Connection) -> None:
            conn.execute(update(_U).where(_U.c.id == u.id).values(**fields))
            if end_sessions:
                conn.execute(update(_S).where(_S.c.user_id == u.id, _S.c.ended_at.is_(None))
                             .values(ended_at=utcnow(), end_reason="changed"))
                conn.execute(delete(_T).where(_T.c.user_id == u.id))
            append(conn, username=by, ip=ip, action="user.update", target=u.username,
                   detail={"changed": changed, **{k: fields[k] for k in ("roles", "enabled", "campus_id", "department")
                                                  if k in fields}})

        await self.core.writer.run(tx)
        return {"user": user_out(await self.get_user(username))}

    async def _ensure_an_admin_remains(self, user_id: str | None, fields: dict[str, Any] | None) -> None:
        """At least one enabled user keeps the admin role: the console can always be administered."""
        async with self.core.rsm() as s:
            users = (await s.execute(select(ConsoleUser))).scalars().all()
        before = [u for u in users if u.enabled and "admin" in (u.roles or [])]
        after = []
        for u in users:
            if u.id == user_id:
                if fields is None:
                    continue
                enabled, roles = fields.get("enabled", u.enabled), fields.get("roles", u.roles)
            else:
                enabled, roles = u.enabled, u.roles
            if enabled and "admin" in (roles or []):
                after.append(u)
        if before and not after:
            raise Conflict("this would leave no enabled administrator")

    async def delete_user(self, username: str, *, by: str | None, ip: str | None = None,
                          by_user_id: str | None = None) -> None:
        u = await self.get_user(username)
        if u.id == by_user_id:
            raise Conflict("you cannot delete yourself")
        await self._ensure_an_admin_remains(u.id, None)

        def tx(conn: Connection) -> None:
            conn.execute(delete(_U).where(_U.c.id == u.id))
            conn.execute(update(_S).where(_S.c.user_id == u.id, _S.c.ended_at.is_(None))
                         .values(ended_at=utcnow(), end_reason="deleted"))
            conn.execute(delete(_T).where(_T.c.user_id == u.id))
            append(conn, username=by, ip=ip, action="user.delete", target=u.username, detail={"roles": u.roles})

        await self.core.writer.run(tx)

    async def reset_totp(self, username: str, *, by: str | None, ip: str | None = None) -> dict[str, Any]:
        """A new TOTP secret (the old one stops working); its otpauth URI is answered once."""
        u = await self.get_user(username)
        secret = security.new_totp_secret()

        def tx(conn: Connection) -> None:
            conn.execute(update(_U).where(_U.c.id == u.id).values(
                totp_secret_enc=self.core.vault.encrypt(secret), totp_confirmed_at=None, totp_last_step=None,
                updated_at=utcnow()))
            conn.execute(update(_S).where(_S.c.user_id == u.id, _S.c.ended_at.is_(None))
                         .values(ended_at=utcnow(), end_reason="changed"))
            conn.execute(delete(_T).where(_T.c.user_id == u.id))
            append(conn, username=by, ip=ip, action="user.reset_totp", target=u.username, detail={})

        await self.core.writer.run(tx)
        return {"username": username, "otpauth_uri": security.otpauth_uri(secret, username, self.s.console_totp_issuer),
                "totp_secret": secret}

    async def unlock(self, username: str, *, by: str | None, ip: str | None = None) -> dict[str, Any]:
        u = await self.get_user(username)

        def tx(conn: Connection) -> None:
            conn.execute(update(_U).where(_U.c.id == u.id).values(failed_count=0, locked_until=None,
                                                                   updated_at=utcnow()))
            append(conn, username=by, ip=ip, action="user.unlock", target=u.username, detail={})

        await self.core.writer.run(tx)
        return user_out(await self.get_user(username))

    async def set_demo_user(self, username: str, display_name: str, roles: list[str], password: str,
                            totp_secret: str) -> None:
        """The sandbox's known users (``yinyi demo`` only): created, or reset to the known password and secret."""
        now = utcnow()
        values = {"display_name": display_name, "roles": roles, "password_hash": await self._hash(password),
                  "password_changed_at": now, "must_change_password": False,
                  "totp_secret_enc": self.core.vault.encrypt(totp_secret), "totp_confirmed_at": now,
                  "totp_last_step": None, "failed_count": 0, "locked_until": None, "enabled": True, "updated_at": now}
        existing = await self._user(username)

        def tx(conn: Connection) -> None:
            if existing is None:
                conn.execute(_U.insert().values(id="U" + secrets.token_hex(8), username=username, campus_id=None,
                                                department=None, last_login_at=None, last_login_ip=None,
                                                created_at=now, **values))
            else:
                conn.execute(update(_U).where(_U.c.id == existing.id).values(**values))
            append(conn, username="demo", ip=None, action="user.create" if existing is None else "user.update",
                   target=username, detail={"roles": roles, "demo": True})

        await self.core.writer.run(tx)

    # --- roles ----------------------------------------------------------------------------------------
    async def create_role(self, body: RoleIn, *, by: str | None, ip: str | None = None) -> dict[str, Any]:
        now = utcnow()

        def tx(conn: Connection) -> None:
            conn.execute(_R.insert().values(id=body.id, name=body.name, description=body.description,
                                            permissions=body.permissions, approval_roles=body.approval_roles,
                                            builtin=False, created_at=now, updated_at=now))
            append(conn, username=by, ip=ip, action="role.create", target=body.id,
                   detail={"permissions": body.permissions, "approval_roles": body.approval_roles})

        try:
            await self.core.writer.run(tx)
        except IntegrityError as exc:
            raise Conflict(f"role {body.id!r} exists") from exc
        return role_out(await self.get_role(body.id))

    async def update_role(self, role_id: str, body: RolePatch, *, by: str | None,
                          ip: str | None = None) -> dict[str, Any]:
        r = await self.get_role(role_id)
        if r.id == "admin":
            raise Conflict("the admin role always has every permission and cannot be changed")
        fields = {k: getattr(body, k) for k in ("name", "description", "permissions", "approval_roles")
                  if k in body.model_fields_set and (getattr(body, k) is not None or k == "description")}
        fields["updated_at"] = utcnow()

        def tx(conn: Connection) -> None:
            conn.execute(update(_R).where(_R.c.id == role_id).values(**fields))
            append(conn, username=by, ip=ip, action="role.update", target=role_id,
                   detail={k: v for k, v in fields.items() if k != "updated_at"})

        await self.core.writer.run(tx)
        return role_out(await self.get_role(role_id))

    async def delete_role(self, role_id: str, *, by: str | None, ip: str | None = None) -> None:
        r = await self.get_role(role_id)
        if r.builtin:
            raise Conflict("built-in roles cannot be deleted")
        async with self.core.rsm() as s:
            users = (await s.execute(select(ConsoleUser.username, ConsoleUser.roles))).all()
        holders = sorted(u.username for u in users if role_id in (u.roles or []))
        if holders:
            raise Conflict(f"role {role_id!r} is held by {', '.join(holders[:10])}", users=holders)

        def tx(conn: Connection) -> None:
            conn.execute(delete(_R).where(_R.c.id == role_id))
            append(conn, username=by, ip=ip, action="role.delete", target=role_id, detail={})

        await self.core.writer.run(tx)

    # --- login ----------------------------------------------------------------------------------------
    async def login(self, username: str, password: str, *, ip: str | None) -> dict[str, Any]:
        """Step one: the password. Answers a login token for step two (the TOTP code)."""
        now = utcnow()
        u = await self._user(username) if re.fullmatch(USERNAME, username or "") else None
        if u is not None and u.locked_until is not None and u.locked_until > now:
            await self.oplog.write(username=u.username, ip=ip, action="login.locked", target=u.username,
                                   detail={"locked_until": u.locked_until.isoformat()})
            raise ConsoleAccountLocked(f"locked until {u.locked_until.isoformat()}",
                                       locked_until=u.locked_until.isoformat())
        ok = await asyncio.to_thread(security.verify_password, password or "", u.password_hash if u else None,
                                     self.s.console_scrypt_n)
        if not ok or u is None or not u.enabled:
            await self._failed(u, username, ip, "login.failed",
                               {"reason": "unknown user" if u is None else ("disabled" if ok else "password")})
            raise ConsoleLoginFailed()
        token = security.new_token()
        enrol = u.totp_secret_enc is None
        secret = security.new_totp_secret() if enrol else None
        row = {"token_hash": security.token_hash(token), "user_id": u.id, "purpose": "enrol" if enrol else "totp",
               "totp_secret_enc": self.core.vault.encrypt(secret) if secret else None, "attempts": 0,
               "ip": (ip or None) and ip[:64],
               "expires_at": now + dt.timedelta(seconds=self.s.console_login_token_seconds), "created_at": now}

        def tx(conn: Connection) -> None:
            conn.execute(delete(_T).where(_T.c.expires_at < now))
            conn.execute(_T.insert().values(**row))

        await self.core.writer.run(tx, durable=False)
        if secret:
            return {"totp_enrolment": True, "login_token": token,
                    "otpauth_uri": security.otpauth_uri(secret, u.username, self.s.console_totp_issuer)}
        return {"totp_required": True, "login_token": token}

    async def _failed(self, u: ConsoleUser | None, username: str, ip: str | None, action: str,
                      detail: dict[str, Any]) -> None:
        """Count a failure against the user (in the database); lock at the limit."""
        now = utcnow()
        limit = self.s.console_lockout_attempts
        until = now + dt.timedelta(minutes=self.s.console_lockout_minutes)
        name = u.username if u else (username or "")[:64]

        def tx(conn: Connection) -> dt.datetime | None:
            locked = None
            if u is not None:
                n = conn.execute(update(_U).where(_U.c.id == u.id).values(
                    failed_count=_U.c.failed_count + 1, updated_at=now).returning(_U.c.failed_count)).scalar()
                if n is not None and n >= limit:
                    conn.execute(update(_U).where(_U.c.id == u.id).values(failed_count=0, locked_until=until))
                    conn.execute(delete(_T).where(_T.c.user_id == u.id))
                    locked = until
                detail["failures"] = n
            append(conn, username=name, ip=ip, action=action, target=name, detail=detail)
            if locked is not None:
                append(conn, username=name, ip=ip, action="login.lockout", target=name,
                       detail={"locked_until": until.isoformat(), "after_failures": limit,
                               "minutes": self.s.console_lockout_minutes})
            return locked

        locked = await self.core.writer.run(tx)
        if locked is not None:
            log.warning("console user %s locked until %s after %s failed logins", name, locked, limit)
            raise ConsoleAccountLocked(f"locked until {locked.isoformat()} after {limit} failed attempts",
                                       locked_until=locked.isoformat())

    async def login_totp(self, login_token: str, code: str, *, ip: str | None,
                         user_agent: str | None) -> tuple[str, Identity]:
        """Step two: the TOTP code. Answers the session token (for the cookie) and the identity."""
        now = utcnow()
        th = security.token_hash(login_token or "")
        async with self.core.rsm() as s:
            tok = await s.get(ConsoleLoginToken, th)
        if tok is None or tok.expires_at <= now:
            raise ConsoleLoginExpired()
        u = await self._user_by_id(tok.user_id)
        if u is None or not u.enabled:
            raise ConsoleLoginExpired()
        if u.locked_until is not None and u.locked_until > now:
            raise ConsoleAccountLocked(f"locked until {u.locked_until.isoformat()}",
                                       locked_until=u.locked_until.isoformat())
        enrol = tok.purpose == "enrol"
        secret_enc = tok.totp_secret_enc if enrol else u.totp_secret_enc
        if secret_enc is None:
            raise ConsoleLoginExpired("the TOTP secret was reset meanwhile")
        step = security.totp_step(self.core.vault.decrypt(secret_enc), code or "")
        if step is None or (u.totp_last_step is not None and step <= u.totp_last_step):
            await self.core.writer.run(lambda conn: _bump_token(conn, th, MAX_TOTP_TRIES_PER_TOKEN), durable=False)
            await self._failed(u, u.username, ip, "login.totp_failed",
                               {"reason": "replayed" if step is not None else "wrong code", "enrolment": enrol})
            raise ConsoleTotpInvalid()
        token = security.new_token()
        session_id = "S" + secrets.token_hex(10)
        csrf = secrets.token_urlsafe(32)
        s = self.s
        idle = dt.timedelta(seconds=s.console_session_idle_seconds)

        def tx(conn: Connection) -> list[str]:
            if conn.execute(delete(_T).where(_T.c.token_hash == th)).rowcount != 1:
                raise ConsoleLoginExpired("the login token was used meanwhile")
            used = conn.execute(update(_U).where(
                _U.c.id == u.id, (_U.c.totp_last_step.is_(None)) | (_U.c.totp_last_step < step)).values(
                totp_last_step=step, failed_count=0, locked_until=None, last_login_at=now,
                last_login_ip=(ip or None) and ip[:64], updated_at=now,
                **({"totp_secret_enc": tok.totp_secret_enc, "totp_confirmed_at": now} if enrol else
                   {"totp_confirmed_at": u.totp_confirmed_at or now})))
            if used.rowcount != 1:
                raise ConsoleTotpInvalid("the code was used meanwhile")
            # End what is no longer alive, then the oldest beyond the limit (this one included in the count).
            alive = conn.execute(select(_S.c.id, _S.c.expires_at, _S.c.last_seen_at).where(
                _S.c.user_id == u.id, _S.c.ended_at.is_(None)).order_by(_S.c.created_at)).all()
            ended: list[str] = []
            live = []
            for r in alive:
                if r.expires_at <= now or now - r.last_seen_at > idle:
                    conn.execute(update(_S).where(_S.c.id == r.id).values(ended_at=now, end_reason="expired"))
                else:
                    live.append(r.id)
            for sid in live[:max(0, len(live) + 1 - s.console_max_sessions_per_user)]:
                conn.execute(update(_S).where(_S.c.id == sid).values(ended_at=now, end_reason="replaced"))
                ended.append(sid)
            conn.execute(_S.insert().values(
                id=session_id, token_hash=security.token_hash(token), user_id=u.id, username=u.username,
                csrf_token=csrf, ip=(ip or None) and ip[:64], user_agent=(user_agent or None) and user_agent[:256],
                created_at=now, last_seen_at=now, ended_at=None, end_reason=None,
                expires_at=now + dt.timedelta(seconds=s.console_session_lifetime_seconds)))
            if enrol:
                append(conn, username=u.username, ip=ip, action="totp.enrol", target=u.username, detail={})
            append(conn, username=u.username, ip=ip, action="login", target=u.username,
                   detail={"session_id": session_id, "ended_sessions": ended, "user_agent": (user_agent or "")[:120]})
            return ended

        await self.core.writer.run(tx)
        fresh = await self._user_by_id(u.id)
        assert fresh is not None
        return token, await self._identity(fresh, session_id, csrf, ip)

    async def _identity(self, u: ConsoleUser, session_id: str, csrf: str, ip: str | None) -> Identity:
        roles = await self._roles(list(u.roles or []))
        perms: set[str] = set()
        approval: set[str] = set()
        for r in roles:
            perms.update(expand(r.permissions or []))
            approval.update(r.approval_roles or [])
        return Identity(user_id=u.id, username=u.username, display_name=u.display_name,
                        roles=tuple(r.id for r in roles), permissions=frozenset(perms),
                        approval_roles=tuple(sorted(approval)), session_id=session_id, csrf_token=csrf,
                        must_change_password=u.must_change_password, campus_id=u.campus_id,
                        department=u.department, ip=ip)

    # --- sessions -------------------------------------------------------------------------------------
    async def authenticate(self, token: str | None, *, ip: str | None) -> Identity:
        """The session of a cookie, kept alive; ``ConsoleSessionExpired`` when there is none."""
        if not token:
            raise ConsoleSessionExpired()
        async with self.core.rsm() as db:
            sess = (await db.execute(select(ConsoleSession).where(
                ConsoleSession.token_hash == security.token_hash(token)))).scalar()
        if sess is None or sess.ended_at is not None:
            raise ConsoleSessionExpired()
        now = utcnow()
        idle = self.s.console_session_idle_seconds
        reason = None
        if sess.expires_at <= now:
            reason = "expired"
        elif (now - sess.last_seen_at).total_seconds() > idle:
            reason = "idle"
        u = await self._user_by_id(sess.user_id) if reason is None else None
        if reason is None and (u is None or not u.enabled):
            reason = "disabled"
        if reason is not None:
            await self._end(sess.id, reason, username=sess.username, ip=ip, action="session.expired")
            raise ConsoleSessionExpired(f"the session ended ({reason})")
        assert u is not None
        if (now - sess.last_seen_at).total_seconds() >= min(15.0, idle / 4):
            await self.core.writer.run(lambda conn: conn.execute(update(_S).where(
                _S.c.id == sess.id, _S.c.ended_at.is_(None)).values(last_seen_at=now)), durable=False)
        return await self._identity(u, sess.id, sess.csrf_token, ip)

    async def _end(self, session_id: str, reason: str, *, username: str | None, ip: str | None, action: str,
                   by: str | None = None) -> bool:
        def tx(conn: Connection) -> bool:
            n = conn.execute(update(_S).where(_S.c.id == session_id, _S.c.ended_at.is_(None))
                             .values(ended_at=utcnow(), end_reason=reason)).rowcount
            if n:
                append(conn, username=by or username, ip=ip, action=action, target=username,
                       detail={"session_id": session_id, "reason": reason})
            return bool(n)

        return await self.core.writer.run(tx)

    async def logout(self, ident: Identity) -> None:
        await self._end(ident.session_id, "logout", username=ident.username, ip=ident.ip, action="logout")

    async def sessions(self, ident: Identity, *, everyone: bool) -> list[dict[str, Any]]:
        now = utcnow()
        idle_since = now - dt.timedelta(seconds=self.s.console_session_idle_seconds)
        q = select(ConsoleSession).where(ConsoleSession.ended_at.is_(None), ConsoleSession.expires_at > now,
                                         ConsoleSession.last_seen_at >= idle_since)
        if not everyone:
            q = q.where(ConsoleSession.user_id == ident.user_id)
        async with self.core.rsm() as s:
            rows = (await s.execute(q.order_by(ConsoleSession.created_at.desc()))).scalars().all()
        return [session_out(r, ident.session_id) for r in rows]

    async def end_session(self, ident: Identity, session_id: str) -> None:
        async with self.core.rsm() as s:
            sess = await s.get(ConsoleSession, session_id)
        if sess is None or sess.ended_at is not None:
            raise NotFound(f"session {session_id} not found or already ended")
        if sess.user_id != ident.user_id and not ident.has("system.users"):
            raise ConsolePermissionDenied("only administrators may end other users' sessions",
                                          permission="system.users")
        await self._end(session_id, "ended", username=sess.username, ip=ident.ip, action="session.end",
                        by=ident.username)

    # --- own password -----------------------------------------------------------------------------------
    async def change_password(self, ident: Identity, body: PasswordIn) -> None:
        u = await self._user_by_id(ident.user_id)
        if u is None:
            raise ConsoleSessionExpired()
        ok = await asyncio.to_thread(security.verify_password, body.old, u.password_hash)
        if not ok:
            await self._failed(u, u.username, ident.ip, "password.change_failed", {"reason": "old password"})
            raise ConsolePasswordWrong()
        self._policy(body.new, u.username)
        if body.new == body.old:
            raise ConsolePasswordPolicy("the new password must differ from the old one",
                                        errors=[{"rule": "reuse", "message_zh": "新密码不能与原密码相同",
                                                 "message_en": "must differ from the old password"}])
        new_hash = await self._hash(body.new)
        now = utcnow()

        def tx(conn: Connection) -> None:
            conn.execute(update(_U).where(_U.c.id == u.id).values(password_hash=new_hash, password_changed_at=now,
                                                                   must_change_password=False, failed_count=0,
                                                                   updated_at=now))
            conn.execute(update(_S).where(_S.c.user_id == u.id, _S.c.ended_at.is_(None),
                                          _S.c.id != ident.session_id).values(ended_at=now, end_reason="password"))
            append(conn, username=u.username, ip=ident.ip, action="password.change", target=u.username, detail={})

        await self.core.writer.run(tx)


def _bump_token(conn: Connection, th: str, limit: int) -> None:
    n = conn.execute(update(_T).where(_T.c.token_hash == th).values(attempts=_T.c.attempts + 1)
                     .returning(_T.c.attempts)).scalar()
    if n is not None and n >= limit:
        conn.execute(delete(_T).where(_T.c.token_hash == th))
