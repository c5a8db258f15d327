"""REST/JSON business-system adapter, configured per hospital (see docs/his/rest.md)."""
from __future__ import annotations

from .adapter import RestHisAdapter
from .config import RestHisConfig

__all__ = ["RestHisAdapter", "RestHisConfig"]
