"""The baseline: a bare aiohttp handler making the same upstream call as the gateway,
through the same adapter, with no authentication, ledger, log or resolver.

It runs on the same event loop as the gateway (uvloop where installed) and, when the
gateway runs several workers, as as many processes sharing the port (SO_REUSEPORT),
so that the comparison is of the work done, not of how it is served.

    python bench/_baseline_server.py CHANNEL PORT CONFIG_JSON [--reuse-port]
"""
from __future__ import annotations

import json
import sys

import aiohttp
import orjson
from aiohttp import web

from gateway.channel import Method, PayRequest
from gateway.cli import loop_factory
from gateway.plugins import build_plugin_manager, build_registry


def main(channel: str, port: int, config_path: str, reuse_port: bool) -> None:
    cls = build_registry(build_plugin_manager()[0]).channels[channel]
    with open(config_path, encoding="utf-8") as fh:
        config = cls.config_model.model_validate(json.load(fh))
    state: dict[str, object] = {}

    async def ctx(app: web.Application):  # type: ignore[no-untyped-def]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        state["adapter"] = cls(config, session)
        yield
        await session.close()

    async def pay(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        result = await state["adapter"].pay(PayRequest(  # type: ignore[attr-defined]
            out_trade_no=body["out_trade_no"], amount=body["amount"], subject=body["subject"], method=Method.CODE,
            auth_code=body["auth_code"], notify_url="http://127.0.0.1:1/notify"))
        return web.Response(body=orjson.dumps(result.model_dump(mode="json", exclude={"raw"})),
                            content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(ctx)
    app.router.add_post("/pay", pay)
    factory = loop_factory("auto")
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, reuse_port=reuse_port or None,
                loop=factory() if factory else None)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], "--reuse-port" in sys.argv[4:])
