"""The treasury keystore: a created keystore is the standard v3 JSON with scrypt (read back by
eth-keyfile, an independent reader), is never overwritten, is readable by its owner only, names
its address without the passphrase, and unlocks only with the right passphrase; no error, repr or
log line carries the key or the passphrase. The keystore is decrypted a second way, by the Web3
Secret Storage definition itself (hashlib's scrypt, keccak MAC, AES-128-CTR from pycryptodome)."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from Crypto.Cipher import AES
from Crypto.Util import Counter
from eth_utils.crypto import keccak

from adapters.chain import keystore
from adapters.chain.custody import KeystoreCustody
from adapters.chain.network import EvmNetwork
from adapters.chain.rpc import JsonRpc

SECRET = "correct horse battery staple"
CHEAP_N = 1 << 12  # a quick scrypt for tests; the CLI writes the standard cost


def _decrypt_by_the_definition(document: dict[str, Any], secret: str) -> bytes:
    crypto = document["crypto"]
    kdf = crypto["kdfparams"]
    derived = hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(kdf["salt"]), n=kdf["n"], r=kdf["r"], p=kdf["p"],
        dklen=kdf["dklen"], maxmem=2**30,
    )  # fmt: skip
    ciphertext = bytes.fromhex(crypto["ciphertext"])
    assert keccak(derived[16:32] + ciphertext).hex() == crypto["mac"]
    assert crypto["cipher"] == "aes-128-ctr"
    counter = Counter.new(128, initial_value=int(crypto["cipherparams"]["iv"], 16))
    return bytes(AES.new(derived[:16], AES.MODE_CTR, counter=counter).decrypt(ciphertext))


def test_a_created_keystore_is_standard_scrypt_v3(tmp_path: Path) -> None:
    path = tmp_path / "treasury.json"
    address = keystore.create(path, SECRET, scrypt_n=CHEAP_N)
    document = json.loads(path.read_text())
    assert document["version"] == 3
    assert document["crypto"]["kdf"] == "scrypt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = _decrypt_by_the_definition(document, SECRET)
    account = keystore.unlock(path, SECRET)
    assert bytes(account.key) == key
    assert account.address == address == keystore.address_of(path)
    assert key.hex() not in path.read_text()


def test_a_keystore_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "treasury.json"
    keystore.create(path, SECRET, scrypt_n=CHEAP_N)
    before = path.read_bytes()
    with pytest.raises(keystore.KeystoreError, match="never overwritten"):
        keystore.create(path, SECRET, scrypt_n=CHEAP_N)
    assert path.read_bytes() == before


def test_a_wrong_passphrase_names_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "treasury.json"
    keystore.create(path, SECRET, scrypt_n=CHEAP_N)
    with pytest.raises(keystore.KeystoreError) as refused:
        keystore.unlock(path, "not the passphrase at all")
    assert "wrong passphrase" in str(refused.value)
    assert "not the passphrase" not in str(refused.value)


def test_the_passphrase_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(keystore.PASSPHRASE_ENV, raising=False)
    with pytest.raises(keystore.KeystoreError, match=keystore.PASSPHRASE_ENV):
        keystore.passphrase(None)
    monkeypatch.setenv(keystore.PASSPHRASE_ENV, SECRET)
    assert keystore.passphrase(None) == SECRET
    secret_file = tmp_path / "pass"
    secret_file.write_text("short\n")
    with pytest.raises(keystore.KeystoreError, match="shorter than 12"):
        keystore.passphrase(secret_file)
    secret_file.write_text(SECRET + "\nignored\n")
    assert keystore.passphrase(secret_file) == SECRET


def test_not_a_keystore_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"version": 1}')
    with pytest.raises(keystore.KeystoreError, match="not a version 3 keystore"):
        keystore.address_of(path)
    path.write_text("not json")
    with pytest.raises(keystore.KeystoreError, match="not JSON"):
        keystore.unlock(path, SECRET)


def test_custody_shows_its_address_never_its_key(tmp_path: Path) -> None:
    path = tmp_path / "treasury.json"
    keystore.create(path, SECRET, scrypt_n=CHEAP_N)
    account = keystore.unlock(path, SECRET)
    network = EvmNetwork(rpc_url="http://127.0.0.1:1", chain_id=1, tokens=())
    custody = KeystoreCustody(network, JsonRpc.__new__(JsonRpc), account)
    shown = repr(custody) + str(custody)
    assert account.address in shown
    assert bytes(account.key).hex() not in shown
