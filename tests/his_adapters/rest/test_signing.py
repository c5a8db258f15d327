"""Request signatures: the simulator checks them, and a wrong one is the HIS's refusal."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest

from gateway.errors import ConfigError, HisRejected
from gateway.his import PatientQuery, WriteBackStatus
from his_adapters.rest.config import AuthConfig
from his_adapters.rest.signing import Signer, canonical, digest
from his_adapters.simhis import SimHospital

from .conftest import MakeAdapter, ScriptedHis, china_today, first_pending, write_back_for


def test_md5_and_hmac_digests_of_a_known_text() -> None:
    text = canonical({"b": "2", "a": "1", "sign": "x", "empty": "", "none": None, "n": {"y": 1, "x": "中"}},
                     skip="sign")
    assert text == 'a=1&b=2&n={"x":"中","y":1}'
    assert digest("md5", "a=1", "k") == hashlib.md5(b"a=1&key=k").hexdigest().upper()
    assert digest("hmac-sha256", "a=1", "k", uppercase=False) == \
        hmac.new(b"k", b"a=1", hashlib.sha256).hexdigest()


def test_signer_places_fields_in_body_or_headers() -> None:
    now = dt.datetime(2026, 11, 25, 1, 2, 3, tzinfo=dt.UTC)
    body_auth = AuthConfig(scheme="md5", app_id="A", secret="s")
    params, headers = Signer(body_auth).sign({"x": "1"}, now=now, nonce="n1")
    assert headers == {} and params["appId"] == "A" and params["timestamp"] == "20261125090203"
    assert params["sign"] == digest("md5", "appId=A&nonceStr=n1&signType=MD5&timestamp=20261125090203&x=1", "s")
    head_auth = AuthConfig(scheme="hmac-sha256", app_id="A", secret="s", placement="headers",
                           app_id_field="X-App-Id", timestamp_field="X-Timestamp", nonce_field="X-Nonce",
                           sign_type_field=None, sign_field="X-Sign", timestamp_format="unix")
    params, headers = Signer(head_auth).sign({"x": "1"}, now=now, nonce="n1")
    assert params == {"x": "1"} and headers["X-Timestamp"] == str(int(now.timestamp()))
    assert "X-Sign-Type" not in headers


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = AuthConfig(scheme="md5", app_id="A", secret_env="YINYI_TEST_HIS_SECRET")
    monkeypatch.delenv("YINYI_TEST_HIS_SECRET", raising=False)
    with pytest.raises(ConfigError):
        Signer(auth)
    monkeypatch.setenv("YINYI_TEST_HIS_SECRET", "from-env")
    params, _ = Signer(auth).sign({}, nonce="n")
    assert params["sign"]


async def test_a_bad_signature_is_refused(make_adapter: MakeAdapter, hospital: SimHospital) -> None:
    adapter = make_adapter(auth={"secret": "not-the-secret"})
    result = await adapter.write_back(write_back_for(first_pending(hospital), "S1"))
    assert result.status is WriteBackStatus.REJECTED and result.error_code == "9001"
    assert result.error_message == "签名校验失败" and hospital.find_record("S1") is None
    with pytest.raises(HisRejected) as info:
        await adapter.pending_charges(PatientQuery(patient_id=first_pending(hospital).patient_id))
    assert info.value.extra["his_code"] == "9001"


async def test_an_unknown_app_and_a_skewed_clock_are_refused(make_adapter: MakeAdapter) -> None:
    with pytest.raises(HisRejected) as info:
        await make_adapter(auth={"app_id": "SOMEONE"}).daily_bill(china_today(), "outpatient_settlement")
    assert info.value.extra["his_code"] == "9004"
    # a timestamp written on UTC wall-clock where the HIS expects China time is 8 hours off
    with pytest.raises(HisRejected) as info:
        await make_adapter(auth={"utc_offset": "+00:00"}).daily_bill(china_today(), "outpatient_settlement")
    assert info.value.extra["his_code"] == "9003"


@pytest.mark.parametrize("auth", [
    {"scheme": "hmac-sha256"},
    {"scheme": "md5", "timestamp_format": "unix_ms"},
    {"scheme": "hmac-sha256", "placement": "headers", "app_id_field": "X-App-Id", "timestamp_field": "X-Timestamp",
     "nonce_field": "X-Nonce", "sign_type_field": "X-Sign-Type", "sign_field": "X-Sign"},
])
async def test_other_signature_forms_are_accepted(make_adapter: MakeAdapter, hospital: SimHospital,
                                                  auth: dict[str, str]) -> None:
    adapter = make_adapter(auth=auth)
    charge = first_pending(hospital)
    assert (await adapter.write_back(write_back_for(charge, "S2"))).status is WriteBackStatus.RECORDED


async def test_what_goes_on_the_wire(scripted: ScriptedHis, make_adapter: MakeAdapter,
                                     hospital: SimHospital) -> None:
    scripted.answer("/hisapi/v1/fee/confirm", {"resultCode": "0", "data": {"receiptNo": "SF1"}})
    adapter = make_adapter(base_url=scripted.base_url)
    charge = first_pending(hospital)
    wb = write_back_for(charge, "W1", amount=1).model_copy(
        update={"paid_at": dt.datetime(2026, 11, 24, 16, 0, 1, tzinfo=dt.UTC), "channel_trade_no": None})
    assert (await adapter.write_back(wb)).his_serial == "SF1"
    method, path, raw = scripted.requests[-1]
    body = json.loads(raw)
    assert (method, path) == ("POST", "/hisapi/v1/fee/confirm")
    assert body["payAmount"] == "0.01" and body["payTime"] == "2026-11-25 00:00:01" and body["payChannel"] == "WX"
    assert body["orderNo"] == "W1" and body["feeNos"] == charge.charge_id and "tradeNo" not in body
    assert body["appId"] == "YINYI_SANDBOX" and body["signType"] == "MD5" and len(body["sign"]) == 32
