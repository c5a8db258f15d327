"""The service layer's root: one ``Core`` per process, used by the API, the CLI and tests."""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import aiohttp
import pluggy

from .config import Settings
from .console.service import ConsoleService
from .db.engine import make_engine, make_read_engine, make_relaxed_engine, migrate, sessionmaker_for
from .db.writer import Writer
from .metrics import PAYMENT_TRANSITIONS
from .nonces import MemoryNonceStore, NonceStore, RedisNonceStore
from .plugins import PluginInfo, build_plugin_manager, build_registry
from .recon.reports import Reports
from .recon.scheduler import ReconScheduler
from .recon.service import ReconService
from .registry import Registry
from .services.approvals import ApprovalService
from .services.callbacks import CallbackDispatcher
from .services.cases import CaseService
from .services.his_systems import HisSystems
from .services.notices import NoticeService
from .services.writeback import WritebackService
from .services.config_admin import ConfigAdmin
from .services.fixed_codes import FixedCodeService
from .services.directory import Directory
from .services.insurance_centres import InsuranceCentres
from .services.insurance_settlements import InsuranceSettlements
from .services.insurance_fees import InsuranceFees
from .services.insurance_visits import InsuranceVisits
from .services.interface_log import InterfaceLogWriter
from .services.ledger import Ledger
from .services.payments import PaymentService
from .services.refund_requests import RefundRequests
from .services.refunds import RefundService
from .services.resolver import Resolver
from .services.reviews import ReviewService
from .vault import Vault

log = logging.getLogger("yinyi.core")


async def await_me_maybe(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Core:
    """Holds the engine, registry, services and background tasks of one gateway process."""

    def __init__(self, settings: Settings, *, extra_plugins: list[tuple[str, Any]] | None = None) -> None:
        self.settings = settings
        self.pm: pluggy.PluginManager
        self.plugins: list[PluginInfo]
        self.pm, self.plugins = build_plugin_manager(settings.disabled_plugins, settings.trace_hooks, extra_plugins)
        self.registry: Registry = build_registry(self.pm, settings.disabled_channels)
        self.vault = Vault(settings.fernet_key())
        self.engine = make_engine(settings.effective_database_url, settings.db_pool_size)
        self.read_engine = make_read_engine(settings.effective_database_url, self.engine, settings.db_pool_size)
        self.sm = sessionmaker_for(self.engine)
        self.rsm = sessionmaker_for(self.read_engine)
        self.relaxed_engine = make_relaxed_engine(settings.effective_database_url, max(2, settings.db_pool_size // 2))
        self.writer = Writer(settings.effective_database_url, self.engine, self.relaxed_engine)
        self.ledger = Ledger(self.writer, self.rsm, on_event=self._on_event)
        self.ilog = InterfaceLogWriter(self.writer, self.rsm, log_bodies=settings.log_bodies)
        self.http: aiohttp.ClientSession | None = None
        self.nonces: NonceStore = MemoryNonceStore()
        self.payments = PaymentService(self)
        self.refunds = RefundService(self)
        self.resolver = Resolver(self)
        self.reviews = ReviewService(self)
        self.callbacks = CallbackDispatcher(self)
        self.config = ConfigAdmin(self)
        self.fixed_codes = FixedCodeService(self)
        self.his = HisSystems(self)
        self.notices = NoticeService(self)
        self.approvals = ApprovalService(self)
        self.writebacks = WritebackService(self)
        self.cases = CaseService(self)
        self.refund_requests = RefundRequests(self)
        self.console = ConsoleService(self)
        self.insurance_centres = InsuranceCentres(self)
        self.insurance_visits = InsuranceVisits(self)
        self.insurance_fees = InsuranceFees(self)
        self.insurance_settlements = InsuranceSettlements(self)
        self.recon = ReconService(self)
        self.reports = Reports(self)
        self.recon_scheduler = ReconScheduler(self)
        self._directory: Directory | None = None
        self._started = False

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            raise RuntimeError("Core.start() has not run")
        return self._directory

    async def migrate(self) -> None:
        await asyncio.to_thread(migrate, self.settings.effective_database_url)

    async def start(self, *, background: bool = True, run_migrations: bool = True,
                    recon_scheduler: bool = True) -> None:
        """``recon_scheduler=False`` leaves the scheduled reconciliation to be started later
        (``core.recon_scheduler.start()``), e.g. once the demo's sandbox is complete."""
        if run_migrations:
            await self.migrate()
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.upstream_timeout_seconds),
                                          connector=aiohttp.TCPConnector(limit=200))
        self._directory = Directory(self.sm, self.vault, self.registry, self.http, read_sm=self.rsm,
                                    notify_base=f"{self.settings.effective_public_base_url}/v1/notify")
        await self.console.start()
        if self.settings.redis_url:
            store = RedisNonceStore(self.settings.redis_url)
            await store.ping()
            self.nonces = store
        self.ilog.start()
        if background and self.settings.resolver_enabled:
            self.resolver.start()
            self.callbacks.start()
            self.writebacks.start()
            self.cases.start()
            self.notices.start()
            self.insurance_settlements.start()
            if self.settings.recon_scheduler_enabled and recon_scheduler:
                self.recon_scheduler.start()
        self._started = True

    async def stop(self) -> None:
        await self.resolver.stop()
        await self.callbacks.stop()
        await self.writebacks.stop()
        await self.cases.stop()
        await self.notices.stop()
        await self.insurance_settlements.stop()
        await self.recon_scheduler.stop()
        await self.insurance_centres.aclose()
        await self.his.aclose()
        await self.ilog.stop()
        await self.nonces.close()
        if self.http is not None:
            await self.http.close()
        await self.writer.close()
        await self.engine.dispose()
        if self.relaxed_engine is not None:
            await self.relaxed_engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        self._started = False

    async def _on_event(self, event: dict[str, Any]) -> None:
        PAYMENT_TRANSITIONS.labels(kind=event["kind"], to_status=event["to_status"]).inc()
        # Each observer is called on its own, so one that raises (sync or async)
        # neither stops the others nor undoes the committed change.
        for impl in self.pm.hook.yinyi_payment_event.get_hookimpls():
            try:
                await await_me_maybe(impl.function(event=event))
            except Exception:
                log.exception("yinyi_payment_event observer of plugin %s failed", impl.plugin_name)
