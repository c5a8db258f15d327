"""Delivery of caller notifications (回调通知) from the transactional outbox.

A row is queued in the same transaction as the status change it reports, so a crash
can delay a notification but never lose it. Each delivery is a signed POST (the
calling app's own secret, the request-signature scheme of the API); a 2xx answer
is delivery. Failures back off exponentially (tenacity's policy), bounded by
``callback_max_attempts``; exhausted rows stay visible and can be re-sent.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection
from tenacity import wait_random_exponential

from ..api.signing import signed_headers
from ..db.models import Notification, utcnow
from ..errors import InvalidState, NotFound

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.callbacks")
_N = Notification.__table__
LEASE = dt.timedelta(seconds=60)


def notification_out(n: Any) -> dict[str, Any]:
    return {"id": n.id, "app_id": n.app_id, "payment_id": n.payment_id, "refund_id": n.refund_id,
            "event": n.event, "url": n.url, "status": n.status, "attempts": n.attempts,
            "next_attempt_at": n.next_attempt_at.isoformat() if n.next_attempt_at else None,
            "last_error": n.last_error, "created_at": n.created_at.isoformat(),
            "delivered_at": n.delivered_at.isoformat() if n.delivered_at else None}


class CallbackDispatcher:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        # Exponential with full jitter, from 2 s up to an hour between attempts.
        self._wait = wait_random_exponential(multiplier=2, max=3600)

    def backoff(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=self._wait(SimpleNamespace(attempt_number=attempts)))  # type: ignore[arg-type]

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._task = asyncio.create_task(self._run(), name="callback-dispatcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("callback dispatch pass failed")
            await asyncio.sleep(self.core.settings.resolver_interval_seconds)

    async def run_once(self) -> int:
        now = utcnow()
        async with self.core.rsm() as s:
            ids = (await s.execute(select(Notification.id).where(
                Notification.status == "PENDING", Notification.next_attempt_at <= now,
                or_(Notification.lease_until.is_(None), Notification.lease_until < now))
                .order_by(Notification.next_attempt_at).limit(100))).scalars().all()
        if not ids:
            return 0

        def claim(conn: Connection) -> list[Any]:
            rows = []
            for nid in ids:
                row = conn.execute(update(_N).where(_N.c.id == nid, _N.c.status == "PENDING", or_(
                    _N.c.lease_until.is_(None), _N.c.lease_until < now)).values(lease_until=now + LEASE)
                    .returning(*_N.c)).first()
                if row is not None:
                    rows.append(row)
            return rows

        rows = await self.core.writer.run(claim, durable=False)
        sem = asyncio.Semaphore(20)

        async def one(row: Any) -> None:
            async with sem:
                await self.deliver(row)

        await asyncio.gather(*(one(r) for r in rows))
        return len(rows)

    async def deliver(self, row: Any) -> bool:
        app = await self.core.directory.get_app(row.app_id)
        body = orjson.dumps(row.body)
        parts = urlsplit(row.url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = signed_headers(app.id, app.secret, "POST", path, body)
        headers["X-Yinyi-Event"] = row.event
        headers["X-Yinyi-Notification-Id"] = str(row.id)
        error: str | None = None
        assert self._session is not None
        try:
            async with self._session.post(row.url, data=body, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    await self._finish(row.id, delivered=True, attempts=row.attempts + 1)
                    return True
                error = f"HTTP {resp.status}: {(await resp.text())[:120]}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        await self._finish(row.id, delivered=False, attempts=row.attempts + 1, error=error)
        return False

    async def _finish(self, nid: int, *, delivered: bool, attempts: int, error: str | None = None) -> None:
        now = utcnow()
        if delivered:
            values: dict[str, Any] = {"status": "DELIVERED", "delivered_at": now, "attempts": attempts,
                                      "lease_until": None, "last_error": None}
        elif attempts >= self.core.settings.callback_max_attempts:
            values = {"status": "EXHAUSTED", "attempts": attempts, "lease_until": None, "last_error": error,
                      "next_attempt_at": None}
        else:
            values = {"attempts": attempts, "lease_until": None, "last_error": error,
                      "next_attempt_at": now + self.backoff(attempts)}
        await self.core.writer.run(lambda conn: conn.execute(update(_N).where(_N.c.id == nid).values(**values)),
                                   durable=False)

    # --- admin ---------------------------------------------------------------------------
    async def search(self, *, status: str | None = None, payment_id: str | None = None,
                     limit: int = 100) -> dict[str, Any]:
        q = select(Notification).order_by(Notification.id.desc()).limit(min(max(limit, 1), 1000))
        if status:
            q = q.where(Notification.status == status)
        if payment_id:
            q = q.where(Notification.payment_id == payment_id)
        async with self.core.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
            counts = dict((await s.execute(select(Notification.status, func.count())
                                           .group_by(Notification.status))).all())
        return {"items": [notification_out(r) for r in rows], "counts": counts}

    async def resend(self, nid: int, actor: str) -> dict[str, Any]:
        def tx(conn: Connection) -> Any:
            row = conn.execute(update(_N).where(_N.c.id == nid, _N.c.status != "PENDING").values(
                status="PENDING", attempts=0, next_attempt_at=utcnow(), lease_until=None).returning(*_N.c)).first()
            if row is None:
                exists = conn.execute(select(_N.c.status).where(_N.c.id == nid)).scalar()
                if exists is None:
                    raise NotFound(f"notification {nid} not found")
                raise InvalidState("the notification is already waiting for delivery", current_status=exists)
            return row

        row = await self.core.writer.run(tx)
        await self.core.ledger.audit(actor, "callback.resend", str(nid), {"payment_id": row.payment_id})
        return notification_out(row)
