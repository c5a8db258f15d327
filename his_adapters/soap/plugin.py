"""Registers the SOAP business-system adapter and its simulator with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import SoapHisAdapter
from .simulator import start_simulator


@hookimpl
def yinyi_register_his_adapters(register: Registrar) -> None:
    register.add_his_adapter(SoapHisAdapter)


@hookimpl
def yinyi_register_simulators(register: Registrar) -> None:
    register.add_his_simulator("his-soap", start_simulator)
