"""``yinyi his …``: configure business systems and look at their bills from the terminal."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click


def _run(work: Callable[[Any], Awaitable[Any]]) -> Any:
    from .cli import _core, _settings
    from .errors import YinyiError

    async def go() -> Any:
        core = _core(_settings())
        await core.start(background=False)
        try:
            return await work(core)
        except YinyiError as exc:
            raise click.ClickException(f"{exc.code}: {exc}") from exc
        finally:
            await core.stop()

    return asyncio.run(go())


@click.group()
def his() -> None:
    """Business systems (HIS, exam, nutrition …): configuration and bills."""


@his.command("load")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
def load(files: tuple[Path, ...]) -> None:
    """Create or update business systems from TOML files ([system] and [config] tables)."""
    from his_adapters.config_file import load_system_toml

    from .services.his_systems import SystemIn

    async def work(core: Any) -> list[str]:
        done = []
        for path in files:
            data = load_system_toml(path)
            body = SystemIn(name=data["name"], adapter=data["adapter"], business_types=data["business_types"],
                            config=data["config"], **({"options": data["options"]} if data.get("options") else {}))
            await core.his.put("cli", data["id"], body)
            done.append(f"{data['id']} ({data['adapter']}) from {path}")
        return done

    for line in _run(work):
        click.echo(f"loaded {line}")


@his.command("systems")
@click.option("--json", "as_json", is_flag=True)
def systems(as_json: bool) -> None:
    """List the configured business systems."""
    items = _run(lambda core: core.his.list())
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    for s in items:
        flag = "on " if s["enabled"] else "off"
        click.echo(f"{flag} {s['id']:<16} {s['adapter']:<8} {','.join(s['business_types']) or '-':<30} {s['name']}")


@his.command("bill")
@click.option("--system", "system_id", required=True)
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--type", "bill_type", required=True,
              help="outpatient_registration, outpatient_settlement, inpatient_deposit, inpatient_settlement …")
@click.option("--json", "as_json", is_flag=True)
def bill(system_id: str, day: dt.datetime, bill_type: str, as_json: bool) -> None:
    """Fetch one day's bill of a business system through its adapter."""
    from .money import fen_to_yuan

    async def work(core: Any) -> Any:
        adapter = await core.his.adapter(system_id)
        return await adapter.daily_bill(day.date(), bill_type)

    result = _run(work)
    if as_json:
        click.echo(result.model_dump_json(indent=2, exclude={"lines": {"__all__": {"raw"}}}))
        return
    paid = sum(x.amount for x in result.lines if x.kind == "payment")
    refunded = sum(x.amount for x in result.lines if x.kind == "refund")
    click.echo(f"{system_id} {bill_type} {result.day}: {len(result.lines)} lines, paid {fen_to_yuan(paid)}, "
               f"refunded {fen_to_yuan(refunded)} yuan")
    for x in result.lines:
        click.echo(f"  {x.occurred_at:%Y-%m-%d %H:%M:%S} {x.his_serial:<22} {x.kind:<8} {fen_to_yuan(x.amount):>12} "
                   f"{x.channel or '-':<10} {x.trade_no or '-'}")
