"""Alipay (支付宝) channel: adapter, wire protocol, detail bill and simulator."""
from __future__ import annotations

from .adapter import AlipayChannel
from .config import AlipayConfig

__all__ = ["AlipayChannel", "AlipayConfig"]
