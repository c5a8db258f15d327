"""The interface log (接口日志): every inbound and outbound call, written in batches.

Writes go through a queue flushed every few hundred milliseconds, off the payment's
hot path; the log is evidence, not money, and a crash loses at most one batch.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

import orjson
from sqlalchemy import case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import InterfaceLog, utcnow
from ..db.writer import Writer
from ..vault import mask

log = logging.getLogger("yinyi.interface_log")
_MAX_BODY = 4000


def _cut(value: str | None, n: int) -> str | None:
    return value[:n] if value else value


def _body(data: Any) -> str | None:
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray)):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            return bytes(data[:_MAX_BODY]).decode("utf-8", "replace")
    try:
        text = orjson.dumps(mask(data), default=str).decode()
    except TypeError:
        text = str(data)
    return text[:_MAX_BODY]


class InterfaceLogWriter:
    def __init__(self, writer: Writer, read_sm: async_sessionmaker[AsyncSession], *, log_bodies: bool = True,
                 flush_interval: float = 0.25, batch: int = 500) -> None:
        self.writer = writer
        self.rsm = read_sm
        self.log_bodies = log_bodies
        self.flush_interval = flush_interval
        self.batch = batch
        self._queue: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def record(self, *, direction: str, interface: str, outcome: str, latency_ms: float,
               http_status: int | None = None, app_id: str | None = None, channel: str | None = None,
               merchant_id: str | None = None, payment_id: str | None = None, error_code: str | None = None,
               request: Any = None, response: Any = None) -> None:
        # Bounded to the columns' sizes: some values come from callers (X-App-Id), and
        # one oversized value would otherwise fail the whole batch on PostgreSQL.
        self._queue.append({
            "direction": direction, "interface": interface[:96], "outcome": outcome,
            "latency_ms": round(latency_ms, 3), "http_status": http_status, "app_id": _cut(app_id, 40),
            "channel": _cut(channel, 40), "merchant_id": _cut(merchant_id, 40), "payment_id": _cut(payment_id, 32),
            "error_code": _cut(error_code, 64),
            "request_body": _body(request) if self.log_bodies else None,
            "response_body": _body(response) if self.log_bodies else None,
            "created_at": utcnow(),
        })
        if len(self._queue) >= self.batch:
            self._wake.set()

    async def flush(self) -> None:
        rows, self._queue = self._queue, []
        if not rows:
            return
        try:
            await self.writer.run(lambda conn: conn.execute(insert(InterfaceLog), rows), durable=False)
        except Exception:  # the log must never break payments
            log.exception("interface log flush failed; %d rows dropped", len(rows))

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="interface-log-writer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def stats(self, since: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Per-interface counts: total, normal, abnormal, rejected; latency."""
        cols = (InterfaceLog.direction, InterfaceLog.interface)
        q = select(*cols, func.count().label("total"),
                   func.sum(case((InterfaceLog.outcome == "normal", 1), else_=0)).label("normal"),
                   func.sum(case((InterfaceLog.outcome == "abnormal", 1), else_=0)).label("abnormal"),
                   func.sum(case((InterfaceLog.outcome == "rejected", 1), else_=0)).label("rejected"),
                   func.avg(InterfaceLog.latency_ms).label("avg_latency_ms"),
                   func.max(InterfaceLog.created_at).label("last_call_at")).group_by(*cols).order_by(*cols)
        if since is not None:
            q = q.where(InterfaceLog.created_at >= since)
        async with self.rsm() as s:
            rows = (await s.execute(q)).all()
        return [{"direction": r.direction, "interface": r.interface, "total": r.total, "normal": int(r.normal or 0),
                 "abnormal": int(r.abnormal or 0), "rejected": int(r.rejected or 0),
                 "avg_latency_ms": round(float(r.avg_latency_ms or 0), 2),
                 "last_call_at": r.last_call_at.isoformat() if r.last_call_at else None} for r in rows]

    async def search(self, *, interface: str | None = None, payment_id: str | None = None,
                     outcome: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(InterfaceLog).order_by(InterfaceLog.id.desc()).limit(min(limit, 1000))
        if interface:
            q = q.where(InterfaceLog.interface == interface)
        if payment_id:
            q = q.where(InterfaceLog.payment_id == payment_id)
        if outcome:
            q = q.where(InterfaceLog.outcome == outcome)
        async with self.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
        return [{"id": r.id, "direction": r.direction, "interface": r.interface, "app_id": r.app_id,
                 "channel": r.channel, "merchant_id": r.merchant_id, "payment_id": r.payment_id,
                 "http_status": r.http_status, "outcome": r.outcome, "error_code": r.error_code,
                 "latency_ms": r.latency_ms, "request_body": r.request_body, "response_body": r.response_body,
                 "created_at": r.created_at.isoformat()} for r in rows]
