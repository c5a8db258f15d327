"""Run the WeChat Pay simulator in its own process for the benchmark; prints its merchant config."""
from __future__ import annotations

import asyncio
import json
import sys

from channels.wechatpay.simulator import start_simulator


async def main(port: int) -> None:
    handle = await start_simulator("127.0.0.1", port, merchants=1)
    print(json.dumps({"base_url": handle.base_url, "merchants": handle.merchant_configs()}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
