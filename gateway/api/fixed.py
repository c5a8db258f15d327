"""Fixed collection code pages (public, what the printed QR opens) and their admin routes."""
from __future__ import annotations

import datetime as dt
import html

from aiohttp import web

from ..errors import ValidationFailed, YinyiError
from ..money import fen_to_yuan
from ..services.fixed_codes import FixedCodeIn, FixedCodePatch
from .admin import actor
from .handlers import json_response, parse
from .keys import CORE

_NAMES = {"wechatpay": "微信支付", "alipay": "支付宝", "unionpay": "云闪付", "ecny": "数字人民币"}

_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:26em;margin:1.5em auto;
padding:0 1em;color:#222}}h1{{font-size:1.3em}}.item{{color:#666}}input{{font-size:2em;width:100%;box-sizing:border-box;
padding:.3em;border:1px solid #bbb;border-radius:6px}}button{{font-size:1.1em;width:100%;margin-top:.8em;padding:.7em;
border:0;border-radius:6px;color:#fff;background:#1677ff}}button.wechatpay{{background:#07c160}}
.err{{color:#c00;margin:.6em 0}}.note{{color:#888;font-size:.85em;margin-top:1.5em}}.off{{color:#b26a00}}</style>
</head><body><h1>{title}</h1><p class="item">{item}</p>{offline}{error}{body}
<p class="note">银医统一支付平台 · yinyi unified payment</p></body></html>"""


def _page(title: str, item: str, body: str, *, error: str = "", offline: bool = False, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(
        title=html.escape(title), item=html.escape(item), body=body,
        error=f'<p class="err">{html.escape(error)}</p>' if error else "",
        offline='<p class="off">应急收款（离线登记）/ emergency collection</p>' if offline else ""),
        content_type="text/html", charset="utf-8", status=status)


def _form(code_id: str, channels: list[str], ua: str, amount: str = "") -> str:
    preferred = "wechatpay" if "MicroMessenger" in ua else ("alipay" if "AlipayClient" in ua else None)
    if preferred in channels:
        channels = [preferred]
    buttons = "".join(f'<button class="{html.escape(c)}" name="channel" value="{html.escape(c)}">'
                      f'{html.escape(_NAMES.get(c, c))} 支付 / Pay</button>' for c in channels)
    return (f'<form method="post" action="/fixed/{html.escape(code_id)}"><label>金额（元）/ Amount (yuan)'
            f'<input name="amount" inputmode="decimal" autocomplete="off" required value="{html.escape(amount)}">'
            f'</label>{buttons}</form>')


async def fixed_page(request: web.Request) -> web.Response:
    svc = request.app[CORE].fixed_codes
    try:
        f = await svc.get(request.match_info["id"])
    except YinyiError:
        return _page("收款码不存在", "This collection code does not exist", "", status=404)
    if not f.enabled:
        return _page(f.name, "该收款码已停用 / this code is disabled", "", status=410)
    return _page(f.name, f.fee_item or "", _form(f.id, sorted(f.merchants), request.headers.get("User-Agent", "")),
                 offline=f.offline)


async def fixed_pay(request: web.Request) -> web.StreamResponse:
    svc = request.app[CORE].fixed_codes
    form = await request.post()
    amount, channel = str(form.get("amount", "")), str(form.get("channel", ""))
    try:
        f = await svc.get(request.match_info["id"])
        p = await svc.pay(f.id, amount, channel, request.remote or "127.0.0.1")
    except YinyiError as exc:
        try:
            f = await svc.get(request.match_info["id"])
        except YinyiError:
            return _page("收款码不存在", "This collection code does not exist", "", status=404)
        return _page(f.name, f.fee_item or "", _form(f.id, sorted(f.merchants), "", amount),
                     error=f"{exc.message_zh}：{exc.detail or ''} / {exc.message_en}", offline=f.offline, status=400)
    if p.h5_url:
        raise web.HTTPSeeOther(p.h5_url)
    body = (f'<p>请使用{html.escape(_NAMES.get(p.channel, p.channel))}扫码或打开链接支付 ¥{fen_to_yuan(p.amount)}：</p>'
            f'<p><a href="{html.escape(p.code_url or "")}">{html.escape(p.code_url or "")}</a></p>'
            f'<p class="item">平台流水号 / payment: {html.escape(p.id)}</p>')
    return _page(f.name, f.fee_item or "", body, offline=f.offline)


async def list_codes(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].fixed_codes.list()})


async def create_code(request: web.Request) -> web.Response:
    body = await parse(request, FixedCodeIn)
    return json_response(await request.app[CORE].fixed_codes.create(actor(request), body), status=201)


async def patch_code(request: web.Request) -> web.Response:
    body = await parse(request, FixedCodePatch)
    return json_response(await request.app[CORE].fixed_codes.patch(actor(request), request.match_info["id"], body))


async def export_collections(request: web.Request) -> web.Response:
    core = request.app[CORE]
    try:
        day = dt.date.fromisoformat(request.query.get("date", ""))
    except ValueError as exc:
        raise ValidationFailed("date=YYYY-MM-DD is required") from exc
    mode = request.query.get("mode", "offline")
    if mode not in ("offline", "fixed"):
        raise ValidationFailed("mode is offline or fixed")
    rows = await core.fixed_codes.export_offline(day, mode=mode)
    await core.ledger.audit(actor(request), "export.collections", day.isoformat(), {"mode": mode, "rows": len(rows)})
    if request.query.get("format") == "csv":
        resp = web.Response(body=core.fixed_codes.to_csv(rows), content_type="text/csv", charset="utf-8")
        resp.headers["Content-Disposition"] = f'attachment; filename="{mode}-collections-{day.isoformat()}.csv"'
        return resp
    return json_response({"date": day.isoformat(), "mode": mode, "items": rows,
                          "total_fen": sum(r["amount_fen"] for r in rows if r["status"] in
                                           ("SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED"))})


def add_fixed_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/fixed/{id}", fixed_page)
    r.add_post("/fixed/{id}", fixed_pay)
    r.add_get("/v1/admin/fixed-codes", list_codes)
    r.add_post("/v1/admin/fixed-codes", create_code)
    r.add_patch("/v1/admin/fixed-codes/{id}", patch_code)
    r.add_get("/v1/admin/collections", export_collections)
