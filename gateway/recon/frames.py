"""Stored bill lines (``recon_lines`` rows as dicts) into the matcher's frames, and back."""
from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from .matching import CHANNEL_SCHEMA, DIFFERENCE_CLASSES, HIS_SCHEMA, PLATFORM_SCHEMA, match_day, match_two_way


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame({k: [r.get(k) for r in rows] for k in schema}, schema=schema)


def classify(lines: dict[str, list[dict[str, Any]]], *, day: dt.date, window_days: int,
             two_way: bool) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Match the day; the differences as dicts and the counts per class."""
    platform = _frame(lines.get("platform", []), PLATFORM_SCHEMA)
    his = _frame(lines.get("his", []), HIS_SCHEMA)
    if two_way:
        result = match_two_way(platform, his, day, window_days)
    else:
        result = match_day(platform, his, _frame(lines.get("channel", []), CHANNEL_SCHEMA), day, window_days)
    diffs = result.rows.filter(pl.col("cls").is_in(sorted(DIFFERENCE_CLASSES)))
    rows = diffs.with_columns(pl.col("cls").cast(pl.String)).to_dicts()
    return rows, {k: v for k, v in result.summary.items() if v}
