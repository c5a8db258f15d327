"""Registers the e-CNY channel and its simulator (the reference bank's) with yinyi.

Bank adapters are not registered here: each bank's plugin registers its own with
``yinyi_register_bank_adapters`` (the reference bank: ``plugins.banks.refbank.plugin``).
"""
from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import EcnyChannel


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> Any:
    """The e-CNY simulator: the reference operating bank's, on ``host:port``."""
    from plugins.banks.refbank.simulator import start_simulator as start_refbank

    return await start_refbank(host, port, merchants=merchants)


@hookimpl
def yinyi_register_channels(register: Registrar) -> None:
    register.add_channel(EcnyChannel)


@hookimpl
def yinyi_register_simulators(register: Registrar) -> None:
    register.add_simulator("ecny", start_simulator)
