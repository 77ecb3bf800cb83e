"""The treasury key at rest: an encrypted keystore, the Web3 Secret Storage (v3) JSON every
Ethereum wallet reads, with scrypt as its key derivation (eth-account writes and reads it).

The passphrase comes from a file (`passphrase_file`, first line) or the environment
(`STABLERAIL_KEYSTORE_PASSPHRASE`), never from the command line (it would show in `ps`). The key
is decrypted once at start into an eth-account `LocalAccount` held by `custody.KeystoreCustody`;
no error, log line or repr here carries the key, the passphrase or the keystore's ciphertext.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address

PASSPHRASE_ENV = "STABLERAIL_KEYSTORE_PASSPHRASE"
passphrase_length_min = 12
# scrypt's cost (N) as geth writes "standard" keystores; tests use a cheaper one.
SCRYPT_N_STANDARD = 1 << 18


class KeystoreError(Exception):
    """The keystore cannot be used (a one-line reason that names no secret)."""


def passphrase(passphrase_file: Path | None) -> str:
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text("utf-8").splitlines()
        except OSError as e:
            raise KeystoreError(f"cannot read {passphrase_file}: {e.strerror}") from None
        found = text[0] if text else ""
    else:
        found = os.environ.get(PASSPHRASE_ENV, "")
        if not found:
            raise KeystoreError(
                f"no keystore passphrase: set {PASSPHRASE_ENV} or give a passphrase file"
            )
    if len(found) < passphrase_length_min:
        raise KeystoreError(f"the passphrase is shorter than {passphrase_length_min} characters")
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text("utf-8"))
    except OSError as e:
        raise KeystoreError(f"cannot read {path}: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeystoreError(f"{path} is not a keystore (not JSON)") from None
    if not isinstance(document, dict) or document.get("version") != 3:
        raise KeystoreError(f"{path} is not a version 3 keystore")
    crypto = document.get("crypto") or document.get("Crypto")
    if not isinstance(crypto, dict) or crypto.get("kdf") not in ("scrypt", "pbkdf2"):
        raise KeystoreError(f"{path}: the keystore names no scrypt or pbkdf2 key derivation")
    return document


def address_of(path: Path) -> str:
    """The keystore's address (checksummed), read without the passphrase."""
    address = _read(path).get("address")
    if not isinstance(address, str) or not is_address(
        address if address.startswith("0x") else "0x" + address
    ):
        raise KeystoreError(f"{path} names no address")
    return to_checksum_address(address if address.startswith("0x") else "0x" + address)


def unlock(path: Path, secret: str) -> LocalAccount:
    document = _read(path)
    try:
        key = Account.decrypt(document, secret)
    except ValueError:
        raise KeystoreError(f"{path}: wrong passphrase (or a damaged keystore)") from None
    account: LocalAccount = Account.from_key(key)
    stated = document.get("address")
    if isinstance(stated, str) and stated.lower().removeprefix("0x") != account.address.lower()[2:]:
        raise KeystoreError(f"{path}: the key does not belong to the address the file names")
    return account


def create(path: Path, secret: str, *, scrypt_n: int = SCRYPT_N_STANDARD) -> str:
    """A new key from the OS's entropy, written encrypted to `path` (never over an existing
    file, readable by its owner only); its checksummed address."""
    if len(secret) < passphrase_length_min:
        raise KeystoreError(f"the passphrase is shorter than {passphrase_length_min} characters")
    account = Account.create()
    document = Account.encrypt(account.key, secret, kdf="scrypt", iterations=scrypt_n)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"{path} exists: a keystore is never overwritten") from None
    except OSError as e:
        raise KeystoreError(f"cannot write {path}: {e.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(document, out)
        out.flush()
        os.fsync(out.fileno())
    return to_checksum_address(account.address)
