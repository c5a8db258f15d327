"""1101 by e-voucher (after decode), ID card, and card number + card_sn."""
from __future__ import annotations

import pytest

from gateway.errors import InsuranceRejected
from gateway.insurance import CertType, EVoucherRequest, PersonQuery

from .conftest import ZHANGSAN_ID


async def test_person_by_evoucher_after_decode(adapter, sim) -> None:
    voucher = await adapter.decode_evoucher(EVoucherRequest(qr_code="EC-QR-ZHANGSAN", operator_id="KIOSK01",
                                                            operator_name="自助机01", business_type="01101"))
    assert voucher.id_no == ZHANGSAN_ID and voucher.name == "张三" and voucher.ec_token
    assert voucher.extra.get("nationality") == "CHN"  # unknown fields kept
    p = await adapter.person_info(PersonQuery(cert_type=CertType.EVOUCHER, cert_no=voucher.ec_token))
    assert p.certno == ZHANGSAN_ID and p.insurance("310").balance == 100_000
    assert p.insurance("310").wallet_balance == (20_000 if sim.profile.wallet_balance_field else None)
    assert p.birthday and p.birthday.year == 1980 and p.msgid


async def test_unknown_evoucher_is_rejected(adapter) -> None:
    with pytest.raises(InsuranceRejected, match="电子凭证"):
        await adapter.decode_evoucher(EVoucherRequest(qr_code="nope", operator_id="K", operator_name="K"))
    with pytest.raises(InsuranceRejected, match="令牌"):
        await adapter.person_info(PersonQuery(cert_type=CertType.EVOUCHER, cert_no="forged-token"))


async def test_person_by_id_card(adapter) -> None:
    p = await adapter.person_info(PersonQuery(cert_type=CertType.ID_CARD, cert_no=ZHANGSAN_ID))
    assert p.psn_no == "43000000000000000001" and p.insurance().insuplc_admdvs == "430100"


async def test_person_by_card_and_card_sn(adapter) -> None:
    p = await adapter.person_info(PersonQuery(cert_type=CertType.SOCIAL_CARD, cert_no="A43010003",
                                              card_sn="43010000K0000003"))
    assert p.name == "王五" and p.insurance().civil_servant and p.identities
    with pytest.raises(InsuranceRejected, match="卡识别码"):
        await adapter.person_info(PersonQuery(cert_type=CertType.SOCIAL_CARD, cert_no="A43010003",
                                              card_sn="WRONG"))


def test_card_query_needs_card_sn() -> None:
    with pytest.raises(ValueError, match="card_sn"):
        PersonQuery(cert_type=CertType.SOCIAL_CARD, cert_no="A43010003")


async def test_person_created_through_control(adapter, control) -> None:
    await control("POST", "/persons", {"psn_no": "43000000000000000099", "name": "钱七", "certno": "X1",
                                       "insurances": [{"insutype": "390", "psn_type": "1501"}],
                                       "wallet_balance": 777})
    p = await adapter.person_info(PersonQuery(cert_type=CertType.ID_CARD, cert_no="X1"))
    assert p.insurance("390").insutype == "390"
    with pytest.raises(KeyError):
        p.insurance("310")
