"""The baseline: a bare aiohttp handler making the same upstream call as the gateway,
through the same adapter, with no authentication, ledger, log or resolver."""
from __future__ import annotations

import json
import sys

import aiohttp
import orjson
from aiohttp import web

from gateway.channel import Method, PayRequest
from gateway.plugins import build_plugin_manager, build_registry


def main(channel: str, port: int, config_path: str) -> None:
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
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
