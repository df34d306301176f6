"""JSON Web Tokens made by hand with `cryptography`: RS256 signing and checking, JWKs, and the
deliberately broken shapes (`alg: none`) the negative tests need."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class RsaKey:
    """An RS256 signing key and its key id."""

    kid: str
    private: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str) -> RsaKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            self.private.public_key().verify(
                signature, message, padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return False
        return True


def encode(claims: dict[str, Any], key: RsaKey | None, *, alg: str = "RS256", kid: str = "") -> str:
    """A compact JWT of `claims`. `key` None (or `alg` "none") makes an unsigned token, which
    every verifier must refuse; `kid` overrides the key's id in the header."""
    header: dict[str, str] = {"alg": alg, "typ": "JWT"}
    if key is not None and alg != "none":
        header["kid"] = kid or key.kid
    elif kid:
        header["kid"] = kid
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    if key is None or alg == "none":
        return signing_input + "."
    if alg != "RS256":
        raise ValueError(f"this provider signs only RS256 (asked for {alg})")
    return signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))


def decode_verified(token: str, keys: list[RsaKey]) -> dict[str, Any] | None:
    """The claims of `token` when one of `keys` (by kid) signed it with RS256; None otherwise.
    Expiry and audience are the caller's business."""
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        return None
    signing_input = f"{header_b64}.{claims_b64}".encode("ascii")
    for key in keys:
        if key.kid == header.get("kid") and key.verifies(signing_input, signature):
            return claims if isinstance(claims, dict) else None
    return None


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of `token`, unchecked: for tests that look at what a token says."""
    claims = json.loads(b64url_decode(token.split(".")[1]))
    if not isinstance(claims, dict):
        raise ValueError("a JWT's claims are an object")
    return claims
