"""Hook specifications: every extension point of yinyi, declared once.

Plugins implement these with ``@gateway.hookimpl`` and ship through the entry-point
group ``yinyi`` (bundled adapters use the same group). Registration hooks are
synchronous and hand adapter *classes* to a registry keyed by the adapter's own
string id; the core then calls the adapters' async methods directly. Observer hooks
may be ``async def``: the core awaits every result.

All arguments are keyword arguments, so a spec may grow new ones without breaking
existing implementations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from .registry import Registrar

hookspec = pluggy.HookspecMarker("yinyi")


@hookspec
def yinyi_register_channels(register: Registrar) -> None:
    """Register payment channel adapters (支付渠道).

    Call ``register.add_channel(AdapterClass)`` for each ``ChannelAdapter``
    subclass the plugin provides. The class's ``id`` is its registry key; two
    plugins registering the same id fail start-up, naming both.

    Example::

        @hookimpl
        def yinyi_register_channels(register):
            register.add_channel(MyBankPayChannel)
    """


@hookspec
def yinyi_register_simulators(register: Registrar) -> None:
    """Register simulators of upstream systems, used by the demo and the tests.

    Call ``register.add_simulator(channel_id, factory)`` where ``factory`` is an
    async callable ``factory(host: str, port: int) -> SimulatorHandle`` that starts
    the simulator over real HTTP and returns a handle with ``info`` (a
    ``SimulatorInfo``), ``merchant_configs()`` (adapter configuration for each
    sandbox merchant, pointing at the simulator) and ``async stop()``.

    Business-system simulators register with ``register.add_his_simulator(name,
    factory)``; their handle has ``info`` (a ``SimulatorInfo`` whose ``channel`` is
    the name), ``system_configs()`` (a list of ``{"id", "name", "adapter",
    "business_types", "config"}`` for sandbox business systems pointing at the
    simulator) and ``async stop()``. Insurance-centre simulators register with
    ``register.add_insurance_simulator(name, factory)`` in the same way.
    """


@hookspec
def yinyi_register_his_adapters(register: Registrar) -> None:
    """Register business-system adapters (HIS, exam, nutrition, parking …).

    Call ``register.add_his_adapter(AdapterClass)`` for each ``gateway.his.HisAdapter``
    subclass. The class's ``id`` (e.g. ``"rest"``) is what a configured business
    system names as its ``adapter``; see ``gateway/his.py`` for the contract.
    """


@hookspec
def yinyi_register_insurance_adapters(register: Registrar) -> None:
    """Register medical-insurance platform adapters and regional profiles.

    Call ``register.add_insurance_adapter(AdapterClass)``.
    """


@hookspec
def yinyi_register_bank_adapters(register: Registrar) -> None:
    """Register bank adapters (bank direct connection, e-CNY operating banks, POS bridges).

    Call ``register.add_bank_adapter(AdapterClass)``.
    """


@hookspec
def yinyi_register_notifiers(register: Registrar) -> None:
    """Register notifiers (SMS, WeChat Work, webhook …) that tell people of events.

    Call ``register.add_notifier(NotifierClass)``.
    """


@hookspec
def yinyi_payment_event(event: dict[str, Any]) -> Any:
    """Observe a payment or refund status change after it is committed.

    ``event`` holds ``kind`` ("payment" or "refund"), ``payment_id``,
    ``refund_id`` (refunds), ``from_status``, ``to_status``, ``amount`` (fen),
    ``channel``, ``app_id`` and ``reason``. Implementations may be ``async def``;
    the core awaits them. Exceptions are logged and never undo the change.
    Returns nothing.
    """


@hookspec
def yinyi_register_routes(app: web.Application, router: web.UrlDispatcher) -> None:
    """Add HTTP routes to the gateway application.

    ``app`` is the gateway's ``aiohttp.web.Application`` (its ``gateway.api.keys.CORE``
    key holds the service layer); ``router`` is ``app.router``, on which to call
    ``add_get``/``add_post``. Routes under ``/v1/`` go through caller signature
    authentication; choose a different prefix for unauthenticated routes (for
    example ``/hooks/<plugin>``). Returns nothing.
    """


@hookspec
def yinyi_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``yinyi`` command line.

    ``cli`` is the root ``click.Group``; call ``cli.add_command(my_command)``.
    """
