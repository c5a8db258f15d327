"""Reference operating bank (参考运营银行): an e-CNY acquiring API, its adapter and its simulator.

The wire format is documented in ``docs/channels/ecny.md``. The adapter
(``RefBankAcquirer``, ``bank: "refbank"``) is what the e-CNY channel delegates to;
the simulator (``simulator.start_simulator``) serves the same API on loopback.
"""
from __future__ import annotations

from .adapter import RefBankAcquirer
from .config import RefBankConfig

__all__ = ["RefBankAcquirer", "RefBankConfig"]
