"""Registers the NHSA insurance adapter and the insurance-centre simulator with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import NhsaAdapter
from .simulator import start_simulator


@hookimpl
def yinyi_register_insurance_adapters(register: Registrar) -> None:
    register.add_insurance_adapter(NhsaAdapter)


@hookimpl
def yinyi_register_simulators(register: Registrar) -> None:
    register.add_insurance_simulator("nhsa", start_simulator)
