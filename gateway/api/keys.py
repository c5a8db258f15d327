from __future__ import annotations

from aiohttp import web

from ..core import Core

CORE = web.AppKey("core", Core)
REQUEST_APP = web.RequestKey("caller_app", object)  # the authenticated AppInfo
