"""Registers the WeChat Pay channel and its simulator with yinyi."""
from __future__ import annotations

from gateway import hookimpl
from gateway.registry import Registrar

from .adapter import WeChatPayChannel
from .simulator import start_simulator


@hookimpl
def yinyi_register_channels(register: Registrar) -> None:
    register.add_channel(WeChatPayChannel)


@hookimpl
def yinyi_register_simulators(register: Registrar) -> None:
    register.add_simulator("wechatpay", start_simulator)
