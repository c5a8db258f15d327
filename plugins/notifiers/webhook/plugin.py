"""Registers the webhook notifier with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .notifier import WebhookNotifier


@hookimpl
def yinyi_register_notifiers(register: Registrar) -> None:
    register.add_notifier(WebhookNotifier)
