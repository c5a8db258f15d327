from __future__ import annotations

from aiohttp import web

from ..core import Core

CORE = web.AppKey("core", Core)
REQUEST_APP = "yinyi.app"  # request-scoped: the authenticated AppInfo
