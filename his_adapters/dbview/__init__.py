"""Database-view HIS adapter: pending charges, daily bills and write-back through SQL in configuration."""
from __future__ import annotations

from .adapter import DbViewHisAdapter
from .config import DbViewConfig

__all__ = ["DbViewConfig", "DbViewHisAdapter"]
