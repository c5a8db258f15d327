"""The finance console in a real browser (Chromium through Playwright) against a real gateway.

The gateway runs with the WeChat Pay and REST HIS simulators (as in
tests/gateway/test_his_flow.py). Two console users log in with password + TOTP
(enrolling their authenticator on the way), and the scenario goes through the pages
the way finance staff do: the overview's totals and charts, a single-sided case
pinned on the overview, its refund applied for by one user and approved by another,
a day reconciled from the calendar, a report exported to Excel and compared with the
API. Screenshots of the main pages go to ``$YINYI_SCREENSHOTS`` (default
``var/screenshots/``), and each main page's load time (navigation to its data on
screen) is printed.

Skipped only when ``/usr/bin/chromium`` is absent and ``YINYI_REQUIRE_BROWSER`` is
not set (CI sets it and installs Chromium). No browser is ever downloaded.
"""
from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = bool(os.environ.get("YINYI_REQUIRE_BROWSER"))

if not CHROMIUM.exists() and not REQUIRED:
    pytest.skip("no /usr/bin/chromium (set YINYI_REQUIRE_BROWSER=1 to make this a failure)", allow_module_level=True)

if REQUIRED:
    import pyotp
    from playwright.async_api import async_playwright
else:
    pyotp = pytest.importorskip("pyotp")
    async_playwright = pytest.importorskip("playwright.async_api").async_playwright

from gateway.console.service import UserIn  # noqa: E402
from gateway.services.config_admin import CampusIn  # noqa: E402
from gateway.services.his_systems import SystemIn  # noqa: E402
from gateway.testing.pytest_plugin import make_test_settings  # noqa: E402
from gateway.timeutil import local_today  # noqa: E402
from his_adapters.rest.simulator import start_simulator as start_rest_his  # noqa: E402
from tests.conftest import Gateway, free_port, start_gateway, stop_gateway, wait_for  # noqa: E402
from tests.gateway.test_insurance_flow import (identify, igw, nhsa_sim, outpatient_visit,  # noqa: E402,F401
                                               settle_body, sim_call, small_accounts)
from tests.gateway.test_payments import pay_body  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("YINYI_SCREENSHOTS") or ROOT / "var" / "screenshots")
PASSWORD = "Yinyi-console-2026!"
VIEWPORT = {"width": 1440, "height": 900}
LOAD_TIMEOUT_MS = 20_000


def yuan(fen: int) -> str:
    """Fen as the console shows yuan: thousands separators, two decimals."""
    sign = "-" if fen < 0 else ""
    a = abs(fen)
    return f"{sign}{a // 100:,}.{a % 100:02d}"


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
async def his_sim() -> AsyncIterator[Any]:
    handle = await start_rest_his("127.0.0.1", 0)
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def hgw(tmp_path: Path, wechat_sim: Any, his_sim: Any) -> AsyncIterator[Gateway]:
    settings = make_test_settings(tmp_path, port=free_port(), his_worker_interval_seconds=0.1,
                                  his_writeback_retry_waits=[0.1, 0.1], his_writeback_slow_interval_seconds=0.3,
                                  his_writeback_slow_max_seconds=1.0, single_sided_auto_refund_minutes=60)
    g, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    cfg = his_sim.system_configs()[0]
    await g.core.his.put("test", cfg["id"], SystemIn(name=cfg["name"], adapter=cfg["adapter"],
                                                     business_types=cfg["business_types"],
                                                     config={**cfg["config"], "timeout_seconds": 1}))
    try:
        yield g
    finally:
        await stop_gateway(g, runner)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            await b.close()


# --- helpers ---------------------------------------------------------------------------------------------
class Problems:
    """Console errors, CSP violations and uncaught exceptions of every page, reported at the end."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: Any, who: str) -> None:
        def on_console(msg: Any) -> None:
            text = msg.text
            if msg.type == "error" and "401 (Unauthorized)" not in text:  # the first /me before login
                self.items.append(f"{who}: console {text} at {msg.location} on {page.url}")
            elif "Content Security Policy" in text:
                self.items.append(f"{who}: CSP {text} at {msg.location} on {page.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.items.append(f"{who}: page error {exc}"))


async def login(browser: Any, base: str, username: str, problems: Problems, secret: str | None = None
                ) -> tuple[Any, Any, str]:
    """Log in through the login page; enrol the authenticator when the console asks. Returns the
    browser context, the page and the user's TOTP secret."""
    ctx = await browser.new_context(viewport=VIEWPORT, accept_downloads=True, locale="zh-CN",
                                    timezone_id="Asia/Shanghai")
    page = await ctx.new_page()
    problems.watch(page, username)
    await page.goto(f"{base}/console/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector("input[name=code]")
    enrol = await page.query_selector("[data-testid=otpauth-uri]")
    if enrol is not None:
        uri = (await enrol.text_content() or "").strip()
        assert uri.startswith("otpauth://totp/"), uri
        await shot(page, "login-totp-enrolment")
        secret = pyotp.parse_uri(uri).secret
    assert secret, "the console asked for a code but the user has no known secret"
    await page.fill("input[name=code]", pyotp.TOTP(secret).now())
    await page.click("form button[type=submit]")
    await page.wait_for_selector("main[data-ready='1']", timeout=LOAD_TIMEOUT_MS)
    return ctx, page, secret


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def open_page(page: Any, base: str, route: str, *, fresh: bool = False) -> float:
    """Go to ``#/route`` and wait until the page says its data is on screen; the time in ms.
    ``fresh`` loads the console from scratch (HTML, scripts, session check, then the page)."""
    name = route.split("?")[0]
    if fresh:
        await page.goto("about:blank")
    t0 = time.perf_counter()
    await page.goto(f"{base}/console/#/{route}")
    await page.wait_for_selector(f"main[data-page='{name}'][data-ready='1']", timeout=LOAD_TIMEOUT_MS)
    return (time.perf_counter() - t0) * 1000


async def his_fault(his_sim: Any, op: str, kind: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{his_sim.base_url}/_sim/faults", json={"op": op, "kind": kind}) as r:
            assert r.status < 300, await r.text()


def his_pay_body(patient: Any, charges: list[Any], **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"amount": sum(c.amount for c in charges), "business_type": "outpatient",
                              "his": {"system": "his", "patient_id": patient.patient_id,
                                      "patient_name": patient.name, "visit_no": charges[0].visit_no,
                                      "charge_ids": [c.charge_id for c in charges]},
                              "wait_seconds": 20}
    values.update(kw)
    return pay_body(**values)


def pending(his_sim: Any) -> list[tuple[Any, Any]]:
    """Every (patient, pending charge) of the simulated HIS."""
    h = his_sim.hospital
    return [(p, c) for p in h.patients.values() for c in h.pending(p.patient_id)]


async def make_payments(gw: Gateway, his_sim: Any, wechat_sim: Any) -> dict[str, Any]:
    """Payments of the day: written back ones at two entries, a QR one, and one the HIS refuses
    (a single-sided case above the automatic-refund limit, so that it needs an approval)."""
    charges = pending(his_sim)
    limit = gw.settings.single_sided_auto_refund_max
    big = next((pc for pc in charges if limit < pc[1].amount <= 100_000), None)
    assert big is not None, "the simulated HIS has no charge between the auto-refund limit and 1000 yuan"
    small = [pc for pc in charges if pc[1].amount <= limit and pc[0] is not big[0]][:3]
    assert len(small) == 3
    paid: list[dict[str, Any]] = []
    for i, (patient, charge) in enumerate(small):
        status, p = await gw.client.post("/v1/payments", his_pay_body(
            patient, [charge], entry="kiosk-01" if i % 2 else "window-3"))
        assert status == 200 and p["status"] == "SUCCEEDED", p
        paid.append(p)
    # a QR payment the patient pays on the phone (the simulator's control surface plays the patient)
    status, qr = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None,
                                                                entry="clinic-qr", amount=1280))
    assert status == 200 and qr["status"] == "PAYING", qr
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{wechat_sim.base_url}/_sim/orders/{qr['payment_id']}/pay", json={}) as r:
            assert r.status < 300, await r.text()

    async def qr_paid() -> dict[str, Any] | None:
        _, body = await gw.client.get(f"/v1/payments/{qr['payment_id']}")
        return body if body["status"] == "SUCCEEDED" else None

    qr = await wait_for(qr_paid, timeout=15)
    paid.append(qr)
    # the HIS refuses the next write-back: a single-sided case opens
    await his_fault(his_sim, "write_back", "refuse")
    patient, charge = big
    status, p = await gw.client.post("/v1/payments", his_pay_body(patient, [charge], entry="window-3"))
    assert status == 200 and p["status"] == "SUCCEEDED", p
    paid.append(p)

    async def case_of() -> dict[str, Any] | None:
        body = await gw.core.cases.search()
        return next((c for c in body["items"] if c["payment_id"] == p["payment_id"]), None)

    case = await wait_for(case_of, timeout=10)
    async with aiohttp.ClientSession() as s:
        await s.delete(f"{his_sim.base_url}/_sim/faults")
    return {"paid": paid, "case": case, "case_payment": p, "qr": qr}


async def create_users(gw: Gateway) -> None:
    console = gw.core.console
    await console.create_user(UserIn(username="cashier-li", display_name="李收费", roles=["cashier"],
                                     password=PASSWORD, must_change_password=False), by=None)
    await console.create_user(UserIn(username="fin-zhao", display_name="赵主管", roles=["finance_director"],
                                     password=PASSWORD, must_change_password=False), by=None)
    await console.create_user(UserIn(username="admin-wu", display_name="吴管理员", roles=["admin"],
                                     password=PASSWORD, must_change_password=False), by=None)


# --- the scenario ------------------------------------------------------------------------------------------
async def test_finance_console_end_to_end(hgw: Gateway, his_sim: Any, wechat_sim: Any, browser: Any,
                                          tmp_path: Path) -> None:
    base = hgw.base_url
    today = local_today()
    made = await make_payments(hgw, his_sim, wechat_sim)
    await create_users(hgw)
    problems = Problems()
    timings: dict[str, list[float]] = {}

    def timed(user: str, route: str, ms: float) -> None:
        timings.setdefault(f"{user} {route.split('?')[0]}", []).append(ms)

    # -- user A (cashier): log in with TOTP enrolment; the menu follows the permissions ----------------
    ctx_a, page_a, _ = await login(browser, base, "cashier-li", problems)
    routes = await page_a.eval_on_selector_all("[data-testid=menu] a", "els => els.map(e => e.dataset.route)")
    assert {"overview", "transactions", "cases", "approvals"} <= set(routes)
    assert not {"recon", "reports", "config", "system"} & set(routes), routes

    # -- overview: totals equal the payments made, charts drawn, the open case pinned on top -------------
    timed("cashier-li", "overview", await open_page(page_a, base, "overview?period=today", fresh=True))
    paid_total = sum(p["amount"] for p in made["paid"])
    assert await page_a.text_content("[data-stat=count] .value") == str(len(made["paid"]))
    assert await page_a.text_content("[data-stat=paid] .value") == yuan(paid_total)
    assert await page_a.text_content("[data-stat=refunded] .value") == "0.00"
    assert await page_a.text_content("[data-stat=net] .value") == yuan(paid_total)
    assert await page_a.locator("[data-testid=trend] svg[data-chart=trend] path.bar").count() >= 1
    assert await page_a.locator("[data-testid=by-method] svg[data-chart=donut] path.arc").count() == 2  # code, qr
    assert await page_a.locator("[data-testid=by-entry] svg[data-chart=bars] path.bar").count() == 3
    pinned = page_a.locator("[data-testid=open-cases]")
    assert await pinned.is_visible()
    assert yuan(made["case"]["amount"]) in (await pinned.text_content() or "")
    # pinned above the totals
    box_alert = await pinned.bounding_box()
    box_totals = await page_a.locator("[data-testid=totals]").bounding_box()
    assert box_alert and box_totals and box_alert["y"] < box_totals["y"]
    await shot(page_a, "overview-cashier")

    # -- transactions: the table and the detail drawer with history and interface log ---------------------
    timed("cashier-li", "transactions", await open_page(page_a, base, "transactions", fresh=True))
    rows = page_a.locator("[data-testid=payments] tbody tr")
    assert await rows.count() == len(made["paid"])
    pid = made["case_payment"]["payment_id"]
    await page_a.click(f"[data-testid=payments] a:text('{pid}')")
    drawer = page_a.locator("[data-testid=payment-drawer]")
    await drawer.locator(".timeline li").first.wait_for()
    assert await drawer.locator("[data-status=REJECTED]").count() >= 1  # the refused write-back
    await shot(page_a, "transaction-detail")
    await page_a.keyboard.press("Escape")

    # -- 单边账: the case is listed open and coloured; apply for its refund ------------------------------
    timed("cashier-li", "cases", await open_page(page_a, base, "cases", fresh=True))
    case_id = made["case"]["id"]
    row = page_a.locator("[data-testid=cases] tbody tr", has_text=case_id)
    assert "row-bad" in (await row.get_attribute("class") or "")
    await row.locator("a", has_text=case_id).click()
    await page_a.click("[data-testid=case-refund]")
    await page_a.fill("[data-testid=case-refund-dialog] textarea[name=reason]", "HIS拒绝入账，患者要求原路退款")
    await page_a.click("[data-testid=case-refund-dialog] [data-testid=dialog-ok]")
    await page_a.locator("[data-testid=case-drawer] [data-status=APPROVING]").first.wait_for()
    await shot(page_a, "case-refund-applied")
    approvals = await hgw.core.approvals.list(view="all", actor="", roles=["admin"])
    approval = next(a for a in approvals if a["target_id"] == case_id)
    assert approval["status"] == "PENDING" and approval["applicant"].endswith("cashier-li")

    # A cannot approve their own application: it is in 我的申请, with 撤回 offered
    timed("cashier-li", "approvals", await open_page(page_a, base, "approvals?tab=mine", fresh=True))
    mine = page_a.locator("[data-testid=approvals] tbody tr", has_text=approval["id"])
    assert await mine.locator("[data-testid=withdraw]").count() == 1
    assert await page_a.locator("[data-testid=approve]").count() == 0

    # -- user B (finance director) approves it in a second browser context --------------------------------
    ctx_b, page_b, _ = await login(browser, base, "fin-zhao", problems)
    timed("fin-zhao", "approvals", await open_page(page_b, base, "approvals?tab=waiting", fresh=True))
    waiting = page_b.locator("[data-testid=approvals] tbody tr", has_text=approval["id"])
    await shot(page_b, "approvals-waiting")
    await waiting.locator("[data-testid=approve]").click()
    await page_b.fill("[data-testid=decide-dialog] textarea[name=comment]", "同意原路退款")
    await page_b.click("[data-testid=decide-dialog] [data-testid=dialog-ok]")
    await page_b.locator("[data-testid=approvals] tbody tr", has_text=approval["id"]).wait_for(state="detached")

    async def resolved() -> dict[str, Any] | None:
        c = await hgw.core.cases.detail(case_id)
        return c if c["status"] == "RESOLVED" else None

    case = await wait_for(resolved, timeout=15)
    assert case["resolution"] == "refunded", case
    await open_page(page_b, base, "cases?status=resolved")
    done = page_b.locator("[data-testid=cases] tbody tr", has_text=case_id)
    assert await done.locator("[data-status=RESOLVED]").count() == 1
    # the overview no longer pins it, and shows the refund
    timed("fin-zhao", "overview", await open_page(page_b, base, "overview?period=today", fresh=True))
    assert await page_b.locator("[data-testid=open-cases]").count() == 0
    assert await page_b.text_content("[data-stat=refunded] .value") == yuan(made["case"]["amount"])
    assert await page_b.text_content("[data-stat=net] .value") == yuan(paid_total - made["case"]["amount"])
    await shot(page_b, "overview")

    # -- 对账: run today's reconciliation from the calendar ----------------------------------------------
    timed("fin-zhao", "recon", await open_page(page_b, base, "recon", fresh=True))
    cell = page_b.locator(f"[data-testid=calendar] [data-day='{today.isoformat()}']")
    assert await cell.get_attribute("data-state") == "not_run"
    await cell.click()
    await page_b.wait_for_selector("main[data-page=recon][data-ready='1']")
    await page_b.click("[data-testid=run-recon]")
    summary = page_b.locator("[data-testid=run-summary] [data-testid=run]")
    await summary.wait_for(timeout=60_000)
    runs = await hgw.core.recon.runs(today, 5)
    run = next(r for r in runs if r["mode"] == "t1")
    assert await summary.get_attribute("data-run-id") == run["id"]
    platform = run["summary"]["totals"]["platform"]
    totals_row = page_b.locator("[data-testid=run-totals] tbody tr").first
    assert yuan(platform["paid"]) in (await totals_row.text_content() or "")
    state = await page_b.locator(f"[data-testid=calendar] [data-day='{today.isoformat()}']").get_attribute("data-state")
    assert state in ("balanced", "differences", "incomplete"), state
    await shot(page_b, "recon")
    # the QR payment has no HIS record: a long entry (长款). Drill down to its lines, then mark it.
    qr_id = made["qr"]["payment_id"]
    diff_row = page_b.locator("[data-testid=diff-table] tbody tr", has_text=qr_id)
    assert "长款" in (await diff_row.text_content() or "")
    await diff_row.locator("a", has_text=qr_id).click()
    lines = page_b.locator("[data-testid=diff-drawer] [data-testid=diff-lines] tbody tr")
    await lines.first.wait_for()
    assert await lines.count() == 3  # HIS, platform, channel
    assert yuan(made["qr"]["amount"]) in (await lines.nth(2).text_content() or "")
    await shot(page_b, "recon-difference")
    await page_b.keyboard.press("Escape")
    await diff_row.locator("[data-testid=mark]").click()
    await page_b.select_option("[data-testid=mark-dialog] select[name=action]", "cash_refund")
    await page_b.fill("[data-testid=mark-dialog] textarea[name=note]", "窗口现金退款，收据号 0012")
    await page_b.click("[data-testid=mark-dialog] [data-testid=dialog-ok]")
    await diff_row.wait_for(state="detached")
    marked = next(d for d in (await hgw.core.recon.diffs(day=today, cls=None, status=None, channel=None, limit=100,
                                                         offset=0))["items"] if d["txn_id"] == qr_id)
    assert marked["status"] == "RESOLVED" and marked["resolution"] == "cash_refund", marked

    # -- 报表: export Excel through the API and compare a figure -----------------------------------------
    key = "channel_income"
    day = today.isoformat()
    timed("fin-zhao", "reports", await open_page(page_b, base, f"reports?report={key}&begin={day}&end={day}&group=day",
                                                fresh=True))
    rep = (await hgw.core.reports.build(key, today, today, "day")).as_dict()
    async with page_b.expect_download() as dl_info:
        await page_b.click("[data-testid=export-xlsx]")
    download = await dl_info.value
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    xlsx = tmp_path / download.suggested_filename
    await download.save_as(str(xlsx))
    from openpyxl import load_workbook

    ws = load_workbook(xlsx).active
    header = [c.value for c in ws[2]]
    paid_col = header.index("收款金额")
    total_row = [c.value for c in ws[ws.max_row]]
    assert Decimal(str(total_row[paid_col])) * 100 == rep["totals"]["paid"] == paid_total
    ui_total = page_b.locator("[data-testid=report] tr.total")
    assert yuan(rep["totals"]["paid"]) in (await ui_total.text_content() or "")
    await shot(page_b, "reports")
    # 打印: the server's HTML export as a print preview
    await page_b.click("[data-testid=print]")
    preview = page_b.locator("[data-testid=print-view] table")
    await preview.wait_for()
    assert yuan(rep["totals"]["paid"]) in (await preview.locator("tr").last.text_content() or "")
    await shot(page_b, "reports-print-preview")
    await page_b.click("[data-testid=print-view] .print-bar button:last-child")

    # -- the remaining pages load and render; screenshots of each ----------------------------------------
    for route, name in (("transactions", "transactions"), ("cases?status=all", "cases"),
                        ("config", "config-interfaces"), ("config?tab=channels", "config-channels"),
                        ("recon?tab=insurance", "recon-insurance-period")):
        timed("fin-zhao", route, await open_page(page_b, base, route, fresh=True))
        await shot(page_b, name)

    # English switch, kept across reloads
    await page_b.click("header [data-testid=lang]")
    await page_b.wait_for_selector("main[data-ready='1']")
    assert (await page_b.text_content("header .title") or "").strip() == "Reconciliation"
    await page_b.reload()
    await page_b.wait_for_selector("main[data-ready='1']")
    assert (await page_b.text_content("header .title") or "").strip() == "Reconciliation"
    await shot(page_b, "recon-insurance-en")
    await page_b.click("header [data-testid=lang]")

    # the same pages on a CPU four times slower (an old intranet PC), network unchanged
    cdp = await ctx_b.new_cdp_session(page_b)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    for route in ("overview?period=30d", "transactions", "cases", "approvals", "recon", "reports"):
        timed("fin-zhao, CPU ÷4", route, await open_page(page_b, base, route, fresh=True))
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})

    # -- user C (administrator): 系统管理 and 配置 ---------------------------------------------------------
    ctx_c, page_c, _ = await login(browser, base, "admin-wu", problems)
    timed("admin-wu", "system", await open_page(page_c, base, "system?tab=users", fresh=True))
    users = page_c.locator("[data-testid=users] tbody tr")
    assert await users.count() == 3
    assert await page_c.locator("[data-testid=users] tbody tr", has_text="cashier-li").count() == 1
    # a new auditor; the server generates the initial password and the page shows it once
    await page_c.click("[data-testid=add-user]")
    await page_c.fill("[data-testid=user-dialog] input[name=username]", "audit-sun")
    await page_c.fill("[data-testid=user-dialog] input[name=display_name]", "孙审计")
    await page_c.check("[data-testid=user-dialog] input[name='role:auditor']")
    await page_c.click("[data-testid=user-dialog] [data-testid=dialog-ok]")
    generated = page_c.locator("[data-testid=password-shown] code")
    await generated.wait_for()
    assert len((await generated.text_content() or "").strip()) >= 10
    await page_c.click("[data-testid=password-shown] [data-testid=dialog-ok]")
    await page_c.locator("[data-testid=users] tbody tr", has_text="audit-sun").wait_for()
    created = await hgw.core.console.get_user("audit-sun")
    assert created.roles == ["auditor"] and created.must_change_password
    await shot(page_c, "system-users")
    await open_page(page_c, base, "system?tab=roles")
    # the matrix: the cashier may apply for refunds, not decide approvals; give it 导出报表
    assert await page_c.is_checked("[data-role=cashier][data-perm='payments.refund']")
    assert not await page_c.is_checked("[data-role=cashier][data-perm='approvals.decide']")
    await page_c.check("[data-role=cashier][data-perm='reports.export']")
    await page_c.click("[data-testid=save-roles]")

    async def saved() -> bool:
        return "reports.export" in (await hgw.core.console.get_role("cashier")).permissions

    await wait_for(saved, timeout=5)
    await page_c.locator(".toast", has_text="权限已保存").wait_for()
    await shot(page_c, "system-roles")
    timed("admin-wu", "system oplog", await open_page(page_c, base, "system?tab=oplog", fresh=True))
    assert await page_c.locator("[data-testid=oplog] tbody tr").count() >= 3  # logins, refund, approval …
    await page_c.click("[data-testid=verify-chain]")
    await page_c.locator(".tag.ok", has_text="校验通过").wait_for()
    await shot(page_c, "system-oplog")
    await open_page(page_c, base, "system?tab=jobs")
    assert await page_c.locator("[data-testid=jobs] tbody tr").count() >= 1
    assert await page_c.locator("[data-testid=runs] tbody tr", has_text=run["id"]).count() == 1
    await shot(page_c, "system-jobs")
    await open_page(page_c, base, "system?tab=sessions")
    assert await page_c.locator("[data-testid=sessions] tbody tr").count() >= 3  # A, B and C are logged in
    await shot(page_c, "system-sessions")
    # end the cashier's session: the cashier's next click lands on the login page
    await page_c.locator("[data-testid=sessions] tbody tr", has_text="cashier-li").locator("button").click()
    await page_c.click("[data-testid=dialog] [data-testid=dialog-ok]")
    await page_c.locator("[data-testid=sessions] tbody tr", has_text="cashier-li").wait_for(state="detached")
    await page_a.click("[data-testid=menu] a[data-route=transactions]")
    await page_a.wait_for_selector("[data-testid=login] input[name=username]")
    await open_page(page_c, base, "config?tab=plugins")
    await shot(page_c, "config-plugins")
    await ctx_c.close()

    # -- load times -----------------------------------------------------------------------------------------
    print("\nconsole page load times (navigation to data on screen, full load):")
    for label, values in sorted(timings.items()):
        print(f"  {label:<32} {' '.join(f'{v:7.0f} ms' for v in values)}")
    print(f"screenshots in {SHOTS}")
    assert max(v for values in timings.values() for v in values) < LOAD_TIMEOUT_MS

    await ctx_a.close()
    await ctx_b.close()
    assert not problems.items, "\n".join(problems.items)


STATEMENT = ("交易日期,贷方金额,借方金额,对方户名,摘要,流水号\n"
             "2026-11-30,1234.56,,财付通支付科技有限公司,微信结算,B0001\n"
             "2026-12-01,50.50,,支付宝（中国）网络技术有限公司,支付宝结算,B0002\n").encode()


async def test_write_back_exceptions_imports_organisation_and_the_data_dictionary(
        hgw: Gateway, his_sim: Any, browser: Any) -> None:
    """回写HIS异常: a refused write-back found by its trade number, its case opened from the row, its
    refund applied for from the row; a bank statement and a bill file imported from 对账 → 账单导入; a
    merchant edited; a department added under 组织机构; the 数据字典; an export in 导出日志."""
    charges = pending(his_sim)
    limit = hgw.settings.single_sided_auto_refund_max
    patient, charge = next(pc for pc in charges if limit < pc[1].amount <= 100_000)
    await his_fault(his_sim, "write_back", "refuse")
    status, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charge], entry="window-3"))
    assert status == 200 and p["status"] == "SUCCEEDED", p

    async def case_of() -> dict[str, Any] | None:
        return next((c for c in (await hgw.core.cases.search())["items"] if c["payment_id"] == p["payment_id"]), None)

    case = await wait_for(case_of, timeout=10)
    async with aiohttp.ClientSession() as s:
        await s.delete(f"{his_sim.base_url}/_sim/faults")
    await create_users(hgw)
    problems = Problems()
    base = hgw.base_url
    ctx, page, _ = await login(browser, base, "admin-wu", problems)

    # -- 单边账 → 回写HIS异常: search by the business number, open the case from the row --------------
    await open_page(page, base, "cases?view=writebacks", fresh=True)
    await page.fill("[data-testid=filters] input[name=trade_no]", p["out_trade_no"])
    await page.click("[data-testid=filters] button[type=submit]")
    row = page.locator("[data-testid=writebacks] tbody tr", has_text=p["payment_id"])
    await row.wait_for()
    await page.wait_for_selector("main[data-page=cases][data-ready='1']")
    assert await page.locator("[data-testid=writebacks] tbody tr").count() == 1
    assert await row.locator("[data-status=REJECTED]").count() == 1
    assert charge.charge_id in (await row.text_content() or "")
    await row.locator("[data-testid=wb-case]").click()
    drawer = page.locator("[data-testid=case-drawer]")
    await drawer.locator("[data-testid=case-history]").wait_for()
    assert case["id"] in (await drawer.locator("h2").text_content() or "")
    await shot(page, "cases-writebacks")
    await page.keyboard.press("Escape")
    await row.locator("[data-testid=wb-refund]").click()
    await page.click("[data-testid=wb-refund-dialog] [data-testid=dialog-ok]")
    await page.locator("[data-testid=writebacks] tbody tr [data-status=APPROVING]").wait_for()
    assert (await hgw.core.cases.detail(case["id"]))["status"] == "APPROVING"

    # -- 对账 → 账单导入: a bank statement, then the sample HIS bill file --------------------------------
    await open_page(page, base, "recon?tab=import", fresh=True)
    await page.fill("[data-testid=import-bank] input[name=account]", "6222-0001")
    await page.set_input_files("[data-testid=bank-file]", files=[
        {"name": "statement.csv", "mimeType": "text/csv", "buffer": STATEMENT}])
    await page.click("[data-testid=import-bank-submit]")
    days = page.locator("[data-testid=import-bank-result] tbody tr")
    await days.first.wait_for()
    assert await days.count() == 2
    assert "1,234.56" in (await days.first.text_content() or "")
    stored = await hgw.core.recon.fetch_log(None, 50)
    assert any(f["source"] == "bank" and f["source_id"] == "6222-0001" for f in stored), stored
    sample = ROOT / "configs/his/samples/his-bill-sample.csv"
    await page.fill("[data-testid=import-his] input[name=date]", "2024-05-20")
    await page.set_input_files("[data-testid=his-file]", str(sample))
    await page.click("[data-testid=import-his-submit]")
    bills = page.locator("[data-testid=import-his-result] tbody tr")
    await bills.first.wait_for()
    assert await bills.count() >= 1
    await shot(page, "recon-import")

    # -- 配置 → 商户: edit a merchant (credentials stay write-only) ------------------------------------------
    await open_page(page, base, "config?tab=merchants", fresh=True)
    await page.locator("[data-testid=merchants] [data-testid=edit-merchant]").first.click()
    await page.fill("[data-testid=merchant-dialog] input[name=name]", "微信 门诊商户")
    await page.fill("[data-testid=merchant-dialog] input[name=priority]", "7")
    await page.click("[data-testid=merchant-dialog] [data-testid=dialog-ok]")
    await page.locator("[data-testid=merchants] tbody tr", has_text="微信 门诊商户").wait_for()
    merchant = next(m for m in await hgw.core.config.list_merchants() if m["name"] == "微信 门诊商户")
    assert merchant["priority"] == 7

    # -- 系统管理 → 组织机构: a department under the campus ---------------------------------------------
    await hgw.core.config.put_campus("test", "main", CampusIn(name="本院区"))
    await open_page(page, base, "system?tab=org", fresh=True)
    await page.click("[data-testid=add-department]")
    await page.fill("[data-testid=department-dialog] input[name=id]", "fin")
    await page.fill("[data-testid=department-dialog] input[name=name]", "财务科")
    await page.select_option("[data-testid=department-dialog] select[name=campus_id]", "main")
    await page.click("[data-testid=department-dialog] [data-testid=dialog-ok]")
    await page.locator("[data-testid=org-departments] tbody tr", has_text="财务科").wait_for()
    await shot(page, "system-org")

    # -- 数据字典: every table, then one ------------------------------------------------------------------
    await open_page(page, base, "system?tab=dicts", fresh=True)
    classes = page.locator("[data-testid=dict-difference_classes]")
    assert "长款" in (await classes.text_content() or "")
    assert await page.locator("[data-testid=dictionaries] .dicts > .panel").count() >= 10
    await shot(page, "system-dictionaries")
    await page.click("[data-testid=dictionaries] .chip[data-dict=payment_statuses]")
    await page.wait_for_selector("main[data-page=system][data-ready='1']")
    assert await page.locator("[data-testid=dictionaries] .dicts > .panel").count() == 1
    assert "部分退款" in (await page.locator("[data-testid=dict-payment_statuses]").text_content() or "")

    # -- 导出日志: an export made on the reports page is listed ---------------------------------------------
    day = local_today().isoformat()
    await open_page(page, base, f"reports?report=channel_income&begin={day}&end={day}&group=day", fresh=True)
    async with page.expect_download() as dl_info:
        await page.click("[data-testid=export-csv]")
    await dl_info.value
    await open_page(page, base, "system?tab=exports", fresh=True)
    exported = page.locator("[data-testid=exports] tbody tr", has_text="channel_income")
    await exported.wait_for()
    assert "CSV" in (await exported.text_content() or "")
    await shot(page, "system-exports")
    await ctx.close()
    assert not problems.items, "\n".join(problems.items)


async def test_login_refuses_a_wrong_code_and_logout_ends_the_session(hgw: Gateway, browser: Any) -> None:
    await create_users(hgw)
    problems = Problems()
    ctx, page, secret = await login(browser, hgw.base_url, "fin-zhao", problems)
    # the system page (administrators' tabs are hidden for a finance director) and the logout
    routes = await page.eval_on_selector_all("[data-testid=menu] a", "els => els.map(e => e.dataset.route)")
    assert "system" not in routes and "recon" in routes
    await page.click("[data-testid=user]")
    await page.click("[data-testid=logout]")
    await page.wait_for_selector("[data-testid=login] input[name=username]")
    # the session is gone: a direct API call is refused
    status = await page.evaluate("fetch('/console/api/me', {credentials: 'same-origin'}).then(r => r.status)")
    assert status == 401
    # a wrong code is refused with the backend's message, in the page
    await page.fill("input[name=username]", "fin-zhao")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector("input[name=code]")
    assert await page.locator("[data-testid=otpauth-uri]").count() == 0  # enrolled already
    right = pyotp.TOTP(secret).now()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    await page.fill("input[name=code]", wrong)
    await page.click("form button[type=submit]")
    err = page.locator("[data-testid=login-error]")
    await err.filter(has_text="验证码").wait_for()
    # money is formatted from integer fen by string arithmetic, parsed back the same way
    fmt = await page.evaluate("""async () => {
        const f = await import('/console/static/js/fmt.js');
        const fen = [0, 5, -5, 100, -100, 123456, 10000000000, 9007199254740991];
        const text = ['12.3', '0.07', '1,234.56', '1.234', 'abc', '-1', '99999999999.99'];
        return {yuan: fen.map((v) => f.yuan(v)), parsed: text.map((v) => f.parseYuan(v))};
    }""")
    assert fmt["yuan"] == ["0.00", "0.05", "-0.05", "1.00", "-1.00", "1,234.56", "100,000,000.00",
                           "90,071,992,547,409.91"]
    assert fmt["yuan"] == [yuan(v) for v in (0, 5, -5, 100, -100, 123456, 10000000000, 9007199254740991)]
    assert fmt["parsed"] == [1230, 7, 123456, None, None, None, 9999999999999]
    await ctx.close()
    assert not problems.items, "\n".join(problems.items)


async def test_insurance_reconciliation_groups_settlements_and_reversal(igw: Gateway, nhsa_sim: Any,
                                                                        browser: Any) -> None:
    """医保对账 from the page: the 3201 groups, the differing settlements of the group that does not
    balance (3202), and the 冲正 application for the settlement only the centre has."""
    await small_accounts(nhsa_sim)

    async def settle() -> dict[str, Any]:
        person = await identify(igw)
        visit, total = await outpatient_visit(igw, person)
        status, s = await igw.client.post("/v1/insurance/settlements", settle_body(person, visit, total))
        assert status == 200 and s["status"] == "COMPLETED", s
        return s

    first, lost = await settle(), await settle()
    await sim_call(nhsa_sim, "DELETE", f"/settlements/{lost['setl_id']}")  # the centre lost it
    only = (await sim_call(nhsa_sim, "POST", f"/settlements/{first['setl_id']}/copy"))["setl_id"]
    await create_users(igw)
    problems = Problems()
    ctx, page, _ = await login(browser, igw.base_url, "fin-zhao", problems)
    await open_page(page, igw.base_url, "recon?tab=insurance", fresh=True)
    await page.click("[data-testid=run-insurance]")
    groups = page.locator("[data-testid=ins-groups] tbody tr.row-bad")
    await groups.first.wait_for(timeout=60_000)
    settlements = page.locator("[data-testid=ins-diffs] tbody tr")
    await settlements.first.wait_for()
    assert await settlements.count() == 2
    assert "医院有中心无" in (await page.locator("[data-testid=ins-diffs] tbody tr", has_text=lost["setl_id"])
                              .text_content() or "")
    centre_only = page.locator("[data-testid=ins-diffs] tbody tr", has_text=only)
    assert "中心有医院无" in (await centre_only.text_content() or "")
    assert await page.locator("[data-testid=ins-diffs] tbody tr", has_text=lost["setl_id"]).locator(
        "[data-testid=reverse]").count() == 0  # only a centre-only settlement is reversed
    await shot(page, "recon-insurance")
    await centre_only.locator("[data-testid=reverse]").click()
    await page.fill("[data-testid=reverse-dialog] textarea[name=reason]", "中心单边，医院无此结算")
    await page.click("[data-testid=reverse-dialog] [data-testid=dialog-ok]")
    await page.locator("[data-testid=reverse-dialog]").wait_for(state="detached")
    applied = [a for a in await igw.core.approvals.list(view="all", actor="", roles=["admin"])
               if a["kind"] == "ins_centre_reversal"]
    assert len(applied) == 1 and applied[0]["status"] == "PENDING" and applied[0]["applicant"].endswith("fin-zhao")
    await ctx.close()
    assert not problems.items, "\n".join(problems.items)
