"""Standard Webhooks signatures: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret (base64, padding optional); any other string
    is used as raw bytes, so a plain passphrase also works."""
    if secret.startswith("whsec_"):
        encoded = secret.removeprefix("whsec_")
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            pass
    return secret.encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")
