"""Background workers over leased outbox rows, shared by every queue of the gateway.

Each queue (write-backs, single-sided cases, notices …) is a table whose due rows
are *leased* with a conditional UPDATE before work starts, so several gateway
processes can run the same worker against one database and no row is worked twice
at once. A lease that expires (a process died mid-work) makes the row due again.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.engine import Connection

from ..db.models import utcnow

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.worker")


async def claim_due(core: Core, table: Table, *conditions: Any, due_column: str = "next_attempt_at",
                    lease: dt.timedelta = dt.timedelta(seconds=60), limit: int = 50) -> list[Any]:
    """Lease up to ``limit`` rows of ``table`` matching ``conditions`` whose due time has come."""
    now = utcnow()
    due = table.c[due_column]
    free = or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    pk = next(iter(table.primary_key.columns))
    async with core.rsm() as s:
        ids: Sequence[Any] = (await s.execute(
            select(pk).where(*conditions, due.is_not(None), due <= now, free).order_by(due).limit(limit))).scalars().all()
    if not ids:
        return []

    def tx(conn: Connection) -> list[Any]:
        rows = []
        for key in ids:
            row = conn.execute(update(table).where(pk == key, *conditions, free)
                               .values(lease_until=now + lease).returning(*table.c)).first()
            if row is not None:
                rows.append(row)
        return rows

    return await core.writer.run(tx, durable=False)


class PeriodicWorker:
    """Runs ``run_once`` every ``interval`` seconds until stopped; one failing pass is logged, not fatal."""

    name = "worker"

    def __init__(self, core: Core, interval: float) -> None:
        self.core = core
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run the next pass now (work was just queued in this process)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed", self.name)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def run_once(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError
