"""e-CNY (数字人民币) channel: a payment-code/QR channel whose flows go to an operating bank's adapter."""
from __future__ import annotations

from .adapter import EcnyChannel
from .banks import DIRECTORY, AcquirerDirectory
from .config import EcnyConfig

__all__ = ["DIRECTORY", "AcquirerDirectory", "EcnyChannel", "EcnyConfig"]
