"""Registers the database-view HIS adapter with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import DbViewHisAdapter


@hookimpl
def yinyi_register_his_adapters(register: Registrar) -> None:
    register.add_his_adapter(DbViewHisAdapter)
