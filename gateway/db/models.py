"""Ledger tables. Amounts are integer fen (BigInteger); times are UTC."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Snapshot:
    """A detached, read-only copy of a ledger row with the ORM object's attribute names.

    The hot path (create, transition) reads rows it has just written; building
    instrumented ORM objects for that costs more than the SQL. Never add one to a session.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Snapshot({self.__dict__.get('id')!r})"


def snapshot(table: Any, **values: Any) -> Any:
    """A new row's values as a ``Snapshot``: every column present, unset ones None."""
    row = dict.fromkeys((c.key for c in table.columns), None)
    row.update(values)
    return Snapshot(row)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC on both SQLite (which stores naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use UTC-aware datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


class App(Base):
    """A calling system (接入应用): HIS window, kiosk, mini-program, exam system …"""

    __tablename__ = "apps"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_enc: Mapped[str] = mapped_column(Text)
    business_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["*"] = all
    merchant_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # [] = any allowed by routing
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)  # "pay", "admin"
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Campus(Base):
    """院区"""

    __tablename__ = "campuses"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Department(Base):
    """科室/部门: the organisation under the campuses (users name theirs)."""

    __tablename__ = "departments"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    campus_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Merchant(Base):
    """商户: an account of the hospital at a channel, per campus and business type."""

    __tablename__ = "merchants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(100))
    campus_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    business_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # [] = all
    config_enc: Mapped[str] = mapped_column(Text)  # encrypted adapter configuration
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("app_id", "out_trade_no", name="uq_payments_app_out_trade_no"),
        Index("ix_payments_due", "next_check_at"),
        Index("ix_payments_status", "status"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # also the channel's out_trade_no
    app_id: Mapped[str] = mapped_column(String(40))
    out_trade_no: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(128))
    business_type: Mapped[str] = mapped_column(String(40))
    campus_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    entry: Mapped[str | None] = mapped_column(String(64), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notify_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    auth_code_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)
    openid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(24))
    channel_trade_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    h5_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    jsapi_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    payer_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    paid_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(256), nullable=True)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_reserved: Mapped[int] = mapped_column(BigInteger, default=0)  # succeeded + in flight
    expire_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    reverse_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    next_check_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    check_count: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    collection_mode: Mapped[str] = mapped_column(String(16), default="online")  # online | fixed | offline
    his_system: Mapped[str | None] = mapped_column(String(40), nullable=True)  # business system to write back to
    gave_up_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)  # the caller closed/reversed it
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("app_id", "out_refund_no", name="uq_refunds_app_out_refund_no"),
        Index("ix_refunds_due", "next_check_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # also the channel's out_refund_no
    payment_id: Mapped[str] = mapped_column(String(32), index=True)
    app_id: Mapped[str] = mapped_column(String(40))
    out_refund_no: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notify_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    status: Mapped[str] = mapped_column(String(24))
    channel_refund_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    refunded_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(256), nullable=True)
    next_check_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    check_count: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    his_write_back: Mapped[bool] = mapped_column(Boolean, default=False)  # tell the business system of it
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PaymentEvent(Base):
    """Append-only history of every status change of payments and refunds."""

    __tablename__ = "payment_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(String(32), index=True)
    refund_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    from_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_status: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(24))  # api, notify, query, resolver, manual
    operator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InterfaceLog(Base):
    """Every inbound and outbound call, with masked bodies (接口日志)."""

    __tablename__ = "interface_logs"
    __table_args__ = (Index("ix_interface_logs_iface_time", "interface", "created_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    interface: Mapped[str] = mapped_column(String(96))
    app_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)
    merchant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    payment_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str] = mapped_column(String(12))  # normal | abnormal | rejected
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    latency_ms: Mapped[float] = mapped_column()
    request_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Administrative actions: app creation, manual review decisions, configuration changes."""

    __tablename__ = "audit_logs"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ChannelSetting(Base):
    """Channel and method switches (渠道/支付方式启停), effective without a restart."""

    __tablename__ = "channel_settings"
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_methods: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Entry(Base):
    """收费入口: campus + calling app + business type, with its channels, methods and merchants."""

    __tablename__ = "entries"
    __table_args__ = (UniqueConstraint("app_id", "code", name="uq_entries_app_code"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))  # what callers send as "entry", e.g. kiosk-01
    name: Mapped[str] = mapped_column(String(100))
    app_id: Mapped[str] = mapped_column(String(40))
    campus_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    business_type: Mapped[str] = mapped_column(String(40))
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)  # [] = every enabled channel
    methods: Mapped[list[str]] = mapped_column(JSON, default=list)  # [] = every method
    merchants: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # channel -> merchant id
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """Transactional outbox of signed notifications to calling systems (回调通知)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(40))
    payment_id: Mapped[str] = mapped_column(String(32), index=True)
    refund_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    event: Mapped[str] = mapped_column(String(40))  # payment.succeeded, refund.succeeded …
    url: Mapped[str] = mapped_column(String(512))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # PENDING | DELIVERED | EXHAUSTED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class FixedCode(Base):
    """固定收款码: a printed QR where the patient enters the amount."""

    __tablename__ = "fixed_codes"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    campus_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    business_type: Mapped[str] = mapped_column(String(40))
    fee_item: Mapped[str | None] = mapped_column(String(64), nullable=True)
    merchants: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # channel -> merchant id
    offline: Mapped[bool] = mapped_column(Boolean, default=False)  # emergency collection (离线收款) mode
    max_amount: Mapped[int] = mapped_column(BigInteger, default=5_000_000)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HisSystem(Base):
    """业务系统: a configured HIS, exam, nutrition … system and its adapter."""

    __tablename__ = "his_systems"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    adapter: Mapped[str] = mapped_column(String(40))
    business_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # [] = none by default; ["*"] = all
    config_enc: Mapped[str] = mapped_column(Text)  # encrypted adapter configuration
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # gateway-side behaviour (verify_amount …)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HisWriteback(Base):
    """Write-back of a payment or refund to its business system (确认收费 / 退费回写): state and outbox.

    A payment row is written with the payment's intent (WAITING); the ledger makes it
    PENDING in the transaction that records the payment's success, so no success is
    ever without its write-back.
    """

    __tablename__ = "his_writebacks"
    __table_args__ = (
        UniqueConstraint("kind", "payment_id", "refund_id", name="uq_his_writebacks_target"),
        Index("ix_his_writebacks_due", "status", "next_attempt_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # payment | refund
    payment_id: Mapped[str] = mapped_column(String(32), index=True)
    refund_id: Mapped[str] = mapped_column(String(32), default="")  # "" for payments (unique key needs a value)
    system_id: Mapped[str] = mapped_column(String(40))
    app_id: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    bill_type: Mapped[str] = mapped_column(String(40))
    patient_enc: Mapped[str] = mapped_column(Text)
    patient_hash: Mapped[str] = mapped_column(String(64), index=True)
    patient_name_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    patient_name_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    patient_phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    visit_no: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    charge_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12))  # WAITING PENDING RECORDED FAILED REJECTED CANCELLED
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # success arrived after the caller gave up
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    his_serial: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(256), nullable=True)
    recorded_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SingleSidedCase(Base):
    """单边账: money received that its business system has not recorded, and its handling."""

    __tablename__ = "single_sided_cases"
    __table_args__ = (Index("ix_single_sided_cases_status", "status", "opened_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(32), unique=True)
    writeback_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    system_id: Mapped[str] = mapped_column(String(40))
    app_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))  # writeback_failed | writeback_rejected | late_success
    reason_detail: Mapped[str | None] = mapped_column(String(256), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # OPEN APPROVING REFUNDING RESOLVED
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)  # written_back refunded manual
    refund_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    approval_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    next_check_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)  # auto refund due, or next refund step
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(String(256), nullable=True)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CaseEvent(Base):
    """Append-only history of a case (single-sided now, reconciliation differences later)."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Approval(Base):
    """审核: a money-moving action waiting for a person with the right role."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_status", "status", "required_role"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # case_refund …
    target_id: Mapped[str] = mapped_column(String(32), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    applicant: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    required_role: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))  # PENDING APPROVED REJECTED WITHDRAWN
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    comment: Mapped[str | None] = mapped_column(String(256), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class NotifierConfig(Base):
    """A configured notifier instance (webhook, SMS, WeChat Work …) and the events it sends."""

    __tablename__ = "notifier_configs"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    notifier: Mapped[str] = mapped_column(String(40))  # registered notifier id
    config_enc: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # [] = every event
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)  # staff, patient; [] = both
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Notice(Base):
    """Outbox of notices to people through notifiers (单边账 opened, refunded …)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    notifier_name: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    audience: Mapped[str] = mapped_column(String(12))
    subject_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12))  # PENDING DELIVERED EXHAUSTED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


# --- medical insurance ---------------------------------------------------------------------


class InsuranceCentre(Base):
    """A configured insurance centre (医保中心): an adapter id and its encrypted configuration."""

    __tablename__ = "insurance_centres"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    adapter: Mapped[str] = mapped_column(String(40))
    config_enc: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InsuranceSettlement(Base):
    """One mixed settlement: the centre's settlement (buckets kept apart) and its top-up payment.

    Also the insurance ledger for reconciliation (3201/3202): the settlement's and its
    reversal's identifiers, clearing fields and amounts. Amounts are fen; the
    reversal's buckets are in ``reversal`` (negative, as the centre answered)."""

    __tablename__ = "insurance_settlements"
    __table_args__ = (UniqueConstraint("app_id", "out_settle_no", name="uq_insurance_settlements_out_settle_no"),
                      Index("ix_insurance_settlements_due", "status", "next_attempt_at"),
                      Index("ix_insurance_settlements_setl_time", "setl_time"),
                      Index("ix_insurance_settlements_rev_time", "rev_time"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(40))
    out_settle_no: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    centre_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))  # outpatient | inpatient
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    business_type: Mapped[str] = mapped_column(String(40))
    notify_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_enc: Mapped[str] = mapped_column(Text)  # the settle request (no password), encrypted
    topup_enc: Mapped[str | None] = mapped_column(Text, nullable=True)  # the top-up request, encrypted
    psn_no: Mapped[str] = mapped_column(String(40), index=True)
    insuplc_admdvs: Mapped[str] = mapped_column(String(12))
    mdtrt_id: Mapped[str] = mapped_column(String(40), index=True)
    insutype: Mapped[str] = mapped_column(String(8))
    med_type: Mapped[str] = mapped_column(String(8))
    settle_infno: Mapped[str] = mapped_column(String(8))
    settle_msgids: Mapped[list[str]] = mapped_column(JSON, default=list)
    msgid: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the msgid that settled
    setl_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    setl_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    clr_type: Mapped[str | None] = mapped_column(String(8), nullable=True)
    clr_way: Mapped[str | None] = mapped_column(String(8), nullable=True)
    setl_optins: Mapped[str | None] = mapped_column(String(12), nullable=True)
    medins_setl_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    psn_name_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # medfee_sumamt
    fund_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    funds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # sub-funds, fen
    fund_payments: Mapped[list[Any]] = mapped_column(JSON, default=list)  # setldetail lines
    psn_part: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acct_pay: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acct_mulaid_pay: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    wallet_pay: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cash_pay: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    hosp_part: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # fulamt_ownpay, deductible …
    balance_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    topup_out_trade_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payment_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    topup_deadline: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    refund_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rev_infno: Mapped[str | None] = mapped_column(String(8), nullable=True)
    rev_msgids: Mapped[list[str]] = mapped_column(JSON, default=list)
    rev_msgid: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rev_setl_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rev_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    reversal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(256), nullable=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class InsuranceSettlementEvent(Base):
    """Append-only history of an insurance settlement: every status change and centre call."""

    __tablename__ = "insurance_settlement_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    settlement_id: Mapped[str] = mapped_column(String(32), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(16))  # api | worker
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InsuranceFeeLine(Base):
    """费用明细 as uploaded to the insurance centre (2204/2301) with the centre's verdict per line;
    the discharge fee list (出院费用清单) a kiosk prints is read from here."""

    __tablename__ = "insurance_fee_lines"
    __table_args__ = (UniqueConstraint("centre_id", "mdtrt_id", "feedetl_sn", name="uq_insurance_fee_lines_line"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    centre_id: Mapped[str] = mapped_column(String(40))
    mdtrt_id: Mapped[str] = mapped_column(String(64), index=True)
    psn_no: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))  # outpatient | inpatient
    feedetl_sn: Mapped[str] = mapped_column(String(64))
    chrg_bchno: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fee_time: Mapped[dt.datetime] = mapped_column()
    med_list_codg: Mapped[str] = mapped_column(String(64))
    medins_list_codg: Mapped[str] = mapped_column(String(64))
    item_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    quantity: Mapped[str] = mapped_column(String(32))  # decimal as text: never a float
    unit_price: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)  # fen
    selfpay_prop: Mapped[str] = mapped_column(String(16), default="0")
    fulamt_ownpay: Mapped[int] = mapped_column(BigInteger, default=0)
    overlmt: Mapped[int] = mapped_column(BigInteger, default=0)
    preselfpay: Mapped[int] = mapped_column(BigInteger, default=0)
    inscp_scp: Mapped[int] = mapped_column(BigInteger, default=0)
    chrgitm_lv: Mapped[str | None] = mapped_column(String(16), nullable=True)
    med_chrgitm_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(12))  # uploaded | revoked
    msgid: Mapped[str] = mapped_column(String(40))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- reconciliation ----------------------------------------------------------------------


class ReconFetch(Base):
    """对账数据获取日志: one fetch or import of one source's bill for one business day."""

    __tablename__ = "recon_fetches"
    __table_args__ = (Index("ix_recon_fetches_day", "day", "source"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(12))  # platform | his | channel | bank | insurance
    source_id: Mapped[str] = mapped_column(String(64))  # business system, merchant, "ledger" …
    bill_type: Mapped[str] = mapped_column(String(40), default="")
    origin: Mapped[str] = mapped_column(String(8))  # fetch | import
    status: Mapped[str] = mapped_column(String(8))  # OK | FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    total_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    total_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(String(256), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReconLine(Base):
    """One line of a source's bill as fetched or imported, in core terms. A re-fetch of the
    same (day, source, source_id, bill_type) replaces its lines in one transaction."""

    __tablename__ = "recon_lines"
    __table_args__ = (Index("ix_recon_lines_batch", "day", "source", "source_id", "bill_type"),
                      Index("ix_recon_lines_txn", "txn_id"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(12))
    source_id: Mapped[str] = mapped_column(String(64))
    bill_type: Mapped[str] = mapped_column(String(40), default="")
    txn_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # gateway payment or refund id
    kind: Mapped[str] = mapped_column(String(8))  # payment | refund
    amount: Mapped[int] = mapped_column(BigInteger)  # fen, positive
    fee: Mapped[int] = mapped_column(BigInteger, default=0)  # channel fee, fen (signed as the bill gives it)
    status: Mapped[str] = mapped_column(String(24))
    his_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel_trade_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)
    order_ref: Mapped[str | None] = mapped_column(String(256), nullable=True)
    method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entry: Mapped[str | None] = mapped_column(String(64), nullable=True)
    business_type: Mapped[str | None] = mapped_column(String(40), nullable=True)  # platform lines
    occurred_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class ReconRun(Base):
    """One reconciliation run of a day (一键对账 or the scheduled T+0 pass)."""

    __tablename__ = "recon_runs"
    __table_args__ = (Index("ix_recon_runs_day", "day", "started_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    mode: Mapped[str] = mapped_column(String(4))  # t0 (HIS × platform) | t1 (HIS × platform × channel)
    status: Mapped[str] = mapped_column(String(8))  # RUNNING DONE FAILED
    window_days: Mapped[int] = mapped_column(Integer, default=1)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(256), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class ReconDiff(Base):
    """A difference found for a day (对账差异). Sources are never edited: a difference is
    resolved by a mark or a compensating action recorded here and in ``case_events``."""

    __tablename__ = "recon_diffs"
    __table_args__ = (UniqueConstraint("day", "txn_key", "kind", name="uq_recon_diffs_key"),
                      Index("ix_recon_diffs_status", "status", "day"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    txn_key: Mapped[str] = mapped_column(String(80))  # txn id, or "his:" + business serial
    kind: Mapped[str] = mapped_column(String(8))
    cls: Mapped[str] = mapped_column(String(20))
    his_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    platform_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    channel_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    in_his: Mapped[bool] = mapped_column(Boolean, default=False)
    in_platform: Mapped[bool] = mapped_column(Boolean, default=False)
    in_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    other_day: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)
    his_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel_trade_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    order_ref: Mapped[str | None] = mapped_column(String(256), nullable=True)
    platform_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    his_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # OPEN | RESOLVED | CLEARED (sources agree on a re-run)
    resolution: Mapped[str | None] = mapped_column(String(24), nullable=True)
    note: Mapped[str | None] = mapped_column(String(256), nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    first_run_id: Mapped[str] = mapped_column(String(32))
    last_run_id: Mapped[str] = mapped_column(String(32))
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- finance console (财务管理后台) ----------------------------------------------------------


class ConsoleRole(Base):
    """A console role: menu- and action-level permission codes, and the approval roles it satisfies."""

    __tablename__ = "console_roles"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # admin, finance, cashier …
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(256), nullable=True)
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["*"] = every permission
    approval_roles: Mapped[list[str]] = mapped_column(JSON, default=list)  # finance, finance_director, admin
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsoleUser(Base):
    """A person at the console. The password is an scrypt hash with its salt and parameters; the
    TOTP secret is encrypted with the vault; failed logins and the lockout are counted here."""

    __tablename__ = "console_users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    campus_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_confirmed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # no code is accepted twice
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_login_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsoleLoginToken(Base):
    """Between the password and the TOTP code: a short-lived token (only its hash is stored)."""

    __tablename__ = "console_login_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str] = mapped_column(String(8))  # totp | enrol
    totp_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)  # the secret being enrolled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsoleSession(Base):
    """A console session. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user", "user_id", "ended_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(32))
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()  # absolute lifetime
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)  # logout idle expired replaced …


class ConsoleOplog(Base):
    """操作日志: append-only and tamper-evident. ``hash`` = sha256(``prev_hash`` + canonical JSON of
    the row); ``id`` is the position in the chain (1, 2, 3 …), assigned under the chain head's lock."""

    __tablename__ = "console_oplog"
    __table_args__ = (Index("ix_console_oplog_at", "at"), Index("ix_console_oplog_user", "username", "at"),
                      Index("ix_console_oplog_action", "action", "at"))
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column()
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(96))
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ConsoleOplogHead(Base):
    """The chain head (one row, id 1): the last position and hash, locked by every append."""

    __tablename__ = "console_oplog_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
