"""Secrets sealed for a shared backend: AES-256-GCM, only ciphertext at rest.

The key is derived (scrypt) from ``NODEKIT_SECRETS_KEY`` (else the Pulumi
passphrase ``PULUMI_CONFIG_PASSPHRASE``) and a salt the backend keeps. Each
value is sealed with a fresh nonce and bound to its node and name, so a
sealed value copied to another name does not open.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nodekit.errors import UsageError

KEY_VARIABLES = ("NODEKIT_SECRETS_KEY", "PULUMI_CONFIG_PASSPHRASE")
CHECK = b"nodekit secrets key check"


def secrets_key() -> str:
    """The key a shared backend needs; a clear error when it is not set."""
    for name in KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    raise UsageError(
        "a shared backend needs a secrets key: NODEKIT_SECRETS_KEY is not set",
        fix="export NODEKIT_SECRETS_KEY=<the key every runner of this backend uses> "
        "(keep it in your CI's secret store; PULUMI_CONFIG_PASSPHRASE works too)",
    )


class Sealer:
    def __init__(self, key: str, salt: bytes) -> None:
        derived = hashlib.scrypt(key.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
        self._aead = AESGCM(derived)

    def seal(self, value: str, bound_to: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> str:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], bound_to.encode()).decode()
        except InvalidTag:
            raise UsageError(
                f"secret {bound_to} does not open with this secrets key",
                fix="use the NODEKIT_SECRETS_KEY the backend's secrets were stored with",
            ) from None

    def check_value(self) -> bytes:
        return self.seal(CHECK.decode(), "nodekit/check")

    def matches(self, check: bytes) -> bool:
        try:
            return self.open(check, "nodekit/check") == CHECK.decode()
        except UsageError:
            return False
