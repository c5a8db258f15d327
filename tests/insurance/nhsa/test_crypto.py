"""SM2/SM3/SM4 correctness, and signatures refused on both sides of the wire."""
from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from gateway.errors import InsuranceProtocolError, InsuranceRejected
from insurance.nhsa import NhsaAdapter
from insurance.nhsa.smcrypto import (
    Sm2KeyPair,
    SmCryptoError,
    public_key_of,
    sm2_sign,
    sm2_verify,
    sm3_hex,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
)
from insurance.nhsa.simulator import NhsaSimHandle, start_simulator
from insurance.nhsa.wire import dumps, loads

from .conftest import ZHANGSAN_ID, person


def test_sm3_standard_vector() -> None:
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_sm4_standard_vector_and_round_trip() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert sm4_ecb_encrypt(key, key)[:16].hex() == "681edf34d206965e86b3e94f536e4246"
    text = "医保 input {\"psn_no\":\"1\"}".encode()
    assert sm4_ecb_decrypt(key, sm4_ecb_encrypt(key, text)) == text
    with pytest.raises(SmCryptoError):
        sm4_ecb_decrypt(bytes(16), sm4_ecb_encrypt(key, text))


def test_sm2_sign_verify_round_trip_and_tampering() -> None:
    pair, other = Sm2KeyPair.generate(), Sm2KeyPair.generate()
    assert public_key_of(pair.private_hex) == pair.public_hex and len(pair.public_hex) == 128
    data = dumps({"data": {"psn_no": "43000000000000000001", "medfee_sumamt": "12.30"}}).encode()
    sig = sm2_sign(pair.private_hex, pair.public_hex, data)
    assert len(sig) == 64 and sm2_verify(pair.public_hex, data, sig)
    assert sm2_verify("04" + pair.public_hex, data, sig)  # uncompressed prefix accepted
    assert sig != sm2_sign(pair.private_hex, pair.public_hex, data)  # a fresh nonce each time
    assert not sm2_verify(pair.public_hex, data + b" ", sig)
    assert not sm2_verify(other.public_hex, data, sig)
    bent = bytearray(sig)
    bent[5] ^= 0x01
    assert not sm2_verify(pair.public_hex, data, bytes(bent))
    assert not sm2_verify(pair.public_hex, data, sig[:63])
    assert not sm2_verify(pair.public_hex, data, bytes(64))


@pytest.fixture
async def sm_sim() -> AsyncIterator[NhsaSimHandle]:
    handle = await start_simulator(profile="sm_oauth")
    try:
        yield handle
    finally:
        await handle.stop()


async def test_simulator_refuses_a_tampered_request_signature(sm_sim, session) -> None:
    adapter = NhsaAdapter(sm_sim.config(), session)
    await adapter.sign_in()
    client = adapter.client
    env = client.envelope("1101", client.msgids.next(), {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": ZHANGSAN_ID}},
                          insuplc_admdvs="", insutype=None, sign_no=client.sign_no or "")
    text, headers = client.security.sign_request(env)
    sealed = loads(text)
    assert sealed["signtype"] == "SM2" and ZHANGSAN_ID not in text  # the input travels encrypted
    sig = bytearray(base64.b64decode(sealed["cainfo"]))
    sig[10] ^= 0xFF
    sealed["cainfo"] = base64.b64encode(bytes(sig)).decode()
    url = sm_sim.base_url + sm_sim.profile.call_path("1101")
    async with session.post(url, data=dumps(sealed).encode(), headers=headers) as resp:
        answer = client.security.verify_response(resp.headers, loads(await resp.read()))
    assert answer["infcode"] == "-1" and "签名" in answer["err_msg"]


async def test_a_hospital_key_the_centre_does_not_know_is_refused(sm_sim, session) -> None:
    adapter = NhsaAdapter(sm_sim.config(sm2_private_key=Sm2KeyPair.generate().private_hex), session)
    with pytest.raises(InsuranceRejected, match="签名"):
        await adapter.sign_in()


async def test_adapter_refuses_a_tampered_answer(sm_sim, session) -> None:
    adapter = NhsaAdapter(sm_sim.config(), session)
    await adapter.sign_in()
    sm_sim.faults.add({"infno": "1101", "kind": "bad_signature"})
    with pytest.raises(InsuranceProtocolError, match="signature") as err:
        await person(adapter)
    assert err.value.extra["infno"] == "1101"
    assert (await person(adapter)).certno == ZHANGSAN_ID


async def test_adapter_refuses_answers_signed_by_another_centre(sm_sim, session) -> None:
    adapter = NhsaAdapter(sm_sim.config(centre_public_key=Sm2KeyPair.generate().public_hex), session)
    with pytest.raises(InsuranceProtocolError):
        await adapter.sign_in()


async def test_wrong_oauth_password_is_refused(sm_sim, session) -> None:
    adapter = NhsaAdapter(sm_sim.config(oauth_password="wrong"), session)
    with pytest.raises(InsuranceRejected, match="token"):
        await adapter.sign_in()


async def test_tif_headers_profile(session) -> None:
    async with await start_simulator(profile="tif_gateway") as sim:
        adapter = NhsaAdapter(sim.config(), session)
        p = await person(adapter)
        assert p.insurance().wallet_balance == 20_000
        forged = NhsaAdapter(sim.config(tif_token="forged"), session)
        with pytest.raises(InsuranceRejected, match="token"):
            await forged.sign_in()


async def test_plain_profile_sends_empty_cainfo(session) -> None:
    async with await start_simulator() as sim:
        adapter = NhsaAdapter(sim.config(), session)
        env = adapter.client.envelope("1101", adapter.client.msgids.next(), {"data": {}}, insuplc_admdvs="",
                                      insutype="340", sign_no="")
        text, headers = adapter.client.security.sign_request(env)
        sent = loads(text)
        assert sent["cainfo"] == "" and sent["input"] == {"data": {}} and headers == {}
        assert sent["recer_sys_code"] == "LXXT"  # retired cadres go to their own system


def test_sm2_keys_with_leading_zero_or_four_digits() -> None:
    # keys whose hex starts with "04", "0" or "4" must survive (a library strips "04" greedily)
    found = 0
    while found < 3:
        pair = Sm2KeyPair.generate()
        if pair.public_hex[0] in "04":
            found += 1
            sig = sm2_sign(pair.private_hex, pair.public_hex, b"data")
            assert sm2_verify(pair.public_hex, b"data", sig)
