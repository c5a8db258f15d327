"""``yinyi console …``: users of the finance console (财务管理后台) from the terminal."""
from __future__ import annotations

import json
from typing import Any

import click

from .cli_his import _run


@click.group()
def console() -> None:
    """The finance console (财务管理后台): users."""


@console.group()
def user() -> None:
    """Console users: add, list, reset TOTP, unlock."""


@user.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True,
              help="Role id (admin, finance_director, finance, cashier, auditor or your own); repeatable")
@click.option("--password", default=None,
              help="Initial password (checked against the policy); generated and printed when omitted")
@click.option("--display-name", default=None, help="Name shown in the console (default: NAME)")
@click.option("--campus", default=None, help="Campus id (院区)")
@click.option("--department", default=None, help="Department (科室)")
@click.option("--json", "as_json", is_flag=True)
def add(name: str, roles: tuple[str, ...], password: str | None, display_name: str | None, campus: str | None,
        department: str | None, as_json: bool) -> None:
    """Create a user and print the TOTP otpauth URI (shown once: add it to an authenticator app)."""
    from .console.service import UserIn

    try:
        body = UserIn(username=name, display_name=display_name or name, roles=list(roles), password=password,
                      campus_id=campus, department=department)
    except Exception as exc:
        raise click.ClickException(str(exc)) from exc
    out = _run(lambda core: core.console.create_user(body, by="cli", totp=True))
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    u = out["user"]
    click.echo(f"user {u['username']} created, roles {', '.join(u['roles'])}")
    if out.get("password"):
        click.echo(f"initial password: {out['password']}   (must be changed at first login)")
    click.echo(f"TOTP (add to an authenticator app, shown once): {out['otpauth_uri']}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_users(as_json: bool) -> None:
    """List console users with their roles and state."""
    rows: list[dict[str, Any]] = _run(lambda core: core.console.list_users())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for u in rows:
        state = "disabled" if not u["enabled"] else ("locked" if u["locked"] else "active")
        click.echo(f"{u['username']:<20} {u['display_name']:<16} {','.join(u['roles']):<28} {state:<8} "
                   f"totp={'yes' if u['totp_enrolled'] else 'no':<3} last login {u['last_login_at'] or '-'}")


@user.command("reset-totp")
@click.argument("name")
def reset_totp(name: str) -> None:
    """Issue a new TOTP secret (the old one stops working, sessions end) and print its otpauth URI."""
    out = _run(lambda core: core.console.reset_totp(name, by="cli"))
    click.echo(f"TOTP of {name} reset; add to an authenticator app (shown once): {out['otpauth_uri']}")


@user.command("unlock")
@click.argument("name")
def unlock(name: str) -> None:
    """Lift a lockout after failed logins."""
    _run(lambda core: core.console.unlock(name, by="cli"))
    click.echo(f"user {name} unlocked")
