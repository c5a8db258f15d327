"""The hospital's business day: China time (UTC+8, no daylight saving)."""
from __future__ import annotations

import datetime as dt

CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a business day in UTC."""
    start = dt.datetime.combine(day, dt.time(), CHINA).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)


def local_today() -> dt.date:
    return dt.datetime.now(CHINA).date()
