"""Run one channel's simulator in its own process for the benchmark; prints its merchant config."""
from __future__ import annotations

import asyncio
import json
import sys

from gateway.plugins import build_plugin_manager, build_registry


async def main(channel: str, port: int) -> None:
    factory = build_registry(build_plugin_manager()[0]).simulators[channel]
    handle = await factory("127.0.0.1", port)
    print(json.dumps({"base_url": handle.base_url, "merchants": handle.merchant_configs()}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
