"""Destination credentials are encrypted at rest with a key from the environment or a key
file created once (issue 5 point 2)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from segmint.errors import ConfigurationError
from segmint.sync.secrets import (
    KEY_FILE_NAME,
    SECRET_KEY_ENV,
    SecretBox,
    load_or_create_key,
    redact,
)

CREDENTIALS = {"access_token": "EAAB-very-secret-token", "ad_account_id": "act_123"}


def test_credentials_round_trip_and_the_token_hides_them(tmp_path: Path) -> None:
    box = SecretBox.for_data_dir(tmp_path, environ={})
    token = box.encrypt(CREDENTIALS)
    assert b"very-secret" not in token and b"access_token" not in token
    assert box.decrypt(token) == CREDENTIALS


def test_key_file_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path / "data", environ={})
    path = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path / "data", environ={}) == first
    token = SecretBox(first).encrypt(CREDENTIALS)
    assert SecretBox.for_data_dir(tmp_path / "data", environ={}).decrypt(token) == CREDENTIALS


def test_environment_key_wins_and_no_file_is_written(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    assert load_or_create_key(tmp_path, environ={SECRET_KEY_ENV: key.decode()}) == key
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_a_malformed_key_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=SECRET_KEY_ENV):
        load_or_create_key(tmp_path, environ={SECRET_KEY_ENV: "not-a-key"})


def test_another_key_cannot_decrypt_and_says_what_to_do(tmp_path: Path) -> None:
    token = SecretBox(Fernet.generate_key()).encrypt(CREDENTIALS)
    with pytest.raises(ConfigurationError, match="re-authenticate") as caught:
        SecretBox(Fernet.generate_key()).decrypt(token)
    assert "very-secret" not in str(caught.value)


def test_secrets_never_appear_in_repr_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = load_or_create_key(tmp_path, environ={})
    box = SecretBox(key)
    box.encrypt(CREDENTIALS)
    assert key.decode() not in repr(box)
    assert key.decode() not in caplog.text and "very-secret" not in caplog.text
    assert redact(CREDENTIALS) == {"access_token": "********", "ad_account_id": "********"}
