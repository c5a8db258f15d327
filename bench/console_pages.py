"""Console page load times on the demo data.

Starts the demo in-process (gateway, simulators, the demo's day of activity and its
generated reconciliation history) in a temporary data directory, logs in to the finance
console as the demo's administrator with the printed TOTP secret, and times each main
page from navigation to its data on screen (the page sets ``data-ready``), a fresh load
(HTML, scripts, session check, data) and a warm one (menu navigation), best and median of
several. Chromium is the system's (``/usr/bin/chromium``); nothing is downloaded.

    python bench/console_pages.py [--runs 5] [--cpu-slowdown 4]

``--cpu-slowdown`` throttles the page's CPU (an old intranet PC) through the browser's
own emulation.
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ("overview", "transactions", "cases", "approvals", "recon", "reports", "config", "system")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    import pyotp
    from playwright.async_api import async_playwright

    from gateway.demo import run_demo

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpu-slowdown", type=float, default=1.0)
    ap.add_argument("--user", default="admin", help="a demo user who sees every page")
    args = ap.parse_args()

    ready, stop = asyncio.Event(), asyncio.Event()
    data_dir = tempfile.mkdtemp(prefix="yinyi-console-bench-")
    port = free_port()
    t0 = time.perf_counter()
    demo = asyncio.create_task(run_demo("127.0.0.1", port, data_dir, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 120)
    print(f"demo ready in {time.perf_counter() - t0:.1f} s")
    import json

    sandbox = json.loads((Path(data_dir) / "sandbox.json").read_text("utf-8"))
    console = sandbox["console"]
    user = next(u for u in console["users"] if u["username"] == args.user)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, dict[str, list[float]]] = {p: {"fresh": [], "warm": []} for p in PAGES}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
            page = await ctx.new_page()
            if args.cpu_slowdown > 1:
                cdp = await ctx.new_cdp_session(page)
                await cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
            await page.goto(f"{base}/console/")
            await page.fill("input[name=username]", user["username"])
            await page.fill("input[name=password]", console.get("password") or user.get("password"))
            await page.click("form button[type=submit]")
            await page.wait_for_selector("input[name=code]")
            await page.fill("input[name=code]", pyotp.TOTP(user["totp_secret"]).now())
            await page.click("form button[type=submit]")
            await page.wait_for_selector("main[data-ready='1']", timeout=30000)
            for _ in range(args.runs):
                for name in PAGES:
                    await page.goto("about:blank")
                    t = time.perf_counter()
                    await page.goto(f"{base}/console/#/{name}")
                    await page.wait_for_selector(f"main[data-page='{name}'][data-ready='1']", timeout=30000)
                    results[name]["fresh"].append((time.perf_counter() - t) * 1000)
                for name in PAGES:
                    t = time.perf_counter()
                    await page.click(f"[data-testid=menu] a[data-route='{name}']")
                    await page.wait_for_selector(f"main[data-page='{name}'][data-ready='1']", timeout=30000)
                    results[name]["warm"].append((time.perf_counter() - t) * 1000)
            await browser.close()
    finally:
        stop.set()
        await demo
    slow = f", CPU slowed {args.cpu_slowdown:g}x" if args.cpu_slowdown > 1 else ""
    print(f"\nconsole page load on the demo data ({args.runs} runs, user {args.user}{slow}), ms")
    print(f"{'page':<14}{'fresh best':>12}{'fresh median':>14}{'warm best':>12}{'warm median':>13}")
    for name in PAGES:
        f, w = results[name]["fresh"], results[name]["warm"]
        print(f"{name:<14}{min(f):>12.0f}{statistics.median(f):>14.0f}{min(w):>12.0f}{statistics.median(w):>13.0f}")


if __name__ == "__main__":
    asyncio.run(main())
