"""Synthetic reconciliation days with known differences (shared by the tests and the benchmark).

``generate_day(n, seed)`` builds the three sources of one business day D (HIS bill,
gateway ledger, channel bill) with ``n`` transactions on D, ~8% of them refunds, spread
over the four channels, plus full-size neighbouring days inside the matching window and
the few lines outside it that must not be matched. A few hundred transactions of every
class are injected deliberately; everything else balances. The answer key (``truth``)
names every transaction on D that is not ``matched``.

Generation is vectorised (Polars expressions over a slot index); pseudo-random values
come from seeded hashes of the slot number, the choice of injected slots from a seeded
``random.Random``. The same ``(n, seed, ...)`` gives the same tables with the same
Polars version.
"""
from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, fields
from itertools import accumulate

import polars as pl

CHANNELS = ("wechatpay", "alipay", "unionpay", "ecny")
CHANNEL_SHARE = (45, 35, 15, 5)  # percent
REFUND_PERCENT = 8
DEFAULT_DAY = dt.date(2026, 3, 16)

FAR = "far"  # a day offset just outside the window (window_days + 1)


@dataclass(frozen=True)
class Variant:
    """Where one transaction's lines sit in each source, as day offsets from D (None: absent)."""

    name: str
    cls: str | None  # its class on day D (None: it has no line on D)
    kind: str | None = None  # None: the slot's own kind (payment, or refund for ~8% of slots)
    p: int | str | None = 0
    p_status: str = "SUCCEEDED"
    p_delta: int = 0
    h: int | str | None = 0
    h_status: str = "normal"
    h_txn: bool = True  # whether the HIS line carries the gateway id
    h_delta: int = 0
    c: int | str | None = 0
    c_delta: int = 0
    needs_ref: bool = False  # forces a non-null order_ref
    companion: str | None = None  # a second transaction sharing this one's order_ref


_V = [
    Variant("M", "matched"),
    # amount_mismatch: present everywhere, one side's amount differs
    Variant("A_his", "amount_mismatch", "payment", h_delta=1),
    Variant("A_chan", "amount_mismatch", "refund", c_delta=100),
    Variant("A_plat", "amount_mismatch", "payment", p_delta=7),
    # status_mismatch: the sources disagree on whether money moved
    Variant("S_pfail", "status_mismatch", "payment", p_status="FAILED"),
    Variant("S_punknown", "status_mismatch", "payment", p_status="UNKNOWN", h=None),
    Variant("S_hcancel", "status_mismatch", "payment", h_status="cancelled"),
    Variant("S_ponly", "status_mismatch", "payment", h=None, c=None),
    Variant("S_noplat", "status_mismatch", "payment", p=None),
    Variant("S_noplat_hcancel", "status_mismatch", "refund", p=None, h_status="cancelled"),
    Variant("S_hcancel_nochan", "status_mismatch", "payment", h_status="cancelled", c=None),
    # cross_day: the missing side sits on an adjacent day
    Variant("X_chan_next", "cross_day", "payment", c=1),
    Variant("X_chan_prev", "cross_day", "payment", c=-1),
    Variant("X_ph_prev", "cross_day", "payment", p=-1, h=-1),
    Variant("X_his_next", "cross_day", "payment", h=1),
    Variant("X_refund_next", "cross_day", "refund", c=1),
    Variant("X_his_only", "cross_day", "payment", p=-1, c=-1),
    Variant("X_his_prev", "cross_day", "refund", h=-1),
    # duplicate: a second paid payment for a bill whose other payment reached HIS
    Variant("D_same_day", "duplicate", "payment", h=None, needs_ref=True, companion="C_matched"),
    Variant("D_prev_day", "duplicate", "payment", h=None, needs_ref=True, companion="C_matched_prev"),
    # long: money at the channel, no HIS record
    Variant("L_plat_chan", "long", "payment", h=None),
    Variant("L_chan_only", "long", "payment", p=None, h=None),
    Variant("L_his_far", "long", "payment", h=FAR),
    Variant("L_pair", "long", "payment", h=None, needs_ref=True, companion="C_long"),
    Variant("L_other_failed", "long", "payment", h=None, needs_ref=True, companion="C_short_failed"),
    Variant("L_refund", "long", "refund", h=None),
    # short: HIS record, no money at the channel
    Variant("H_plat", "short", "payment", c=None),
    Variant("H_plat_failed", "short", "payment", p_status="FAILED", c=None),
    Variant("H_his_only", "short", "refund", p=None, c=None),
    Variant("H_orphan", "short", "payment", p=None, c=None, h_txn=False),
    Variant("H_chan_far", "short", "payment", c=FAR),
    # no_money: every source that has it agrees no money moved
    Variant("N_pfail", "no_money", "payment", p_status="FAILED", h=None, c=None),
    Variant("N_closed_cancel", "no_money", "payment", p_status="CLOSED", h_status="cancelled", c=None),
    Variant("N_hcancel", "no_money", "payment", p=None, h_status="cancelled", c=None),
    Variant("N_orphan_cancel", "no_money", "payment", p=None, h_status="cancelled", h_txn=False, c=None),
    # companions (never injected on their own)
    Variant("C_matched", "matched", "payment"),
    Variant("C_matched_prev", None, "payment", p=-1, h=-1, c=-1),
    Variant("C_long", "long", "payment", h=None),
    Variant("C_short_failed", "short", "payment", p_status="FAILED", c=None),
]
VARIANTS = {v.name: v for v in _V}
INJECTED_CLASSES = ("amount_mismatch", "status_mismatch", "cross_day", "duplicate", "long", "short", "no_money")
VARIANTS_BY_CLASS = {c: [v.name for v in _V if v.cls == c and not v.name.startswith("C_")] for c in INJECTED_CLASSES}


@dataclass
class SynthDay:
    """The three sources of one generated day, and what matching them must find."""

    platform: pl.DataFrame
    his: pl.DataFrame
    channel: pl.DataFrame
    day: dt.date
    window_days: int
    truth: dict[tuple[str, str], str]  # (txn_id, or his_serial for HIS lines without one; kind) -> class
    expected: Counter[str]  # rows expected on D per class, matched included
    injected: Counter[str]  # injected transactions per variant name

    @property
    def expected_rows(self) -> int:
        return sum(self.expected.values())


def _z(col: str | pl.Expr, width: int = 12) -> pl.Expr:
    e = pl.col(col) if isinstance(col, str) else col
    return e.cast(pl.String).str.zfill(width)


def _variant_frame(window_days: int) -> pl.DataFrame:
    rows = []
    for v in _V:
        r = {f.name: getattr(v, f.name) for f in fields(v)}
        for side in ("p", "h", "c"):
            off = r[side]
            r[side] = window_days + 1 if off == FAR else off
        rows.append(r)
    schema = {"name": pl.String, "cls": pl.String, "kind": pl.String, "p": pl.Int32, "p_status": pl.String,
              "p_delta": pl.Int64, "h": pl.Int32, "h_status": pl.String, "h_txn": pl.Boolean,
              "h_delta": pl.Int64, "c": pl.Int32, "c_delta": pl.Int64, "needs_ref": pl.Boolean,
              "companion": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _amount(seed: int) -> pl.Expr:
    """A positive integer amount in fen, log-spread from 0.01 to 10,000 yuan."""
    mag = (pl.col("s").hash(seed * 31 + 2) % 5).replace_strict(
        {0: 100, 1: 1_000, 2: 10_000, 3: 100_000, 4: 1_000_000}, return_dtype=pl.Int64)
    return (1 + (pl.col("s").hash(seed * 31 + 1) % mag.cast(pl.UInt64))).cast(pl.Int64)


def _channel(seed: int) -> pl.Expr:
    r = pl.col("s").hash(seed * 31 + 3) % 100
    expr = pl.lit(CHANNELS[-1])
    uppers = list(accumulate(CHANNEL_SHARE))
    for name, upper in reversed(list(zip(CHANNELS[:-1], uppers[:-1]))):
        expr = pl.when(r < upper).then(pl.lit(name)).otherwise(expr)
    return expr


def generate_day(n: int = 1_000_000, seed: int = 1, *, day: dt.date = DEFAULT_DAY, window_days: int = 1,
                 per_class: int | None = None, adjacent_rows: int | None = None) -> SynthDay:
    """Build day ``day`` with ``n`` transactions on it and ``per_class`` injected per class.

    ``per_class`` defaults to min(300, n // 200), raised so that every variant of a class
    is injected at least once. ``adjacent_rows`` (balanced transactions on each day
    D±1..D±window_days) defaults to ``n``: full neighbouring days, as a real window load
    would bring.
    """
    if window_days < 1:
        raise ValueError("the synthetic day needs window_days >= 1 for its cross-day cases")
    if per_class is None:
        per_class = min(300, n // 200)
    per_class = max(per_class, max(len(v) for v in VARIANTS_BY_CLASS.values()))
    if adjacent_rows is None:
        adjacent_rows = n
    rng = random.Random(seed)
    chosen_variants: list[str] = []
    for cls in INJECTED_CLASSES:
        names = VARIANTS_BY_CLASS[cls]
        chosen_variants += [names[i % len(names)] for i in range(per_class)]
    if len(chosen_variants) > n // 2:
        raise ValueError(f"n={n} is too small for {per_class} injected transactions per class")
    slots = rng.sample(range(n), len(chosen_variants))
    assigned = pl.DataFrame({"s": slots, "name": chosen_variants}, schema={"s": pl.Int64, "name": pl.String})
    vf = _variant_frame(window_days)

    # Entities carry numbers only; their strings are built per source after shuffling, which
    # keeps the shuffle a cheap gather of fixed-width columns.
    base = pl.LazyFrame({"s": pl.int_range(0, n, dtype=pl.Int64, eager=True)})
    base = (base.join(assigned.lazy(), on="s", how="left")
            .with_columns(pl.col("name").fill_null("M"))
            .join(vf.lazy(), on="name", how="left"))
    slot_kind = pl.when(pl.col("s").hash(seed * 31 + 4) % 100 < REFUND_PERCENT).then(pl.lit("refund")) \
        .otherwise(pl.lit("payment"))
    kind = pl.coalesce(pl.col("kind"), slot_kind)
    no_ref = (pl.col("s").hash(seed * 31 + 5) % 10 == 0) & ~pl.col("needs_ref")
    primary = base.with_columns(
        kind=kind,
        pre=pl.when(kind == "refund").then(pl.lit("R")).otherwise(pl.lit("P")),
        ref=pl.when(kind == "refund").then(pl.col("s") - 1).when(no_ref).then(pl.lit(None, pl.Int64))
        .otherwise(pl.col("s")),
        amount=_amount(seed),
        channel=_channel(seed),
    )
    cols = ["s", "pre", "kind", "amount", "channel", "ref", "cls",
            "p", "p_status", "p_delta", "h", "h_status", "h_txn", "h_delta", "c", "c_delta"]
    companions = (primary.filter(pl.col("companion").is_not_null())
                  .select("s", "ref", "amount", "channel", name=pl.col("companion"))
                  .join(vf.lazy(), on="name", how="left")
                  .with_columns(kind=pl.lit("payment"), pre=pl.lit("Q")))
    parts = [primary.select(cols), companions.select(cols)]
    start = 2 * n
    for off in [o for w in range(1, window_days + 1) for o in (-w, w)]:
        filler = (pl.LazyFrame({"s": pl.int_range(start, start + adjacent_rows, dtype=pl.Int64, eager=True)})
                  .with_columns(name=pl.lit("M")).join(vf.lazy(), on="name", how="left")
                  .with_columns(kind=slot_kind,
                                p=pl.lit(off, pl.Int32), h=pl.lit(off, pl.Int32), c=pl.lit(off, pl.Int32),
                                cls=pl.lit(None, pl.String), amount=_amount(seed), channel=_channel(seed))
                  .with_columns(pre=pl.when(pl.col("kind") == "refund").then(pl.lit("R")).otherwise(pl.lit("P")),
                                ref=pl.when(pl.col("kind") == "refund").then(pl.lit(None, pl.Int64))
                                .otherwise(pl.col("s"))))
        parts.append(filler.select(cols))
        start += adjacent_rows
    # kept lazy: each source re-derives the (cheap, hash-based) entities, which keeps the
    # generator's peak memory near the size of its output
    ents = pl.concat(parts).with_columns(uid=pl.col("s") * 2 + (pl.col("pre") == "Q").cast(pl.Int64))

    txn_id = pl.col("pre") + _z("s")
    companion = pl.when(pl.col("pre") == "Q").then(pl.lit("Q")).otherwise(pl.lit(""))
    his_serial = pl.lit("H") + companion + _z("s")

    def on(side: str) -> pl.Expr:
        return (pl.lit(day) + pl.duration(days=pl.col(side))).cast(pl.Date)

    def rows_of(side: str, salt: int) -> pl.LazyFrame:
        return (ents.filter(pl.col(side).is_not_null())
                .sort(pl.col("uid").hash(seed * 1009 + salt)))  # bills arrive in no useful order

    platform = rows_of("p", 1).select(
        txn_id=txn_id, kind="kind", amount=pl.col("amount") + pl.col("p_delta"), day=on("p"), channel="channel",
        status="p_status", order_ref=pl.lit("CHG") + _z("ref")).collect()
    his = rows_of("h", 2).select(
        txn_id=pl.when(pl.col("h_txn")).then(txn_id), his_serial=his_serial, kind="kind",
        amount=pl.col("amount") + pl.col("h_delta"), day=on("h"), status="h_status").collect()
    channel = rows_of("c", 3).select(
        txn_id=txn_id, channel_trade_no=pl.lit("T") + companion + _z("s"), kind="kind",
        amount=pl.col("amount") + pl.col("c_delta"), day=on("c"), channel="channel").collect()

    on_day = ents.filter((pl.col("p") == 0) | (pl.col("h") == 0) | (pl.col("c") == 0)).select(
        "s", "pre", "kind", "cls", "p", "h", "c", "h_txn").collect()
    assert on_day["cls"].null_count() == 0, "every transaction with a line on D has an expected class"
    expected = Counter(dict(on_day["cls"].value_counts().iter_rows()))
    diffs = on_day.filter(pl.col("cls") != "matched").select(
        key=pl.when(pl.col("h_txn") | pl.col("p").is_not_null() | pl.col("c").is_not_null())
        .then(txn_id).otherwise(his_serial),
        kind="kind", cls="cls")
    truth = {(k, kind): c for k, kind, c in diffs.iter_rows()}
    assert len(truth) == diffs.height, "injected keys are unique"

    return SynthDay(platform=platform, his=his, channel=channel, day=day, window_days=window_days,
                    truth=truth, expected=expected, injected=Counter(chosen_variants))
