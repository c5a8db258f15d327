"""Wire-level tests of the reference bank: the string to sign, a fixed signature vector, headers, codes."""
from __future__ import annotations

import time

import pytest

from gateway.channel import RefundStatus, TradeStatus
from gateway.money import MoneyFormatError
from plugins.banks.refbank import crypto, wire

# A fixed 2048-bit test key and a signature computed over the string below by an
# independent RSA implementation (PKCS#1 v1.5 is deterministic, so it must match).
VECTOR_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC4p+BXVsv8h3Z4
9FdK+pAcVurJSanqrAa/z72wcikkls1WIQpppvSLn6WFuNMXA0cMKcU5YliRdpJL
E2WiePoDeZTbFF5fIy+dJ+DzhZxsgS9PBVCxDwpUo1rdhRYmPj3fe/b0OQ1fSquy
yR0OsS8QqZqsE+hEmW5PkjuIFDBsia8fc9hweibAYs/jcvC3nVVFF5kj47QLEUor
0VzeNjk4or73NWc0iwVcrl7LdKrbuzBqvvwglBn8B00V9849pNDdkbqHAjCITJkV
cPxb/GzJ0Sus7bPnynO4w7eh54WUPG/o8bKe2oR04Mm3bEGIGHFtyJTbvKrUMfJc
WDMcAC8tAgMBAAECggEACWn8R3z0Kwcy9IlXIUpIlOaffgHvPji6orEcysU/MLou
yhXReepvluYIN8WLntA6y+Ad9HDS8sjjPh2aiwp04JQkZnjm3h3P8cip23Bz4ETu
ca5j20BY4VDEs1IeJiFP4TgTh9xCwMQbSyLyrsrnYIeXtu8ljR3Etcd5mSntABN8
t7l6EhRMw63P9POb0X45j9AB5UK4itCtcnPiuh4Fr6gEJ4cpTZ4Qp3kdStN2/fC2
dQrL2mFfy2D7a6Qa4Em+9Lynpx1V/rRs36mZpDMKz9/PSwa0aX5ptD0+WzTtKSDj
M6V2O3fxCmFwl98ssagvEn3/Hn47dtGV8KZtFrercQKBgQDggMX2+UF2LDTesSWj
E3/Hiu5f0nTNvz9TT2svHNEjFgEensFqrm1JNdd/p5N6/2RFWmtR0i7Xsy28Y9pY
QALgT5JkTsscoiwwY14bUiGDrah0Popsk6rDERr2ojCgxqBqhV4vZVx9DJXxjGm8
RXekzz1YiyyrWpH8/d3FNOPr1QKBgQDSj/QKvy1wSJaH3/tJV7JOmi3/J+ItN8ry
PbGY6IDGKy88CKrigLl7hRY6kKkGlSTXmHYGSac6YtdVRH7bNsGT6OK9jyq4g4XZ
Bsdy8C+mwDFpr/L4pncfsOvkJUzmdYS0CqIrSHIGQkpV6m/gsYt7PEYGyJ/jGKVN
Us3P0ygZ+QKBgDhYGVcit4sxDRPW4dtLyYYLGEh0SVxZ40rFY+EvGk3z99P3hBOC
M2tsV+lx5VG5RzEgwE6Isbjw/0mIxgPgDNi/H76NB+znxq9eQQAaXM7vhpemGpel
d/X9FQdRLWMsdpZFYp4CknPP9NHqq57U0HJMkNjoFQ3sbTdRf5c+7vUBAoGBALdr
gLnP2YQjJ0XLXfmAtCl2czT+iC69mEM2bLt3ZZ26xpW0My/F1E1+HGP92c+LIiHQ
hJdrl4nrygpT9XF+HFh9GO7phNxgbbslBZ7hDZFjgGfBRpVFZSWtF3+Q4pEqs+Om
E6hCnllHa7u10alY39kFIzcLkwPfVzepNvGfziH5AoGBAMDWwNExVReKHmHztmRi
8ir9qzBPcZIeKtJcV+U0gkcadYrgFe5lZYQxoi+FQU8Fffpa8rWz14BNiRBnhSll
uGUQixjikZdINZvCfjqIh36+uOMMsA+0M0/PIfEs1w0sjs4OuvtpiIbD9qz1XdZb
PmyfV4AICK2PjRb9WovKeBey
-----END PRIVATE KEY-----
"""
VECTOR_BODY = (
    '{"out_trade_no":"P20240501000001","auth_code":"0112345678901234567",'
    '"amount":"12.30","currency":"CNY","subject":"挂号费"}'
)
VECTOR_DIGEST = "98985424286425ba2a8575ce657635efe8c21525a4fab53ca9a0088b1ce9f940"
VECTOR_STRING = (
    b"ECNY-RSA-SHA256\n"
    b"REQUEST POST /ecny/v1/trade/codepay\n"
    b"898110000000001\n"
    b"1714528800\n"
    b"0123456789abcdef0123456789abcdef\n"
    b"98985424286425ba2a8575ce657635efe8c21525a4fab53ca9a0088b1ce9f940\n"
)
VECTOR_SIGNATURE = (
    "Yo1UpigNGaI3zju2XlxNckkKRVeH4PER3tQ9FIo3P2qPkctO3q+227M7gjObhruMXSsTTzqJILr/"
    "qMlecG43w5sNGzXu6npgGiqMzB10STA/gpA3Hls4nLx6Os/ywtMzEgBPB/pctPzrKbbKblxxOL5/"
    "XdohYEg3Y6Yo0s13GlsqEzIh4N7i547hwFlCRWeplAY4x80PEeUOsIONE7NmE8JVjE9wn4ScG/x3"
    "cMcSts+YM5QCE6kVEqV2+xcn+04hv4LYp8s5cS3R651TrmR2wemF6jMBzrCI49kk1cwL7QWj1OoW"
    "0q88pvb07PbMHCgtfO+DP+AiHWxXwJoUz9/8vg=="
)

KEY = crypto.generate_private_key()
OTHER = crypto.generate_private_key()


def test_string_to_sign_vector() -> None:
    assert crypto.body_digest(VECTOR_BODY) == VECTOR_DIGEST
    sts = crypto.string_to_sign(crypto.request_scope("post", "/ecny/v1/trade/codepay"), "898110000000001",
                                "1714528800", "0123456789abcdef0123456789abcdef", VECTOR_BODY.encode())
    assert sts == VECTOR_STRING


def test_signature_vector() -> None:
    key = crypto.load_private_key(VECTOR_KEY)
    assert crypto.rsa_sign(key, VECTOR_STRING) == VECTOR_SIGNATURE
    headers = crypto.sign_headers(key, "MK000000000001", crypto.request_scope("POST", "/ecny/v1/trade/codepay"),
                                  "898110000000001", VECTOR_BODY, timestamp="1714528800",
                                  nonce="0123456789abcdef0123456789abcdef")
    assert headers == {
        "X-Ecny-Merchant-Id": "898110000000001", "X-Ecny-Key-Id": "MK000000000001",
        "X-Ecny-Timestamp": "1714528800", "X-Ecny-Nonce": "0123456789abcdef0123456789abcdef",
        "X-Ecny-Signature": VECTOR_SIGNATURE, "X-Ecny-Sign-Type": "RSA-SHA256",
    }
    crypto.verify_headers(headers, VECTOR_BODY, scope="REQUEST POST /ecny/v1/trade/codepay",
                          merchant_id="898110000000001", key=key.public_key(), key_id="MK000000000001",
                          now=1714528800)
    # a bare base64 key body (no armour lines) loads to the same key
    bare = "".join(line for line in VECTOR_KEY.strip().splitlines() if not line.startswith("-----"))
    assert crypto.rsa_sign(crypto.load_private_key(bare), VECTOR_STRING) == VECTOR_SIGNATURE


def test_response_and_notify_scopes() -> None:
    assert crypto.response_scope(200, "abc") == "RESPONSE 200 abc"
    body = b'{"code":"SUCCESS","message":"\xe6\x88\x90\xe5\x8a\x9f","data":{}}'
    headers = crypto.sign_headers(KEY, "BK1", crypto.response_scope(200, "n1"), "898110000000001", body)
    crypto.verify_headers(headers, body, scope="RESPONSE 200 n1", merchant_id="898110000000001",
                          key=KEY.public_key(), key_id="BK1")
    # the same signature does not hold for another request, status, merchant or scope
    for scope, mid in (("RESPONSE 200 n2", "898110000000001"), ("RESPONSE 401 n1", "898110000000001"),
                       ("NOTIFY", "898110000000001")):
        with pytest.raises(crypto.SignatureError):
            crypto.verify_headers(headers, body, scope=scope, merchant_id=mid, key=KEY.public_key(), key_id="BK1")
    with pytest.raises(crypto.SignatureError, match="merchant"):
        crypto.verify_headers(headers, body, scope="RESPONSE 200 n1", merchant_id="898110000000002",
                              key=KEY.public_key(), key_id="BK1")


def test_signature_failures() -> None:
    body = b'{"a":1}'
    scope, mid = "NOTIFY", "898110000000001"
    good = crypto.sign_headers(KEY, "BK1", scope, mid, body)
    cases = {
        "tampered body": (good, b'{"a":2}', "BK1"),
        "other key": (crypto.sign_headers(OTHER, "BK1", scope, mid, body), body, "BK1"),
        "unknown key id": (good, body, "BK2"),
        "missing": ({k: v for k, v in good.items() if k != "X-Ecny-Signature"}, body, "BK1"),
        "stale": (crypto.sign_headers(KEY, "BK1", scope, mid, body, timestamp=str(int(time.time()) - 301)), body,
                  "BK1"),
        "future": (crypto.sign_headers(KEY, "BK1", scope, mid, body, timestamp=str(int(time.time()) + 400)), body,
                   "BK1"),
        "garbage signature": ({**good, "X-Ecny-Signature": "%%%"}, body, "BK1"),
        "other sign type": ({**good, "X-Ecny-Sign-Type": "SM2"}, body, "BK1"),
        "non-numeric timestamp": ({**good, "X-Ecny-Timestamp": "soon"}, body, "BK1"),
    }
    for name, (headers, payload, key_id) in cases.items():
        with pytest.raises(crypto.SignatureError):
            crypto.verify_headers(headers, payload, scope=scope, merchant_id=mid, key=KEY.public_key(),
                                  key_id=key_id)
            pytest.fail(name)
    # header names are case-insensitive
    crypto.verify_headers({k.lower(): v for k, v in good.items()}, body, scope=scope, merchant_id=mid,
                          key=KEY.public_key(), key_id="BK1")


def test_line_breaks_cannot_be_smuggled_into_the_string_to_sign() -> None:
    with pytest.raises(ValueError):
        crypto.string_to_sign("REQUEST POST /x\n898110000000002", "898110000000001", "1", "n", b"")


def test_key_loading() -> None:
    with pytest.raises(ValueError):
        crypto.load_private_key(crypto.private_key_pem(crypto.generate_private_key(1024)))
    with pytest.raises(ValueError):
        crypto.load_public_key("not a key")
    pub = crypto.load_public_key(crypto.public_key_pem(KEY))
    assert pub.public_numbers() == KEY.public_key().public_numbers()


def test_amounts_and_times() -> None:
    assert wire.yuan(1230) == "12.30" and wire.fen("12.30") == 1230 and wire.fen("0.01") == 1
    for bad in (12.3, 1230, None, "12.345", "1,2"):
        with pytest.raises(MoneyFormatError):
            wire.fen(bad)
    t = wire.parse_time("20240501100000")
    assert t is not None and t.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert wire.format_time(t) == "20240501100000"
    assert wire.parse_time("") is None
    for bad in ("2024-05-01", "2024050110000", "2024050110000x"):
        with pytest.raises(ValueError):
            wire.parse_time(bad)
    assert wire.format_date(wire.parse_date("20240501")) == "20240501"


def test_status_vocabularies() -> None:
    assert wire.trade_status("SUCCESS") is TradeStatus.SUCCEEDED
    assert wire.trade_status("PAYING") is TradeStatus.PAYING
    assert wire.trade_status("FAIL") is TradeStatus.FAILED
    assert wire.trade_status("REVOKED") is TradeStatus.REVERSED
    assert wire.trade_status("REFUND") is TradeStatus.REFUNDED
    # what the adapter does not know is never a failure
    assert wire.trade_status("SOMETHING_NEW") is TradeStatus.PENDING
    assert wire.trade_status(None) is TradeStatus.PENDING
    assert wire.refund_status("SUCCESS") is RefundStatus.SUCCEEDED
    assert wire.refund_status("ODD") is RefundStatus.PROCESSING
    assert not (wire.UNKNOWN_CODES & wire.CODEPAY_DECLINES)
    assert not (wire.UNKNOWN_CODES & wire.REFUND_DECLINES)
    assert all(code in wire.ERRORS for code in wire.CODEPAY_DECLINES | wire.REFUND_DECLINES | wire.UNKNOWN_CODES)


def test_wire_json_is_compact_utf8() -> None:
    body = wire.CodePayRequest(out_trade_no="T1", auth_code="0112345678901234567", amount="12.30",
                               subject="挂号费").dump()
    assert body == VECTOR_BODY.replace("P20240501000001", "T1").encode()
