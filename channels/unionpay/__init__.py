"""UnionPay QuickPass (银联云闪付, ACP 5.1.0) channel: adapter, wire protocol, settlement file, simulator."""
from __future__ import annotations

from .adapter import UnionPayChannel
from .config import UnionPayConfig

__all__ = ["UnionPayChannel", "UnionPayConfig"]
