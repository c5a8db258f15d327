"""Registers the REST/JSON business-system adapter and its HIS simulator with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import RestHisAdapter
from .simulator import SIMULATOR_NAME, RestHisSimHandle, start_simulator


async def start_rest_his_simulator(host: str, port: int) -> RestHisSimHandle:
    return await start_simulator(host, port)


@hookimpl
def yinyi_register_his_adapters(register: Registrar) -> None:
    register.add_his_adapter(RestHisAdapter)


@hookimpl
def yinyi_register_simulators(register: Registrar) -> None:
    register.add_his_simulator(SIMULATOR_NAME, start_rest_his_simulator)
