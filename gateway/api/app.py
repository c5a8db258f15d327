"""The aiohttp application factory."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..config import Settings
from ..core import Core
from .admin import add_admin_routes
from .console import add_console_routes, console_middleware
from .fixed import add_fixed_routes
from .handlers import add_routes
from .his import add_his_routes
from .recon import add_recon_routes
from .insurance import add_insurance_routes
from .keys import CORE
from .middleware import access_middleware


def create_app(settings: Settings | None = None, *, core: Core | None = None, background: bool = True,
               extra_plugins: list[tuple[str, Any]] | None = None) -> web.Application:
    """Build the gateway. The Core starts and stops with the app (cleanup_ctx)."""
    core = core or Core(settings or Settings(), extra_plugins=extra_plugins)
    app = web.Application(middlewares=[access_middleware, console_middleware], client_max_size=2 * 1024 * 1024)
    app[CORE] = core

    async def _core_ctx(app: web.Application) -> AsyncIterator[None]:
        if not core._started:  # noqa: SLF001 - a test may hand in a started core
            await core.start(background=background)
        yield
        await core.stop()

    app.cleanup_ctx.append(_core_ctx)
    add_routes(app)
    add_admin_routes(app)
    add_fixed_routes(app)
    add_his_routes(app)
    add_insurance_routes(app)
    add_recon_routes(app)
    core.pm.hook.yinyi_register_routes(app=app, router=app.router)
    add_console_routes(app)  # last: it aliases every /v1/admin route, plugins' included
    return app
