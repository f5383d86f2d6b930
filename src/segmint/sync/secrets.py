"""Destination credentials encrypted at rest (issue 5 point 2).

Credentials (tokens, API keys, webhook signing secrets) are stored as Fernet tokens
(AES-128-CBC + HMAC-SHA256, from ``cryptography``). The key comes from the environment
variable ``SEGMINT_SECRET_KEY`` when set, else from ``DATA_DIR/secret.key``, generated on
first run with owner-only permissions (0600). Lose the key and the stored credentials are
lost with it: destinations then need re-authenticating.

Nothing here ever puts a key or a credential in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from segmint.errors import ConfigurationError

log = logging.getLogger(__name__)

SECRET_KEY_ENV = "SEGMINT_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
REDACTED = "********"


def _valid_key(raw: bytes, origin: str) -> bytes:
    key = raw.strip()
    try:
        Fernet(key)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"the secret key in {origin} is not a valid Fernet key (32 url-safe base64-encoded "
            'bytes); generate one with `python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`'
        ) from exc
    return key


def load_or_create_key(data_dir: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The encryption key: ``SEGMINT_SECRET_KEY`` when set in ``environ`` (default
    ``os.environ``), else the contents of ``data_dir/secret.key``, created (0600) on first use
    and reused afterwards. Raises :class:`ConfigurationError` when the key is malformed."""
    env = os.environ if environ is None else environ
    from_env = env.get(SECRET_KEY_ENV)
    if from_env:
        return _valid_key(from_env.encode(), SECRET_KEY_ENV)
    path = Path(data_dir) / KEY_FILE_NAME
    if path.exists():
        return _valid_key(path.read_bytes(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: when two processes start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _valid_key(path.read_bytes(), str(path))
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    log.info("generated a new secret key for destination credentials", extra={"path": str(path)})
    return key


class SecretBox:
    """Encrypts and decrypts credential dictionaries with one key. Its repr shows no key."""

    __slots__ = ("_fernet",)

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def for_data_dir(cls, data_dir: Path, environ: Mapping[str, str] | None = None) -> SecretBox:
        """A box with the key :func:`load_or_create_key` gives for ``data_dir``."""
        return cls(load_or_create_key(data_dir, environ))

    def __repr__(self) -> str:
        return "SecretBox(key=<hidden>)"

    def encrypt(self, credentials: Mapping[str, Any]) -> bytes:
        """A Fernet token of ``credentials`` serialized as JSON."""
        return self._fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode())

    def decrypt(self, token: bytes) -> dict[str, Any]:
        """The credentials in ``token``. Raises :class:`ConfigurationError` when it was
        encrypted with another key (the key changed or was lost)."""
        try:
            plain = self._fernet.decrypt(bytes(token))
        except InvalidToken:
            raise ConfigurationError(
                "stored destination credentials cannot be decrypted with the current secret key "
                f"(was {SECRET_KEY_ENV} or DATA_DIR/{KEY_FILE_NAME} changed?); restore the old "
                "key, or re-authenticate the destination"
            ) from None
        value = json.loads(plain)
        if not isinstance(value, dict):
            raise ConfigurationError("stored destination credentials are not an object")
        return value


def redact(credentials: Mapping[str, Any]) -> dict[str, str]:
    """The credentials' field names with every value hidden: what a reader may see."""
    return {name: REDACTED for name in sorted(credentials)}
