"""Chinese commercial cryptography (国密) for channel security: SM2, SM3, SM4.

SM3 and SM4 come from ``cryptography``; SM2 signatures (SM3withSM2, GB/T 32918 with
the default user id) from ``gmssl``, whose own nonce source is not a CSPRNG, so the
signing nonce is drawn here with ``secrets``. Signatures travel as raw ``r‖s``
(64 bytes), Base64-encoded by the callers.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm2

_N = int(sm2.default_ecc_table["n"], 16)
SM2_DEFAULT_USER_ID = b"1234567812345678"


class SmCryptoError(ValueError):
    """A key, ciphertext or signature that is not what SM crypto expects."""


def sm3_hex(data: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


def sm4_ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-ECB with PKCS#7 padding (the platform's choice; ECB is theirs, not ours)."""
    if len(key) != 16:
        raise SmCryptoError("an SM4 key is 16 bytes")
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def sm4_ecb_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    if len(key) != 16:
        raise SmCryptoError("an SM4 key is 16 bytes")
    if not ciphertext or len(ciphertext) % 16:
        raise SmCryptoError("SM4 ciphertext must be a non-empty multiple of 16 bytes")
    dec = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    data = dec.update(ciphertext) + dec.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(data) + unpadder.finalize()
    except ValueError as exc:
        raise SmCryptoError("bad SM4 padding (wrong key?)") from exc


@dataclass(frozen=True)
class Sm2KeyPair:
    private_hex: str  # 64 hex digits
    public_hex: str  # 128 hex digits (x‖y, without the 04 prefix)

    @classmethod
    def generate(cls) -> Sm2KeyPair:
        d = secrets.randbelow(_N - 2) + 1
        private_hex = f"{d:064x}"
        return cls(private_hex, public_key_of(private_hex))


def public_key_of(private_hex: str) -> str:
    crypt = sm2.CryptSM2(private_key=private_hex, public_key="00" * 64)
    return crypt._kg(int(private_hex, 16), sm2.default_ecc_table["g"])  # noqa: SLF001 - gmssl has no public API


def _normalise_public(public_hex: str) -> str:
    key = public_hex.strip().lower()
    if len(key) == 130 and key.startswith("04"):
        key = key[2:]
    if len(key) != 128:
        raise SmCryptoError("an SM2 public key is 64 bytes (x‖y), hex")
    return key


def _crypt(private_hex: str, public_hex: str) -> sm2.CryptSM2:
    crypt = sm2.CryptSM2(private_key=private_hex, public_key="00" * 64)
    # gmssl's constructor strips a "04" prefix with str.lstrip, which also eats a key whose
    # x coordinate starts with 0 or 4 characters; set the key after construction instead
    crypt.public_key = _normalise_public(public_hex)
    return crypt


def sm2_sign(private_hex: str, public_hex: str, data: bytes) -> bytes:
    """SM3withSM2 signature of ``data`` as raw ``r‖s`` (64 bytes)."""
    crypt = _crypt(private_hex, public_hex)
    while True:
        k = f"{secrets.randbelow(_N - 1) + 1:064x}"
        sig = crypt.sign_with_sm3(data, k)
        if sig:
            return bytes.fromhex(sig)


def sm2_verify(public_hex: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (raw ``r‖s``) is an SM3withSM2 signature of ``data``."""
    if len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < _N and 0 < s < _N):
        return False
    try:
        crypt = _crypt("00", public_hex)
        return bool(crypt.verify_with_sm3(signature.hex(), data))
    except (ValueError, TypeError, IndexError):
        return False
