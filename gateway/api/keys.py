from __future__ import annotations

from aiohttp import web

from ..console.identity import Identity
from ..core import Core

CORE = web.AppKey("core", Core)
REQUEST_APP = web.RequestKey("caller_app", object)  # the authenticated AppInfo
CONSOLE_USER = web.RequestKey("console_user", Identity)  # the console user behind a /console/api request
