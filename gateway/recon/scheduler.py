"""Scheduled reconciliation: T+0 through the day and T+1 each morning, in every process."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from ..db.models import ReconRun
from ..services.worker import PeriodicWorker
from ..timeutil import CHINA

if TYPE_CHECKING:
    from ..core import Core


class ReconScheduler(PeriodicWorker):
    """T+0 through the day (HIS × platform of today) and T+1 once each morning (yesterday, three-way).

    Every process runs it; a run's id is derived from its time slot, so the process that
    inserts the run row first does it and the others skip (the insert is the claim)."""

    name = "recon-scheduler"

    def __init__(self, core: Core) -> None:
        super().__init__(core, max(5.0, min(60.0, core.settings.recon_t0_interval_seconds or 60.0)))

    async def run_once(self) -> int:
        s = self.core.settings
        now = dt.datetime.now(CHINA)
        today = now.date()
        done = 0
        reconciling = [x for x in await self.core.his.enabled_systems() if x.options.reconcile]
        if s.recon_t0_interval_seconds > 0 and reconciling:  # T+0 is HIS × platform: nothing to do without a HIS
            slot = int(now.timestamp() // s.recon_t0_interval_seconds)
            done += await self._claimed(today, "t0", f"T0{today:%Y%m%d}{slot % 100000:05d}")
        hour, minute = (int(x) for x in s.recon_t1_after.split(":"))
        if (now.hour, now.minute) >= (hour, minute):
            yesterday = today - dt.timedelta(days=1)
            done += await self._claimed(yesterday, "t1", f"T1{yesterday:%Y%m%d}")
        return done

    async def _claimed(self, day: dt.date, mode: str, run_id: str) -> int:
        async with self.core.rsm() as s:
            if await s.get(ReconRun, run_id) is not None:
                return 0
        try:
            await self.core.recon.run(day, actor="system:scheduler", mode=mode, run_id=run_id)
        except IntegrityError:
            return 0  # another process claimed this slot
        return 1
