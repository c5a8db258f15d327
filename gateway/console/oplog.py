"""操作日志: the console's append-only, tamper-evident operation log.

Each row carries ``hash = sha256(prev_hash + canonical JSON of the row)``, and its ``id`` is
its position in the chain. An append locks the one-row chain head (``SELECT … FOR UPDATE``
on PostgreSQL; on SQLite every write already holds the database's single write lock), takes
the previous hash, inserts the row and moves the head, all in one transaction: two gateway
processes can never fork the chain. ``verify`` walks the chain and names the first row that
was edited, removed or inserted by hand.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from ..db.models import ConsoleOplog, ConsoleOplogHead, utcnow

if TYPE_CHECKING:
    from ..core import Core

GENESIS = "0" * 64
HEAD_ID = 1
_O = ConsoleOplog.__table__
_H = ConsoleOplogHead.__table__

ACTION_ZH = {
    "login": "登录", "login.failed": "登录失败", "login.totp_failed": "动态验证码错误", "login.lockout": "账户锁定",
    "login.locked": "锁定期间尝试登录", "logout": "退出登录", "session.expired": "会话过期", "session.end": "结束会话",
    "password.change": "修改密码", "password.change_failed": "修改密码失败", "totp.enrol": "绑定动态验证码",
    "user.create": "新建用户", "user.update": "修改用户", "user.delete": "删除用户", "user.unlock": "解锁用户",
    "user.reset_totp": "重置动态验证码", "role.create": "新建角色", "role.update": "修改角色", "role.delete": "删除角色",
    "pii.unmask": "查看未脱敏个人信息", "report.export": "导出", "permission.denied": "越权尝试",
    "payment.refund_request": "申请退款", "department.put": "保存科室/部门", "department.delete": "删除科室/部门",
}


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: Any) -> bytes:
    """The bytes a row's hash covers: every column except the hashes, keys sorted."""
    m = row if isinstance(row, dict) else row._mapping
    return orjson.dumps({"id": int(m["id"]), "at": _iso(m["at"]), "username": m["username"], "ip": m["ip"],
                         "action": m["action"], "target": m["target"], "detail": m["detail"]},
                        option=orjson.OPT_SORT_KEYS)


def row_hash(prev_hash: str, row: Any) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


def _jsonable(detail: dict[str, Any] | None) -> dict[str, Any]:
    """What the database will give back: plain JSON (so the hash survives the round trip)."""
    return orjson.loads(orjson.dumps(detail or {}, default=str, option=orjson.OPT_NON_STR_KEYS))


def _insert_ignore(conn: Connection, table: Any, values: dict[str, Any]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(table).values(**values).on_conflict_do_nothing())


def append(conn: Connection, *, username: str | None, ip: str | None, action: str, target: str | None = None,
           detail: dict[str, Any] | None = None) -> int:
    """Append one row inside the caller's write transaction; returns its position."""
    lock = select(_H).where(_H.c.id == HEAD_ID).with_for_update()
    head = conn.execute(lock).first()
    if head is None:  # a fresh (or emptied) database: start the chain
        _insert_ignore(conn, _H, {"id": HEAD_ID, "last_id": 0, "last_hash": GENESIS, "updated_at": utcnow()})
        head = conn.execute(lock).one()
    now = utcnow()
    values = {"id": int(head.last_id) + 1, "at": now, "username": (username or None) and username[:64],
              "ip": (ip or None) and ip[:64], "action": action[:96], "target": (target or None) and str(target)[:128],
              "detail": _jsonable(detail)}
    h = row_hash(head.last_hash, values)
    conn.execute(_O.insert().values(**values, prev_hash=head.last_hash, hash=h))
    conn.execute(update(_H).where(_H.c.id == HEAD_ID).values(last_id=values["id"], last_hash=h, updated_at=now))
    return values["id"]


def oplog_out(r: Any) -> dict[str, Any]:
    return {"id": r.id, "at": r.at.isoformat(), "user": r.username, "ip": r.ip, "action": r.action,
            "action_zh": ACTION_ZH.get(r.action, r.action), "target": r.target, "detail": r.detail, "hash": r.hash}


class OpLog:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def write(self, *, username: str | None, ip: str | None, action: str, target: str | None = None,
                    detail: dict[str, Any] | None = None) -> int:
        return await self.core.writer.run(lambda conn: append(conn, username=username, ip=ip, action=action,
                                                              target=target, detail=detail))

    async def search(self, *, user: str | None = None, action: str | None = None, target: str | None = None,
                     begin: dt.datetime | None = None, end: dt.datetime | None = None, limit: int = 100,
                     offset: int = 0) -> dict[str, Any]:
        """Newest first; ``action`` matches a prefix (``login`` finds ``login.failed`` too)."""
        conds = []
        if user:
            conds.append(ConsoleOplog.username == user)
        if action:
            conds.append(ConsoleOplog.action.startswith(action, autoescape=True))
        if target:
            conds.append(ConsoleOplog.target == target)
        if begin is not None:
            conds.append(ConsoleOplog.at >= begin)
        if end is not None:
            conds.append(ConsoleOplog.at < end)
        q = select(ConsoleOplog).where(*conds).order_by(ConsoleOplog.id.desc()).limit(
            min(max(limit, 1), 1000)).offset(max(offset, 0))
        async with self.core.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
            total = (await s.execute(select(func.count()).select_from(ConsoleOplog).where(*conds))).scalar_one()
        return {"items": [oplog_out(r) for r in rows], "total": total}

    async def verify(self, batch: int = 1000) -> dict[str, Any]:
        """Walk the chain from the start; the first row that does not hold is reported."""
        async with self.core.rsm() as s:
            head = (await s.execute(select(_H).where(_H.c.id == HEAD_ID))).first()
        last_id = int(head.last_id) if head else 0
        prev, expected, checked = GENESIS, 1, 0

        def broken(row_id: int, reason: str, zh: str) -> dict[str, Any]:
            return {"ok": False, "checked": checked, "last_id": last_id, "head_hash": head.last_hash if head else None,
                    "broken": {"id": row_id, "reason": reason, "reason_zh": zh}}

        while expected <= last_id:
            async with self.core.rsm() as s:
                rows = (await s.execute(select(_O).where(_O.c.id >= expected, _O.c.id <= last_id)
                                        .order_by(_O.c.id).limit(batch))).all()
            if not rows:
                return broken(expected, "row missing (deleted)", "记录缺失(被删除)")
            for r in rows:
                if r.id != expected:
                    return broken(expected, "row missing (deleted)", "记录缺失(被删除)")
                if r.prev_hash != prev:
                    return broken(r.id, "previous hash does not match", "前一条记录的哈希不符(记录被插入或替换)")
                if row_hash(prev, r) != r.hash:
                    return broken(r.id, "row content does not match its hash (edited)", "记录内容与哈希不符(被篡改)")
                prev, expected, checked = r.hash, expected + 1, checked + 1
        if head is not None and head.last_hash != prev:
            return broken(last_id, "chain head does not match the last row", "链头与最后一条记录不符")
        async with self.core.rsm() as s:
            extra = (await s.execute(select(func.count()).select_from(_O).where(_O.c.id > last_id))).scalar_one()
        if extra:
            # rows appended after the head was read are fine only if the head has moved on since
            async with self.core.rsm() as s:
                now_head = (await s.execute(select(_H.c.last_id).where(_H.c.id == HEAD_ID))).scalar()
                beyond = (await s.execute(select(func.count()).select_from(_O).where(
                    _O.c.id > (now_head or 0)))).scalar_one()
            if beyond:
                return broken(last_id + 1, "rows beyond the chain head (inserted)", "链头之后有多余记录(被插入)")
        return {"ok": True, "checked": checked, "last_id": last_id, "head_hash": head.last_hash if head else GENESIS,
                "broken": None}
