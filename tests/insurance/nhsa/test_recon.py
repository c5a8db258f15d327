"""3201 totals (balanced and not) and 3202 details through 9101/9102 zip files."""
from __future__ import annotations

import base64
import datetime as dt
import io
import zipfile

from gateway.insurance import DetailReconLine, DetailReconRequest, ReconTotals, SettlementRef
from insurance.nhsa.recon_files import build_upload, parse_result, parse_upload
from insurance.nhsa.wire import CST

from .conftest import fee, outpatient_visit, person, settle_request


async def _settle_two(adapter):
    p = await person(adapter)
    out = []
    for amount in (30000, 12345):
        visit = await outpatient_visit(adapter, p)
        await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", amount)])
        out.append((visit, await adapter.settle_outpatient(settle_request(visit, p, amount, password="123456"))))
    return p, out


def _today() -> dt.date:
    return dt.datetime.now(CST).date()


async def test_totals_balanced_and_unbalanced(adapter) -> None:
    p, done = await _settle_two(adapter)
    (v1, s1), (_, s2) = done
    await adapter.reverse_outpatient_settlement(SettlementRef(setl_id=s1.setl_id or "", visit=v1))
    # the reversal nets the first settlement out: one settlement remains
    req = ReconTotals(insutype="310", clr_type="11", setl_optins="430100", begin_date=_today(), end_date=_today(),
                      medfee_sumamt=s2.split.total, fund_pay_sumamt=s2.split.fund_total,
                      acct_pay=s2.split.acct_pay, count=1)
    ok = await adapter.reconcile_totals(req)
    assert ok.balanced and ok.setl_optins == "430100" and ok.msgid
    off = await adapter.reconcile_totals(req.model_copy(update={"acct_pay": s2.split.acct_pay + 1, "count": 2}))
    assert not off.balanced and "acct_pay" in (off.description or "") and "fixmedins_setl_cnt" in off.description
    empty = await adapter.reconcile_totals(req.model_copy(update={"insutype": "390", "medfee_sumamt": 0,
                                                                  "fund_pay_sumamt": 0, "acct_pay": 0, "count": 0}))
    assert empty.balanced


async def test_details_round_trip_with_zip_files(adapter, control) -> None:
    p, done = await _settle_two(adapter)
    (v1, s1), (v2, s2) = done
    lines = [
        DetailReconLine(setl_id=s1.setl_id or "", mdtrt_id=v1.mdtrt_id, psn_no=p.psn_no,
                        medfee_sumamt=s1.split.total, fund_pay_sumamt=s1.split.fund_total, acct_pay=s1.split.acct_pay),
        # the hospital recorded the second one with a wrong account payment
        DetailReconLine(setl_id=s2.setl_id or "", mdtrt_id=v2.mdtrt_id, psn_no=p.psn_no,
                        medfee_sumamt=s2.split.total, fund_pay_sumamt=s2.split.fund_total,
                        acct_pay=s2.split.acct_pay - 100),
        # and one the centre never saw
        DetailReconLine(setl_id="S-GHOST", mdtrt_id="M-GHOST", psn_no=p.psn_no, medfee_sumamt=500,
                        fund_pay_sumamt=0, acct_pay=500),
    ]
    result = await adapter.reconcile_details(DetailReconRequest(setl_optins="430100", begin_date=_today(),
                                                                end_date=_today(), clr_type="11", lines=lines))
    by_id = {line.setl_id: line for line in result.lines}
    assert by_id[s1.setl_id].balanced and by_id[s1.setl_id].msgid == s1.msgid
    assert not by_id[s2.setl_id].balanced and by_id[s2.setl_id].acct_pay == s2.split.acct_pay
    assert not by_id["S-GHOST"].balanced and "中心无" in (by_id["S-GHOST"].memo or "")
    assert {line.setl_id for line in result.unbalanced} == {s2.setl_id, "S-GHOST"}
    assert result.file_qury_no and result.msgid

    # the upload the centre received is a zip holding one tab-separated txt, per the spec
    calls = await control("GET", "/calls")
    assert [c["infno"] for c in calls[-3:]] == ["9101", "3202", "9102"]


async def test_details_report_what_the_hospital_lacks(adapter) -> None:
    p, done = await _settle_two(adapter)
    (v1, s1), _ = done
    only_first = [DetailReconLine(setl_id=s1.setl_id or "", mdtrt_id=v1.mdtrt_id, psn_no=p.psn_no,
                                  medfee_sumamt=s1.split.total, fund_pay_sumamt=s1.split.fund_total,
                                  acct_pay=s1.split.acct_pay)]
    result = await adapter.reconcile_details(DetailReconRequest(setl_optins="430100", begin_date=_today(),
                                                                end_date=_today(), lines=only_first))
    missing = [line for line in result.unbalanced]
    assert len(missing) == 1 and "医院无" in (missing[0].memo or "")


async def test_file_transfer_9101_9102(adapter) -> None:
    payload = build_upload([DetailReconLine(setl_id="S1", mdtrt_id="M1", psn_no="P1", medfee_sumamt=1,
                                            fund_pay_sumamt=0, acct_pay=1, refund=True)], "a.txt")
    info = await adapter.upload_file(payload, "a.zip")
    assert info.file_qury_no and info.dld_endtime and info.dld_endtime.tzinfo is not None
    assert await adapter.download_file(info.file_qury_no, info.filename) == payload


def test_file_layouts() -> None:
    line = DetailReconLine(setl_id="S1", mdtrt_id="M1", psn_no="P1", medfee_sumamt=12345, fund_pay_sumamt=-1,
                           acct_pay=0, refund=True)
    data = build_upload([line], "x.txt")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["x.txt"]
        assert zf.read("x.txt").decode() == "S1\tM1\tP1\t123.45\t-0.01\t0.00\t1\n"
    assert parse_upload(data) == [line]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("result.txt", "P1\tM1\tS1\tMSG\t0\t0\t\t1.00\t0.50\t0.50\n")
    (row,) = parse_result(buf.getvalue())
    assert row.balanced and row.medfee_sumamt == 100 and row.acct_pay == 50 and row.memo is None
    assert base64.b64encode(data)
