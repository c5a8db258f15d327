"""WeChat Pay (微信支付) channel: adapter, wire protocol, trade bill and simulator."""
from __future__ import annotations

from .adapter import WeChatPayChannel
from .config import WeChatPayConfig

__all__ = ["WeChatPayChannel", "WeChatPayConfig"]
