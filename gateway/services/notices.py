"""Notices to people through configured notifiers, from a leased outbox (通知).

``emit`` queues one row per subscribed notifier instance (in its own transaction, or
inside the caller's through ``queue_in``); the worker delivers them with
exponential backoff up to ``notice_max_attempts``. An event with no subscribed
notifier is still recorded in the case history by the caller, so nothing depends
on a notifier being configured.
"""
from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from tenacity import wait_random_exponential

from ..db.models import Notice, NotifierConfig, utcnow
from ..errors import ConfigError, NotFound, ValidationFailed
from ..notifier import AUDIENCES, EVENTS, NoticeMessage, Notifier
from ..vault import mask
from .worker import PeriodicWorker, claim_due

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.notices")
_N = Notice.__table__


class NotifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notifier: str = Field(min_length=1, max_length=40)
    config: dict[str, Any]
    events: list[str] = Field(default_factory=list)
    audiences: list[str] = Field(default_factory=list)
    enabled: bool = True


def notice_out(n: Any) -> dict[str, Any]:
    return {"id": n.id, "notifier": n.notifier_name, "event": n.event, "audience": n.audience,
            "subject_id": n.subject_id, "status": n.status, "attempts": n.attempts, "last_error": n.last_error,
            "payload": n.payload, "created_at": n.created_at.isoformat(),
            "delivered_at": n.delivered_at.isoformat() if n.delivered_at else None}


class NoticeService(PeriodicWorker):
    name = "notice-dispatcher"

    def __init__(self, core: Core) -> None:
        super().__init__(core, core.settings.resolver_interval_seconds)
        self._wait = wait_random_exponential(multiplier=2, max=1800)
        self._instances: dict[str, tuple[str, Notifier]] = {}

    # --- configuration --------------------------------------------------------------------
    async def put_notifier(self, actor: str, name: str, body: NotifierIn) -> dict[str, Any]:
        cls = self._class(body.notifier)
        try:
            cls.config_model.model_validate(body.config)
        except ValidationError as exc:
            raise ValidationFailed(f"configuration of notifier {body.notifier!r} is invalid",
                                   errors=[{"loc": ["config", *map(str, e["loc"])], "msg": e["msg"]}
                                           for e in exc.errors()]) from exc
        unknown = [e for e in body.events if e not in EVENTS]
        bad_aud = [a for a in body.audiences if a not in AUDIENCES]
        if unknown or bad_aud:
            raise ValidationFailed("unknown events or audiences", unknown_events=unknown, unknown_audiences=bad_aud,
                                   events=sorted(EVENTS), audiences=list(AUDIENCES))
        values = {"notifier": body.notifier, "config_enc": self.core.vault.encrypt_json(body.config),
                  "events": body.events, "audiences": body.audiences, "enabled": body.enabled, "updated_at": utcnow()}
        async with self.core.sm() as s, s.begin():
            row = await s.get(NotifierConfig, name)
            if row is None:
                s.add(NotifierConfig(name=name, **values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)
        await self.core.ledger.audit(actor, "notifier.put", name, {"notifier": body.notifier, "events": body.events})
        return {"name": name, "notifier": body.notifier, "events": body.events, "audiences": body.audiences,
                "enabled": body.enabled}

    async def list_notifiers(self) -> list[dict[str, Any]]:
        async with self.core.rsm() as s:
            rows = (await s.execute(select(NotifierConfig).order_by(NotifierConfig.name))).scalars().all()
        return [{"name": r.name, "notifier": r.notifier, "events": r.events, "audiences": r.audiences,
                 "enabled": r.enabled} for r in rows]

    def _class(self, notifier_id: str) -> type[Notifier]:
        cls = self.core.registry.notifiers.get(notifier_id)
        if cls is None:
            raise ConfigError(f"no notifier {notifier_id!r} is registered", notifier=notifier_id,
                              available=sorted(self.core.registry.notifiers))
        return cls

    # --- queueing ---------------------------------------------------------------------------
    async def _subscribers(self, event: str, audience: str) -> list[str]:
        async with self.core.rsm() as s:
            rows = (await s.execute(select(NotifierConfig).where(NotifierConfig.enabled.is_(True)))).scalars().all()
        return [r.name for r in rows if (not r.events or event in r.events)
                and (not r.audiences or audience in r.audiences)]

    async def emit(self, event: str, *, audience: str, subject_id: str | None, payload: dict[str, Any]) -> int:
        """Queue ``event`` for every notifier subscribed to it; returns how many were queued."""
        names = await self._subscribers(event, audience)
        if not names:
            return 0
        now = utcnow()

        def tx(conn: Connection) -> None:
            for name in names:
                conn.execute(insert(Notice).values(
                    notifier_name=name, event=event, audience=audience, subject_id=subject_id, payload=payload,
                    status="PENDING", attempts=0, next_attempt_at=now, created_at=now))

        await self.core.writer.run(tx, durable=False)
        self.wake()
        return len(names)

    # --- delivery ----------------------------------------------------------------------------
    async def _instance(self, name: str) -> tuple[Notifier, bool]:
        async with self.core.rsm() as s:
            row = await s.get(NotifierConfig, name)
        if row is None:
            raise ConfigError(f"notifier {name!r} was removed")
        hit = self._instances.get(name)
        cfg = self.core.vault.decrypt_json(row.config_enc)
        if hit is None or hit[0] != row.config_enc:
            cls = self._class(row.notifier)
            assert self.core.http is not None
            self._instances[name] = (row.config_enc, cls(cls.config_model.model_validate(cfg), self.core.http))
        return self._instances[name][1], bool(cfg.get("include_personal_data"))

    async def run_once(self) -> int:
        rows = await claim_due(self.core, _N, _N.c.status == "PENDING", limit=50)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: Any) -> None:
        error: str | None = None
        try:
            notifier, personal = await self._instance(row.notifier_name)
            payload = row.payload if personal else mask(row.payload)
            title = EVENTS.get(row.event, row.event)
            await notifier.send(NoticeMessage(id=row.id, event=row.event, audience=row.audience, title=title,
                                              text=_sentence(title, payload), payload=payload))
        except Exception as exc:  # any failure is one failed attempt
            error = f"{type(exc).__name__}: {exc}"[:250]
        now = utcnow()
        attempts = row.attempts + 1
        if error is None:
            values: dict[str, Any] = {"status": "DELIVERED", "delivered_at": now, "attempts": attempts,
                                      "lease_until": None, "last_error": None}
        elif attempts >= self.core.settings.notice_max_attempts:
            values = {"status": "EXHAUSTED", "attempts": attempts, "lease_until": None, "last_error": error,
                      "next_attempt_at": None}
        else:
            wait = self._wait(SimpleNamespace(attempt_number=attempts))  # type: ignore[arg-type]
            values = {"attempts": attempts, "lease_until": None, "last_error": error,
                      "next_attempt_at": now + dt.timedelta(seconds=wait)}
        await self.core.writer.run(lambda conn: conn.execute(update(_N).where(_N.c.id == row.id).values(**values)),
                                   durable=False)

    async def search(self, *, subject_id: str | None = None, status: str | None = None,
                     limit: int = 100) -> dict[str, Any]:
        q = select(Notice).order_by(Notice.id.desc()).limit(min(max(limit, 1), 1000))
        if subject_id:
            q = q.where(Notice.subject_id == subject_id)
        if status:
            q = q.where(Notice.status == status)
        async with self.core.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
            counts = dict((await s.execute(select(Notice.status, func.count()).group_by(Notice.status))).all())
        return {"items": [notice_out(r) for r in rows], "counts": counts}

    async def resend(self, notice_id: int, actor: str) -> dict[str, Any]:
        def tx(conn: Connection) -> Any:
            return conn.execute(update(_N).where(_N.c.id == notice_id).values(
                status="PENDING", attempts=0, next_attempt_at=utcnow(), lease_until=None).returning(*_N.c)).first()

        row = await self.core.writer.run(tx)
        if row is None:
            raise NotFound(f"notice {notice_id} not found")
        await self.core.ledger.audit(actor, "notice.resend", str(notice_id), {})
        self.wake()
        return notice_out(row)


def _sentence(title: str, payload: dict[str, Any]) -> str:
    parts = [title]
    if "amount_yuan" in payload:
        parts.append(f"金额 {payload['amount_yuan']} 元")
    if payload.get("payment_id"):
        parts.append(f"支付单号 {payload['payment_id']}")
    if payload.get("status_zh"):
        parts.append(f"状态 {payload['status_zh']}")
    if payload.get("resolution_zh"):
        parts.append(f"处理方式 {payload['resolution_zh']}")
    return "，".join(parts) + "。"
