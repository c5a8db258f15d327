"""Registers the Alipay channel and its simulator with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import AlipayChannel
from .simulator import start_simulator


@hookimpl
def yinyi_register_channels(register: Registrar) -> None:
    register.add_channel(AlipayChannel)


@hookimpl
def yinyi_register_simulators(register: Registrar) -> None:
    register.add_simulator("alipay", start_simulator)
