"""Sign-in (9001) reuse and renewal, OAuth token renewal, and msgid format/uniqueness."""
from __future__ import annotations

import asyncio
import datetime as dt
import re

from insurance.nhsa.msgid import MsgIdGenerator

from .conftest import ZHANGSAN_ID, person

MSGID = re.compile(r"^H43010000001(\d{14})(\d{4})$")


async def test_sign_no_is_reused_until_refused_then_renewed_once(adapter, control) -> None:
    for _ in range(3):
        await person(adapter)
    calls = await control("GET", "/calls")
    assert [c["infno"] for c in calls] == ["9001", "1101", "1101", "1101"]
    assert len({c["sign_no"] for c in calls[1:]}) == 1 and adapter.client.sign_in_count == 1
    old = adapter.client.sign_no

    await control("POST", "/signins/expire")
    p = await person(adapter)  # refused for the sign_no, signs in again, resends
    assert p.certno == ZHANGSAN_ID
    assert adapter.client.sign_in_count == 2 and adapter.client.sign_no != old
    tail = [c["infno"] for c in (await control("GET", "/calls"))[-2:]]
    assert tail == ["9001", "1101"]


async def test_sign_in_ttl_renews_without_a_refusal(make_adapter, control) -> None:
    adapter = make_adapter(sign_in_ttl_seconds=1)
    await person(adapter)
    adapter.client._signed_at -= 2  # noqa: SLF001 - age the sign-in instead of sleeping
    await person(adapter)
    assert adapter.client.sign_in_count == 2


async def test_explicit_sign_in_and_out(adapter) -> None:
    first = await adapter.sign_in()
    assert first.sign_time.tzinfo is not None and first.sign_no
    ack = await adapter.sign_out()
    assert ack.infno == "9002" and adapter.client.sign_no is None


async def test_oauth_token_renewed_after_401(adapter, control, sim) -> None:
    await person(adapter)
    await control("POST", "/tokens/revoke")  # no-op for profiles without tokens
    p = await person(adapter)
    assert p.name == "张三"


async def test_msgids_unique_under_concurrency(adapter, control) -> None:
    await adapter.sign_in()
    results = await asyncio.gather(*(person(adapter) for _ in range(40)))
    ids = [r.msgid for r in results]
    assert len(set(ids)) == 40
    for msgid in ids:
        m = MSGID.match(msgid)
        assert m, msgid
        dt.datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    seen = [c["msgid"] for c in await control("GET", "/calls")]
    assert len(seen) == len(set(seen))  # the centre refuses repeats; none were sent


def test_msgid_generator_never_repeats_within_a_second_or_backwards() -> None:
    frozen = dt.datetime(2025, 3, 1, 1, 2, 3, tzinfo=dt.UTC)
    clock = [frozen]
    gen = MsgIdGenerator("H43010000001", clock=lambda: clock[0])
    ids = [gen.next() for _ in range(10_050)]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "H43010000001" + "20250301090203" + "0000"  # China time in the id
    assert ids[10_000].endswith("20250301090204" + "0000")  # borrowed the next second
    clock[0] = frozen - dt.timedelta(seconds=30)  # the clock steps back
    assert gen.next() > ids[-1]


def test_partitioned_generators_do_not_collide() -> None:
    clock = lambda: dt.datetime(2025, 3, 1, tzinfo=dt.UTC)  # noqa: E731
    a = MsgIdGenerator("H43010000001", clock=clock, sequence_offset=0, sequence_step=2)
    b = MsgIdGenerator("H43010000001", clock=clock, sequence_offset=1, sequence_step=2)
    assert not {a.next() for _ in range(500)} & {b.next() for _ in range(500)}
