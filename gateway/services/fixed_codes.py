"""Fixed collection codes (固定收款码) and offline emergency collection (离线收款).

A fixed code is a printed QR for a merchant or fee item: the patient scans it, enters
the amount on the gateway's page and pays on the phone, to the hospital's account.
In offline mode (HIS or network down at the window) the same page takes payments
that no HIS bill backs yet; they are marked ``collection_mode="offline"``, listed
and exported for the window to record, and reconciled like any other payment.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ..channel import Capability, Method
from ..config import new_token
from ..db.models import FixedCode, Payment, utcnow
from ..errors import ChannelNotAllowed, InvalidAmount, NotFound, ValidationFailed
from ..money import MoneyFormatError, fen_to_yuan, yuan_to_fen
from ..schemas import PaymentCreate

if TYPE_CHECKING:
    from ..core import Core

SYSTEM_APP = "app_fixed_codes"
CST = dt.timezone(dt.timedelta(hours=8))


class FixedCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    campus_id: str | None = Field(default=None, max_length=40)
    business_type: str = Field(default="fixed_collection", min_length=1, max_length=40)
    fee_item: str | None = Field(default=None, max_length=64)
    merchants: dict[str, str] = Field(min_length=1, description="channel -> merchant id")
    offline: bool = False
    max_amount: int = Field(default=5_000_000, gt=0, le=10_000_000_000)


class FixedCodePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    merchants: dict[str, str] | None = None
    offline: bool | None = None
    enabled: bool | None = None
    max_amount: int | None = Field(default=None, gt=0, le=10_000_000_000)


class FixedCodeService:
    def __init__(self, core: Core) -> None:
        self.core = core

    def out(self, f: FixedCode) -> dict[str, Any]:
        return {"id": f.id, "name": f.name, "campus_id": f.campus_id, "business_type": f.business_type,
                "fee_item": f.fee_item, "merchants": f.merchants, "offline": f.offline, "max_amount": f.max_amount,
                "enabled": f.enabled, "pay_url": f"{self.core.settings.effective_public_base_url}/fixed/{f.id}"}

    async def _ensure_system_app(self) -> None:
        if not await self.core.directory.app_exists(SYSTEM_APP):
            await self.core.directory.create_app("固定收款码 / fixed collection codes", app_id=SYSTEM_APP,
                                                 scopes=["pay"])

    async def _check_merchants(self, merchants: dict[str, str]) -> None:
        for channel, mid in merchants.items():
            cls = self.core.registry.channel(channel)
            if not (cls.supports(Capability.H5) or cls.supports(Capability.QR)):
                raise ValidationFailed(f"{channel} has neither H5 nor QR payment; it cannot serve a fixed code")
            rows = [m for m in await self.core.directory.list_merchants() if m.id == mid]
            if not rows or rows[0].channel != channel:
                raise ValidationFailed(f"merchant {mid} is not a {channel} merchant")

    async def get(self, code_id: str) -> FixedCode:
        async with self.core.rsm() as s:
            f = await s.get(FixedCode, code_id)
        if f is None:
            raise NotFound(f"fixed code {code_id!r} not found")
        return f

    async def list(self) -> list[dict[str, Any]]:
        async with self.core.rsm() as s:
            return [self.out(f) for f in (await s.execute(select(FixedCode).order_by(FixedCode.created_at))).scalars()]

    async def create(self, actor: str, body: FixedCodeIn) -> dict[str, Any]:
        await self._check_merchants(body.merchants)
        await self._ensure_system_app()
        f = FixedCode(id=new_token("fx_", 5), name=body.name, campus_id=body.campus_id,
                      business_type=body.business_type, fee_item=body.fee_item, merchants=body.merchants,
                      offline=body.offline, max_amount=body.max_amount, enabled=True, created_at=utcnow())
        async with self.core.sm() as s:
            s.add(f)
            await s.commit()
        await self.core.ledger.audit(actor, "fixed_code.create", f.id, body.model_dump())
        return self.out(f)

    async def patch(self, actor: str, code_id: str, body: FixedCodePatch) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        if changes.get("merchants"):
            await self._check_merchants(changes["merchants"])
        async with self.core.sm() as s:
            f = await s.get(FixedCode, code_id)
            if f is None:
                raise NotFound(f"fixed code {code_id!r} not found")
            for k, v in changes.items():
                setattr(f, k, v)
            await s.commit()
            out = self.out(f)
        await self.core.ledger.audit(actor, "fixed_code.patch", code_id, changes)
        return out

    async def pay(self, code_id: str, amount_yuan: str, channel: str, client_ip: str) -> Payment:
        """The patient's payment through a fixed code: H5 where the channel has it, else QR."""
        f = await self.get(code_id)
        if not f.enabled:
            raise NotFound("this collection code is disabled")
        if channel not in f.merchants:
            raise ChannelNotAllowed(f"this code does not take {channel}", allowed=sorted(f.merchants))
        try:
            amount = yuan_to_fen(amount_yuan)
        except MoneyFormatError as exc:
            raise InvalidAmount("enter the amount in yuan, e.g. 25.00") from exc
        if amount <= 0 or amount > f.max_amount:
            raise InvalidAmount(f"amount must be between 0.01 and {fen_to_yuan(f.max_amount)} yuan")
        cls = self.core.registry.channel(channel)
        method = Method.H5 if cls.supports(Capability.H5) else Method.QR
        await self._ensure_system_app()
        # Route through a per-code entry-less request pinned to the code's merchant.
        req = PaymentCreate(out_trade_no=f"FX{utcnow().strftime('%y%m%d%H%M%S')}{secrets.token_hex(4)}",
                            amount=amount, subject=f.fee_item or f.name, business_type=f.business_type,
                            method=method, channel=channel, campus=f.campus_id, entry=f"fixed:{f.id}",
                            client_ip=client_ip[:45] or "127.0.0.1")
        return await self.core.payments.create(SYSTEM_APP, req, collection_mode="offline" if f.offline else "fixed",
                                               merchant_id=f.merchants[channel])

    async def export_offline(self, day: dt.date, *, mode: str = "offline") -> list[dict[str, Any]]:
        """Collections of one business day (China time) for the window to record in the HIS."""
        start = dt.datetime.combine(day, dt.time(0), CST)
        end = start + dt.timedelta(days=1)
        async with self.core.rsm() as s:
            rows = (await s.execute(select(Payment).where(
                Payment.collection_mode == mode, Payment.created_at >= start, Payment.created_at < end)
                .order_by(Payment.created_at))).scalars().all()
        return [{"payment_id": p.id, "entry": p.entry, "campus": p.campus_id, "channel": p.channel,
                 "merchant_id": p.merchant_id, "subject": p.subject, "amount_yuan": fen_to_yuan(p.amount),
                 "amount_fen": p.amount, "status": p.status, "channel_trade_no": p.channel_trade_no,
                 "paid_at": p.paid_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S") if p.paid_at else "",
                 "refunded_yuan": fen_to_yuan(p.refunded_amount)} for p in rows]

    @staticmethod
    def to_csv(rows: list[dict[str, Any]]) -> bytes:
        headers = {"payment_id": "平台流水号", "entry": "收款码", "campus": "院区", "channel": "支付渠道",
                   "merchant_id": "商户", "subject": "收费项目", "amount_yuan": "金额(元)", "amount_fen": "金额(分)",
                   "status": "状态", "channel_trade_no": "渠道交易号", "paid_at": "支付时间",
                   "refunded_yuan": "已退金额(元)"}
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(headers))
        w.writerow(headers)
        w.writerows(rows)
        return "\ufeff".encode() + buf.getvalue().encode("utf-8")  # BOM: Excel opens UTF-8 Chinese correctly
