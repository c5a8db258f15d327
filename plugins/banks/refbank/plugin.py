"""Registers the reference bank's e-CNY acquiring adapter with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import RefBankAcquirer


@hookimpl
def yinyi_register_bank_adapters(register: Registrar) -> None:
    register.add_bank_adapter(RefBankAcquirer)
