"""Configuration of the database-view adapter: a DSN, pool limits, and SQL per function.

Every function is a SQL text with named bind parameters (``:patient_id``) plus a
:class:`gateway.mapping.Mapping` from result columns (``src`` = column name or label,
matched case-insensitively) to core fields. The binds a SQL text may name are fixed
per function and checked when the configuration loads, so a typo fails start-up with
the function named instead of failing the first payment.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.his import ChargeItem, HisBillLine
from gateway.mapping import Mapping

ALLOWED_SCHEMES = ("postgresql+asyncpg", "mysql+aiomysql", "sqlite+aiosqlite")
IDENTIFIERS = ("patient_id", "visit_no", "card_no", "id_no")

# Same rule as SQLAlchemy's text(): ``:name`` not preceded by a colon, word char or backslash.
_BIND_RE = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")

PENDING_BINDS = frozenset(IDENTIFIERS)
ITEM_BINDS = PENDING_BINDS | {"charge_id"}
BILL_BINDS = frozenset({"day_start", "day_end", "bill_type", "day"})
WRITE_BACK_BINDS = frozenset({
    "payment_id", "out_trade_no", "app_id", "amount", "amount_fen", "amount_yuan", "channel",
    "channel_id", "method", "channel_trade_no", "paid_at", "patient_id", "visit_no", "charge_ids",
    "charge_id", "bill_type", "bill_type_code", "business_type", "campus_id", "operator", "entry",
})
REFUND_BINDS = frozenset({
    "refund_id", "payment_id", "amount", "amount_fen", "amount_yuan", "total", "total_fen",
    "refunded_at", "patient_id", "visit_no", "his_serial", "channel", "channel_id",
    "channel_refund_no", "reason", "bill_type", "bill_type_code",
})
RESULT_FIELDS = frozenset({"his_serial", "status", "error_code", "error_message"})
CHECK_FIELDS = frozenset({"error_code", "error_message"})
SUMMARY_FIELDS = frozenset({"count", "total"})
LINE_FIELDS = frozenset(HisBillLine.model_fields) - {"bill_type", "raw"}
ITEM_FIELDS = frozenset(ChargeItem.model_fields)


def bind_names(sql: str) -> set[str]:
    """The ``:name`` bind parameters of a SQL text."""
    return set(_BIND_RE.findall(sql))


def _check_binds(where: str, sql: str | None, allowed: frozenset[str]) -> None:
    if not sql:
        return
    unknown = bind_names(sql) - allowed
    if unknown:
        hint = "; write casts as CAST(:name AS type), not :name::type" if "::" in sql else ""
        raise ValueError(f"{where}: unknown bind parameter(s) {', '.join(':' + n for n in sorted(unknown))}; "
                         f"allowed: {', '.join(':' + n for n in sorted(allowed))}{hint}")


def _check_fields(where: str, mapping: Mapping | None, allowed: frozenset[str],
                  required: tuple[str, ...] = ()) -> None:
    if mapping is None:
        return
    unknown = set(mapping.fields) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    missing = [f for f in required if f not in mapping.fields]
    if missing:
        raise ValueError(f"{where}: field(s) {', '.join(missing)} must be mapped")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PendingConfig(_Section):
    """Pending charges (待缴费): one SQL per patient identifier, rows → ``PendingCharge``.

    ``items``: ``"query"`` runs ``items_sql`` once per charge (``:charge_id``);
    ``"rows"`` means the pending SQL returns one row per item and rows are grouped by
    ``charge_id``; ``"none"`` returns charges without items. Fields of the mapping that
    ``PendingCharge`` does not have go to its ``extra``; an unmapped ``amount`` is the
    sum of the items.
    """

    sql: dict[Literal["patient_id", "visit_no", "card_no", "id_no"], str] = Field(min_length=1)
    mapping: Mapping
    items: Literal["query", "rows", "none"] = "none"
    items_sql: str | None = None
    items_mapping: Mapping | None = None
    identifier_order: list[Literal["patient_id", "visit_no", "card_no", "id_no"]] = list(IDENTIFIERS)

    @model_validator(mode="after")
    def _consistent(self) -> PendingConfig:
        for ident, sql in self.sql.items():
            _check_binds(f"pending.sql.{ident}", sql, PENDING_BINDS)
        _check_binds("pending.items_sql", self.items_sql, ITEM_BINDS)
        required = ("charge_id", "patient_id") + (("amount",) if self.items == "none" else ())
        missing = [f for f in required if f not in self.mapping.fields]
        if missing:
            raise ValueError(f"pending.mapping: field(s) {', '.join(missing)} must be mapped")
        if self.items == "query" and not self.items_sql:
            raise ValueError("pending.items = 'query' needs pending.items_sql")
        if self.items != "none":
            if self.items_mapping is None:
                raise ValueError(f"pending.items = {self.items!r} needs pending.items_mapping")
            _check_fields("pending.items_mapping", self.items_mapping, ITEM_FIELDS, ("name", "amount"))
        return self


class BillTypeQuery(_Section):
    """One bill type; anything left unset comes from the ``bills`` section."""

    code: str | None = None  # the value of :bill_type (default: the core bill type)
    sql: str | None = None
    mapping: Mapping | None = None
    summary_sql: str | None = None


class BillsConfig(_Section):
    """Daily bills: rows → ``HisBillLine``; optional summary (``count``, ``total``) to validate.

    Binds: ``:day_start`` and ``:day_end`` (the HIS's local wall-clock midnight of the
    day and of the next day, naive), ``:day`` (the date) and ``:bill_type``.
    """

    sql: str | None = None
    mapping: Mapping | None = None
    summary_sql: str | None = None
    summary_mapping: Mapping | None = None
    types: dict[str, BillTypeQuery] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> BillsConfig:
        _check_binds("bills.sql", self.sql, BILL_BINDS)
        _check_binds("bills.summary_sql", self.summary_sql, BILL_BINDS)
        _check_fields("bills.mapping", self.mapping, LINE_FIELDS, ("his_serial", "amount", "occurred_at"))
        _check_fields("bills.summary_mapping", self.summary_mapping, SUMMARY_FIELDS, ("count", "total"))
        for name, q in self.types.items():
            where = f"bills.types.{name}"
            if not (q.sql or self.sql):
                raise ValueError(f"{where}: no sql (set bills.sql or {where}.sql)")
            if not (q.mapping or self.mapping):
                raise ValueError(f"{where}: no mapping (set bills.mapping or {where}.mapping)")
            _check_binds(f"{where}.sql", q.sql, BILL_BINDS)
            _check_binds(f"{where}.summary_sql", q.summary_sql, BILL_BINDS)
            _check_fields(f"{where}.mapping", q.mapping, LINE_FIELDS, ("his_serial", "amount", "occurred_at"))
            if (q.summary_sql or self.summary_sql) and self.summary_mapping is None:
                raise ValueError(f"{where}: a summary_sql needs bills.summary_mapping")
        return self

    def resolved(self, bill_type: str) -> tuple[str, str, Mapping, str | None]:
        """(code, sql, mapping, summary_sql) of a configured bill type."""
        q = self.types[bill_type]
        sql, mapping = q.sql or self.sql, q.mapping or self.mapping
        assert sql and mapping  # checked by the validator
        return q.code or bill_type, sql, mapping, q.summary_sql or self.summary_sql


class WriteBackConfig(_Section):
    """Recording a payment (or a refund), idempotent by its id, in one transaction.

    1. ``exists_sql`` (``:payment_id`` / ``:refund_id``): a row means already recorded;
       it is read with ``mapping`` and returned as is.
    2. ``check_sql`` (optional): a row means the HIS refuses (``check_mapping`` gives
       ``error_code``/``error_message``); nothing is written.
    3. ``statements``: INSERTs into an interface table or a procedure call. When the
       last returns rows, they are the result; otherwise ``exists_sql`` runs again.
    ``query_sql`` (default ``exists_sql``) answers "was it recorded?".
    """

    exists_sql: str
    check_sql: str | None = None
    check_mapping: Mapping | None = None
    statements: list[str] = Field(min_length=1)
    query_sql: str | None = None
    mapping: Mapping = Field(default_factory=Mapping)
    channel_codes: dict[str, str] = Field(default_factory=dict)  # gateway channel id → HIS code
    bill_type_codes: dict[str, str] = Field(default_factory=dict)  # core bill type → HIS code

    def check(self, where: str, binds: frozenset[str]) -> None:
        for name in ("exists_sql", "check_sql", "query_sql"):
            _check_binds(f"{where}.{name}", getattr(self, name), binds)
        for i, sql in enumerate(self.statements):
            _check_binds(f"{where}.statements[{i}]", sql, binds)
        _check_fields(f"{where}.mapping", self.mapping, RESULT_FIELDS)
        _check_fields(f"{where}.check_mapping", self.check_mapping, CHECK_FIELDS, ("error_code",))
        if self.check_sql and self.check_mapping is None:
            raise ValueError(f"{where}: check_sql needs check_mapping")


class DbViewConfig(_Section):
    """One business system reached through views of its database."""

    dsn: SecretStr = Field(description="SQLAlchemy async URL: postgresql+asyncpg://, mysql+aiomysql:// or "
                                       "sqlite+aiosqlite://")
    search_path: str | None = Field(None, description="PostgreSQL only: schema(s) holding the views")
    pool_size: int = Field(5, ge=1, le=100)
    statement_timeout_seconds: float = Field(10.0, gt=0, le=600)
    connect_timeout_seconds: float = Field(5.0, gt=0, le=120)
    mysql_timeout_variable: Literal["max_statement_time", "max_execution_time"] = Field(
        "max_statement_time", description="MariaDB: max_statement_time; MySQL: max_execution_time")
    read_only: bool = Field(True, description="reads run in a READ ONLY transaction that is rolled back")
    pending: PendingConfig | None = None
    bills: BillsConfig | None = None
    write_back: WriteBackConfig | None = None
    refund_write_back: WriteBackConfig | None = None

    @field_validator("dsn")
    @classmethod
    def _scheme(cls, v: SecretStr) -> SecretStr:
        scheme = v.get_secret_value().split("://", 1)[0]
        if scheme not in ALLOWED_SCHEMES:
            raise ValueError(f"dsn scheme {scheme!r} is not supported; use one of "
                             f"{', '.join(s + '://' for s in ALLOWED_SCHEMES)}")
        return v

    @field_validator("search_path")
    @classmethod
    def _search_path(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][\w$]*(\s*,\s*[A-Za-z_][\w$]*)*", v):
            raise ValueError("search_path must be a comma-separated list of schema names")
        return v

    @model_validator(mode="after")
    def _sections(self) -> DbViewConfig:
        if self.write_back:
            self.write_back.check("write_back", WRITE_BACK_BINDS)
        if self.refund_write_back:
            self.refund_write_back.check("refund_write_back", REFUND_BINDS)
        if self.search_path and not self.scheme.startswith("postgresql"):
            raise ValueError("search_path applies to PostgreSQL only; name the database in the dsn instead")
        return self

    @property
    def scheme(self) -> str:
        return self.dsn.get_secret_value().split("://", 1)[0]


__all__ = ["DbViewConfig", "PendingConfig", "BillsConfig", "BillTypeQuery", "WriteBackConfig", "bind_names"]
