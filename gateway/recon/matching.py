"""Vectorised matching of one business day: HIS bill × gateway ledger ("platform") × channel bill.

Inputs and output are Polars DataFrames (LazyFrames are accepted and collected). Each
source may span several days: the target day D and the window days around it
(D ± ``window_days``); lines further away are ignored. Every step is a Polars expression,
join or group-by; nothing loops over rows.

==========  ====================================================================================
source      columns
==========  ====================================================================================
platform    txn_id, kind, amount, day, channel, status ('SUCCEEDED' = money moved), order_ref
his         txn_id (nullable), his_serial, kind, amount, day, status ('normal' | 'cancelled')
channel     txn_id (merchant order / refund number), channel_trade_no, kind, amount, day, channel
==========  ====================================================================================

``kind`` is 'payment' or 'refund' (anything else is refused); ``amount`` is integer fen
(any integer dtype, read as Int64; floats are refused); ``day`` is a Date (a Datetime is
truncated to its date). Extra columns are ignored.

Lines are keyed by (txn_id, kind). HIS and channel lines without a txn_id cannot be
matched: each is a row of its own, whose ``txn_key`` is its his_serial (channel:
channel_trade_no); ``txn_key`` is the txn_id elsewhere. Every ledger line must have a
txn_id. If a source lists the same key more than once on D, its lines are folded into
one: amounts summed, the money-moving status if any line has it.

Result (``MatchResult.rows``), one row per (txn_key, kind) present on D in any source:
txn_key, txn_id, kind, cls, his_amount, platform_amount, channel_amount (Int64, null if
absent on D), in_his, in_platform, in_channel (Boolean: a line on D), other_day (Date,
cross_day only: the nearest other day the missing line was found on), platform_status,
his_status, his_serial, channel_trade_no, channel, order_ref. ``kind`` and ``cls`` are
Enums (``KIND_DTYPE``, ``CLASS_DTYPE``). Row order is unspecified.
``MatchResult.summary`` counts rows per class (every class present, zeros included).

Terms, for one row:

* ``money``    three-way: the channel has a line on D. Two-way (T+0, no channel bill
  yet): the ledger has a SUCCEEDED line on D.
* ``p_ok``     the ledger has a line on D and it is SUCCEEDED. A ledger line with any
  other status (FAILED, CLOSED, UNKNOWN, ...) says no money moved.
* ``h_ok``     HIS has a line on D and it is 'normal'; any other HIS status counts as
  cancelled.
* ``cross``    a source is missing on D, and every missing source has the same
  (txn_id, kind) on another day within D ± window_days.
* ``has_dup``  a payment with money and p_ok, no HIS line on D, a non-null order_ref,
  and another ledger payment with the same order_ref that is SUCCEEDED (any day of the
  window) and has a 'normal' HIS line (any day of the window).

Precedence: the first rule that holds gives the class.

==  ===================  ==========  ================================================================
#   class                label       rule
==  ===================  ==========  ================================================================
1   ``matched``          已平        money and p_ok and h_ok and all amounts equal
2   ``status_mismatch``  状态不符    money, but the ledger line is not SUCCEEDED or HIS cancelled it
3   ``amount_mismatch``  金额不符    money and p_ok and h_ok, amounts not all equal
4   ``cross_day``        跨日伪单边  cross
5   ``duplicate``        重复支付    has_dup
6   ``long``             长款        money and no HIS line (ledger SUCCEEDED or no ledger line)
7   ``short``            短款        h_ok and no money
8   ``status_mismatch``  状态不符    p_ok but neither money nor h_ok; or money and h_ok, no ledger line
9   ``no_money``         无资金往来  otherwise: every source that has the key says no money moved
==  ===================  ==========  ================================================================

Rule 2 comes before cross_day because it is a conflict between lines that are all on D,
whatever the neighbouring days hold; rule 8 is about a missing line, so it yields to
cross_day. duplicate comes before long, cross_day before both. ``no_money`` (e.g. a FAILED
payment nobody else has) is not a difference; ``DIFFERENCE_CLASSES`` lists those that are.

In two-way mode (``match_two_way``) the same code runs without the channel and with money
read from the ledger: rule 2 is then "ledger SUCCEEDED, HIS cancelled", long is ledger
money without HIS, short is HIS without ledger money, and rule 8 cannot apply.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from polars.exceptions import InvalidOperationError

CLASSES: dict[str, tuple[str, str]] = {
    "matched": ("已平", "Matched"),
    "amount_mismatch": ("金额不符", "Amount mismatch"),
    "cross_day": ("跨日伪单边", "Cross-day (pseudo one-sided)"),
    "duplicate": ("重复支付", "Duplicate payment"),
    "long": ("长款", "Long (money without HIS record)"),
    "short": ("短款", "Short (HIS record without money)"),
    "status_mismatch": ("状态不符", "Status mismatch"),
    "no_money": ("无资金往来", "No money moved"),
}
DIFFERENCE_CLASSES = frozenset(CLASSES) - {"matched", "no_money"}
CLASS_DTYPE = pl.Enum(list(CLASSES))
KIND_DTYPE = pl.Enum(["payment", "refund"])

SUCCEEDED = "SUCCEEDED"
HIS_NORMAL = "normal"
KEY = ["txn_id", "kind"]
_HASH_SEED = 0x5EED

PLATFORM_SCHEMA = {"txn_id": pl.String, "kind": KIND_DTYPE, "amount": pl.Int64, "day": pl.Date,
                   "channel": pl.String, "status": pl.String, "order_ref": pl.String}
HIS_SCHEMA = {"txn_id": pl.String, "his_serial": pl.String, "kind": KIND_DTYPE, "amount": pl.Int64,
              "day": pl.Date, "status": pl.String}
CHANNEL_SCHEMA = {"txn_id": pl.String, "channel_trade_no": pl.String, "kind": KIND_DTYPE, "amount": pl.Int64,
                  "day": pl.Date, "channel": pl.String}

OUTPUT_COLUMNS = ["txn_key", "txn_id", "kind", "cls", "his_amount", "platform_amount", "channel_amount",
                  "in_his", "in_platform", "in_channel", "other_day", "platform_status", "his_status",
                  "his_serial", "channel_trade_no", "channel", "order_ref"]

Frame = pl.DataFrame | pl.LazyFrame


@dataclass
class MatchResult:
    """One row per (txn_key, kind) present on ``day`` in any source, and counts per class."""

    day: dt.date
    window_days: int
    mode: str  # "t1": HIS × platform × channel; "t0": HIS × platform
    rows: pl.DataFrame
    summary: dict[str, int]

    @property
    def differences(self) -> pl.DataFrame:
        """The rows that need attention (every class but matched and no_money)."""
        return self.rows.filter(pl.col("cls").is_in(sorted(DIFFERENCE_CLASSES)))


def match_day(platform: Frame, his: Frame, channel: Frame, day: dt.date, window_days: int = 1) -> MatchResult:
    """Three-way match (T+1) of ``day``: HIS bill × gateway ledger × channel bill."""
    return _match(platform, his, channel, day, window_days)


def match_two_way(platform: Frame, his: Frame, day: dt.date, window_days: int = 1) -> MatchResult:
    """Two-way match (T+0) of ``day``: HIS bill × gateway ledger, before channel bills exist."""
    return _match(platform, his, None, day, window_days)


# -- inputs -------------------------------------------------------------------------------------


def _prepare(frame: Frame, schema: dict[str, pl.DataType], name: str) -> pl.DataFrame:
    """The source's columns with the expected dtypes (columns already right are not copied)."""
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
    if not df.schema["amount"].is_integer():
        raise TypeError(f"{name}.amount must be integer fen, got {df.schema['amount']}")
    casts = []
    for col, dtype in schema.items():
        have = df.schema[col]
        if have == dtype:
            continue
        if dtype == pl.Date and isinstance(have, pl.Datetime):
            casts.append(pl.col(col).dt.date())
        else:
            casts.append(pl.col(col).cast(dtype))
    try:
        return (df.with_columns(casts) if casts else df).select(list(schema))
    except InvalidOperationError as exc:
        raise ValueError(f"{name}: {str(exc).splitlines()[0]}") from exc


def _fold_day(df: pl.DataFrame, day: dt.date, money: tuple[str, str] | None, firsts: list[str]) -> pl.DataFrame:
    """The day's lines, one per key: amounts summed, the money-moving status if any line has it.

    Lines without a txn_id are kept as they are.
    """
    on_day = df.lazy().filter(pl.col("day") == day)
    aggs = [pl.col("amount").sum(), pl.col("day").first(), *[pl.col(c).min() for c in firsts]]
    if money is not None:
        col, value = money
        aggs.append(pl.when((pl.col(col) == value).any()).then(pl.lit(value)).otherwise(pl.col(col).min())
                    .alias(col))
    folded = on_day.filter(pl.col("txn_id").is_not_null()).group_by(KEY).agg(aggs)
    loose = on_day.filter(pl.col("txn_id").is_null())
    return pl.concat([folded.select(df.columns), loose.select(df.columns)]).collect()


# -- step 1: the day's lines side by side ------------------------------------------------------


def _day_rows(plat: pl.DataFrame, his: pl.DataFrame, chan: pl.DataFrame | None, day: dt.date) -> pl.DataFrame:
    """The day's lines of every source outer-joined on (txn_id, kind), plus the lines without an id."""
    on_day = pl.col("day") == day

    def side(df: pl.DataFrame, cols: dict[str, str], flag: str, keyed: bool = True) -> pl.LazyFrame:
        has_id = pl.col("txn_id").is_not_null()
        return df.lazy().filter(on_day & (has_id if keyed else ~has_id)).select(
            *KEY, *[pl.col(c).alias(alias) for c, alias in cols.items()], pl.lit(True).alias(flag))

    his_cols = {"amount": "his_amount", "status": "his_status", "his_serial": "his_serial"}
    chan_cols = {"amount": "channel_amount", "channel_trade_no": "channel_trade_no", "channel": "_c_channel"}
    joined = (side(plat, {"amount": "platform_amount", "status": "platform_status", "channel": "_p_channel",
                          "order_ref": "order_ref"}, "in_platform")
              .join(side(his, his_cols, "in_his"), on=KEY, how="full", coalesce=True))
    # HIS and channel lines without a gateway id match nothing: each is a row of its own.
    loose = [side(his, his_cols, "in_his", keyed=False)]
    if chan is not None:
        joined = joined.join(side(chan, chan_cols, "in_channel"), on=KEY, how="full", coalesce=True)
        loose.append(side(chan, chan_cols, "in_channel", keyed=False))
    rows = pl.concat([joined, *loose], how="diagonal_relaxed")
    if chan is None:
        rows = rows.with_columns(channel_amount=pl.lit(None, pl.Int64), channel_trade_no=pl.lit(None, pl.String),
                                 _c_channel=pl.lit(None, pl.String), in_channel=pl.lit(None, pl.Boolean))
    return rows.with_columns(
        *[pl.col(f).fill_null(False) for f in ("in_platform", "in_his", "in_channel")],
        txn_key=pl.coalesce("txn_id", "his_serial", "channel_trade_no"),
        channel=pl.coalesce("_c_channel", "_p_channel"),
    ).collect()


def _keys_repeat(rows: pl.DataFrame) -> bool:
    """Whether a (txn_id, kind) occurs twice: distinct 64-bit hashes prove it does not."""
    keyed = pl.col("txn_id").is_not_null()
    hashed = (pl.col("txn_id").hash(_HASH_SEED) + pl.col("kind").to_physical().cast(pl.UInt64)).filter(keyed)
    if rows.select(hashed.n_unique() == keyed.sum()).item():
        return False
    return bool(rows.select((pl.struct(KEY).is_duplicated() & keyed).any()).item())


# -- steps 2 and 3: classes --------------------------------------------------------------------


def _nearest_day(source: pl.LazyFrame, wanted: pl.DataFrame, day: dt.date, name: str) -> pl.LazyFrame:
    """For each wanted key, the day nearest to ``day`` (earlier on ties) the source has it on."""
    dist = (pl.col("day") - pl.lit(day)).dt.total_days().abs()
    return (source.filter((pl.col("day") != day) & pl.col("txn_id").is_in(wanted["txn_id"].implode()))
            .select(*KEY, "day")
            .join(wanted.lazy(), on=KEY, how="semi")
            .group_by(KEY).agg(pl.col("day").sort_by([dist, pl.col("day")]).first().alias(name)))


def _classify(money: pl.Expr, p_ok: pl.Expr, h_ok: pl.Expr, amounts_equal: pl.Expr, cross: pl.Expr,
              has_dup: pl.Expr) -> pl.Expr:
    """The precedence table of the module docstring, as one expression."""
    in_p, in_h = pl.col("in_platform"), pl.col("in_his")

    def c(name: str) -> pl.Expr:
        return pl.lit(name, CLASS_DTYPE)

    return (pl.when(money & p_ok & h_ok & amounts_equal).then(c("matched"))
            .when(money & ((in_p & ~p_ok) | (in_h & ~h_ok))).then(c("status_mismatch"))
            .when(money & p_ok & h_ok).then(c("amount_mismatch"))
            .when(cross).then(c("cross_day"))
            .when(has_dup).then(c("duplicate"))
            .when(money & ~in_h).then(c("long"))
            .when(h_ok & ~money).then(c("short"))
            .when(money | p_ok).then(c("status_mismatch"))
            .otherwise(c("no_money")))


def _match(platform: Frame, his: Frame, channel: Frame | None, day: dt.date, window_days: int) -> MatchResult:
    if window_days < 0:
        raise ValueError("window_days must be >= 0")
    three_way = channel is not None
    plat_df = _prepare(platform, PLATFORM_SCHEMA, "platform")
    if plat_df["txn_id"].null_count():
        raise ValueError("platform: every ledger line needs its txn_id")
    his_df = _prepare(his, HIS_SCHEMA, "his")
    chan_df = _prepare(channel, CHANNEL_SCHEMA, "channel") if channel is not None else None

    # -- 1. the day: one row per key, all sources side by side ---------------------------------
    rows = _day_rows(plat_df, his_df, chan_df, day)
    if _keys_repeat(rows):  # a source lists a key more than once on the day: fold its lines, redo
        rows = _day_rows(_fold_day(plat_df, day, ("status", SUCCEEDED), ["channel", "order_ref"]),
                         _fold_day(his_df, day, ("status", HIS_NORMAL), ["his_serial"]),
                         _fold_day(chan_df, day, None, ["channel_trade_no", "channel"])
                         if chan_df is not None else None, day)

    in_p, in_h, in_c = pl.col("in_platform"), pl.col("in_his"), pl.col("in_channel")
    p_ok = in_p & (pl.col("platform_status") == SUCCEEDED)
    h_ok = in_h & (pl.col("his_status") == HIS_NORMAL)
    money = in_c if three_way else p_ok
    complete = (in_p & in_h & in_c) if three_way else (in_p & in_h)
    amounts_equal = pl.col("his_amount") == pl.col("platform_amount")
    if three_way:
        amounts_equal = amounts_equal & (pl.col("platform_amount") == pl.col("channel_amount"))

    # -- 2. every row by the rules that need nothing beyond the day ---------------------------
    rows = rows.with_columns(cls=_classify(money, p_ok, h_ok, amounts_equal, pl.lit(False), pl.lit(False)),
                             other_day=pl.lit(None, pl.Date))

    # -- 3. the few incomplete rows: their missing sides on the window's other days, and
    #       duplicate payments (same order_ref as another paid payment that reached HIS) -------
    partial = rows.with_row_index("_i").filter(~complete & pl.col("txn_id").is_not_null())
    if partial.height:
        lo, hi = day - dt.timedelta(days=window_days), day + dt.timedelta(days=window_days)
        in_window = pl.col("day").is_between(lo, hi)
        plat = plat_df.lazy().filter(in_window)
        hisl = his_df.lazy().filter(in_window & pl.col("txn_id").is_not_null())
        sides = [("platform", plat, in_p), ("his", hisl, in_h)]
        if chan_df is not None:
            sides.append(("channel", chan_df.lazy().filter(in_window), in_c))
        lookups = [_nearest_day(src, partial.filter(~flag).select(KEY), day, f"_{name}_other")
                   for name, src, flag in sides]
        # Each scan of a whole source is one filtering pass against a small set of wanted values.
        cand = partial.filter((pl.col("kind") == "payment") & money & p_ok & ~in_h
                              & pl.col("order_ref").is_not_null()).select("txn_id", "order_ref")
        others = (plat.filter((pl.col("kind") == "payment") & (pl.col("status") == SUCCEEDED)
                              & pl.col("order_ref").is_in(cand["order_ref"].implode()))
                  .select("order_ref", other="txn_id").collect())
        reached_his = hisl.filter((pl.col("kind") == "payment") & (pl.col("status") == HIS_NORMAL)
                                  & pl.col("txn_id").is_in(others["other"].implode())).select(other="txn_id")
        dups = (cand.lazy().join(others.lazy().join(reached_his, on="other", how="semi"), on="order_ref")
                .filter(pl.col("other") != pl.col("txn_id"))
                .select("txn_id", kind=pl.lit("payment", KIND_DTYPE), _has_dup=pl.lit(True)).unique())
        part = partial.lazy()
        for lookup in [*lookups, dups]:
            part = part.join(lookup, on=KEY, how="left")

        other_cols = [f"_{name}_other" for name, _, _ in sides]
        cross = pl.all_horizontal([flag | pl.col(c).is_not_null() for (_, _, flag), c in zip(sides, other_cols)])
        dist = [(pl.col(c) - pl.lit(day)).dt.total_days().abs() for c in other_cols]
        best = pl.min_horizontal(dist)
        nearest = pl.min_horizontal([pl.when(d == best).then(pl.col(c)) for d, c in zip(dist, other_cols)])
        got = part.select(
            "_i", cls=_classify(money, p_ok, h_ok, amounts_equal, cross, pl.col("_has_dup").fill_null(False)),
            other_day=pl.when(cross).then(nearest)).collect()
        rows = rows.with_columns(rows["cls"].clone().scatter(got["_i"], got["cls"]),
                                 rows["other_day"].clone().scatter(got["_i"], got["other_day"]))

    rows = rows.select(OUTPUT_COLUMNS)
    counts = dict(rows.group_by("cls").len().iter_rows())
    summary = {c: int(counts.get(c, 0)) for c in CLASSES}
    return MatchResult(day=day, window_days=window_days, mode="t1" if three_way else "t0", rows=rows,
                       summary=summary)
