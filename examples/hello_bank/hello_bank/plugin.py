"""Registers Hello Bank Pay and its simulator with yinyi (entry point ``hello_bank``)."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import HelloBankChannel
from .simulator import start_simulator


@hookimpl
def yinyi_register_channels(register: Registrar) -> None:
    register.add_channel(HelloBankChannel)


@hookimpl
def yinyi_register_simulators(register: Registrar) -> None:
    register.add_simulator(HelloBankChannel.id, start_simulator)
