"""The SM-secured envelope, shared by the adapter and the simulator.

Request: ``input`` = Base64(SM4-ECB(JSON text)), ``cainfo`` = Base64(SM3withSM2 over
the same JSON text), ``signtype = "SM2"``, ``enc_type = "SM4"``.
Answer: ``output`` encrypted the same way; ``cainfo`` signs
``infcode|inf_refmsgid|err_msg|<output JSON text>`` so that refusals are signed too.
"""
from __future__ import annotations

import base64
import binascii

from .smcrypto import SmCryptoError, sm2_sign, sm2_verify, sm4_ecb_decrypt, sm4_ecb_encrypt


def sm4_key_bytes(hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key.strip())
    except ValueError as exc:
        raise SmCryptoError("the SM4 key must be 32 hex digits") from exc
    if len(key) != 16:
        raise SmCryptoError("the SM4 key must be 32 hex digits")
    return key


def encrypt_text(key: bytes, text: str) -> str:
    return base64.b64encode(sm4_ecb_encrypt(key, text.encode("utf-8"))).decode("ascii")


def decrypt_text(key: bytes, data: str) -> str:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SmCryptoError("ciphertext is not Base64") from exc
    return sm4_ecb_decrypt(key, raw).decode("utf-8")


def sign_text(private_hex: str, public_hex: str, text: str) -> str:
    return base64.b64encode(sm2_sign(private_hex, public_hex, text.encode("utf-8"))).decode("ascii")


def verify_text(public_hex: str, text: str, signature_b64: str | None) -> bool:
    if not signature_b64:
        return False
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return sm2_verify(public_hex, text.encode("utf-8"), sig)


def answer_sign_text(infcode: object, inf_refmsgid: object, err_msg: object, output_text: str) -> str:
    return f"{infcode}|{inf_refmsgid or ''}|{err_msg or ''}|{output_text}"
