"""`serve`'s configuration: defaults, then a TOML file (`--config`), then environment variables,
then command-line flags, each overriding the one before.

    [server]
    host = "127.0.0.1"
    port = 8080
    data_dir = "data"

    [rails]
    kind = "sim"          # the simulated world, kept in the data dir; or "sim-instant" (below)
    sim_speed = 1.0       # the simulated world runs this many times faster than real time
    sim_seed = 1

    [webhooks]
    allow_private_urls = false   # true: endpoints on loopback/private addresses (development)

    [inbound.secrets]            # POST /v1/inbound/{provider}: each provider's signing secret;
    "bitso-sim" = "whsec_..."    # a provider without one is not accepted

    [policy]
    file = "rules.toml"   # the policy rule set to bring into force at start (engine.policy);
                          # absent: the data dir's latest, or the shipped default

    [sanctions]                  # the sanctions list: OFAC's CSV files (engine.sanctions)
    files = ["ofac/"]            # files, or directories of them (SDN.CSV, ALT.CSV,
                                 # SDN_COMMENTS.CSV, CONS_PRIM.CSV, ...); `file = "SDN.CSV"`
                                 # for one; absent: the shipped sample of fictional entries
    published = "2026-12-01"     # the list's publication date (default: the files' mtime)
    max_age_days = 7             # an older list raises an operator alert

    [[bank_accounts]]            # our accounts at banks, one table each: a statement file
    bank = "acme-bank"           # (camt.05x, MT940) is read only for these; the ledger
    account = "DE89370400440532013000"  # account is bank:<bank>; `account` is the IBAN, or the
    currency = "EUR"             # bank's own number as its files write it (camt <Othr><Id>,
    timezone = "Europe/Berlin"   # MT940 :25:); the zone of the bank's business day (a date
                                 # without a time on a statement is that day, in that zone)

Environment: STABLERAIL_HOST, STABLERAIL_PORT, STABLERAIL_DATA_DIR, STABLERAIL_SIM_SPEED,
STABLERAIL_SIM_SEED, STABLERAIL_WEBHOOKS_ALLOW_PRIVATE (1/true/yes), STABLERAIL_LOG_LEVEL,
STABLERAIL_INBOUND_SECRETS ("provider=whsec_...,provider=whsec_..."), STABLERAIL_POLICY_FILE,
STABLERAIL_SANCTIONS_FILE (files or directories, separated by the path separator ':').

`sim-instant` rails are for benchmarks (`stablerail bench api`): the simulated world answers at
once, lives in memory only and its custody signs with a digest (sim.instant). Because a restart
would meet a new world, they refuse a data dir that already holds a journal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.sanctions_files import (
    MAX_AGE_DAYS_DEFAULT,
    ListUnusable,
    LoadedList,
    SanctionsSource,
    load_list,
)
from adapters.zones import UnknownTimezone, timezone
from engine import currencies, ledger, policy
from engine.statements import BankAccount, account_key
from engine.webhooks import valid_secret


class ConfigError(ValueError):
    """The configuration cannot be used (a one-line reason)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServeConfig:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    rails: str = "sim"
    sim_speed: float = 1.0
    sim_seed: int = 1
    env: str = "test"
    webhooks_allow_private: bool = False
    log_level: str = "INFO"
    # (provider, whsec_ secret) for signed inbound webhooks.
    inbound_secrets: tuple[tuple[str, str], ...] = ()
    # The policy rule set document (read and checked at load), or None.
    policy_document: bytes | None = None
    # Where the sanctions list comes from, and the list as read and checked at load (None: no
    # files configured, the shipped sample is screened against).
    sanctions: SanctionsSource = dataclasses.field(default_factory=SanctionsSource)
    sanctions_list: LoadedList | None = None
    # Our accounts at banks: the only accounts a statement file is read for.
    bank_accounts: tuple[BankAccount, ...] = ()


RAILS = ("sim", "sim-instant")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _flag(name: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {text!r}")


def _number(name: str, text: object, kind: type[Any]) -> Any:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, not {text!r}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None


def _from_file(path: Path) -> dict[str, Any]:
    raw = _read_toml(path)
    server = raw.get("server", {})
    rails = raw.get("rails", {})
    webhooks = raw.get("webhooks", {})
    found: dict[str, Any] = {}
    if "file" in raw.get("policy", {}):
        found["policy_file"] = raw["policy"]["file"]
    found.update(_sanctions_section(path, raw.get("sanctions", {})))
    if "bank_accounts" in raw:
        found["bank_accounts"] = bank_accounts(path, raw["bank_accounts"])
    secrets = raw.get("inbound", {}).get("secrets")
    if secrets is not None:
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise ConfigError(f"{path}: [inbound.secrets] maps a provider to a whsec_ secret")
        found["inbound_secrets"] = tuple(sorted(secrets.items()))
    for key, section, name in (
        ("host", server, "host"),
        ("port", server, "port"),
        ("data_dir", server, "data_dir"),
        ("rails", rails, "kind"),
        ("sim_speed", rails, "sim_speed"),
        ("sim_seed", rails, "sim_seed"),
        ("webhooks_allow_private", webhooks, "allow_private_urls"),
    ):
        if name in section:
            found[key] = section[name]
    return found


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, var in (
        ("host", "STABLERAIL_HOST"),
        ("port", "STABLERAIL_PORT"),
        ("data_dir", "STABLERAIL_DATA_DIR"),
        ("sim_speed", "STABLERAIL_SIM_SPEED"),
        ("sim_seed", "STABLERAIL_SIM_SEED"),
        ("log_level", "STABLERAIL_LOG_LEVEL"),
        ("policy_file", "STABLERAIL_POLICY_FILE"),
    ):
        if var in env:
            found[key] = env[var]
    if "STABLERAIL_SANCTIONS_FILE" in env:
        found["sanctions_files"] = [
            p for p in env["STABLERAIL_SANCTIONS_FILE"].split(os.pathsep) if p
        ]
    if "STABLERAIL_INBOUND_SECRETS" in env:
        pairs = []
        for item in filter(None, env["STABLERAIL_INBOUND_SECRETS"].split(",")):
            provider, _, secret = item.partition("=")
            pairs.append((provider.strip(), secret.strip()))
        found["inbound_secrets"] = tuple(sorted(pairs))
    if "STABLERAIL_WEBHOOKS_ALLOW_PRIVATE" in env:
        found["webhooks_allow_private"] = _flag(
            "STABLERAIL_WEBHOOKS_ALLOW_PRIVATE", env["STABLERAIL_WEBHOOKS_ALLOW_PRIVATE"]
        )
    return found


def load(
    flags: Mapping[str, Any], config_file: Path | None, env: Mapping[str, str] | None = None
) -> ServeConfig:
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_from_file(config_file))
    values.update(_from_env(os.environ if env is None else env))
    values.update({k: v for k, v in flags.items() if v is not None})
    port = _number("port", values.get("port", 8080), int)
    speed = _number("sim_speed", values.get("sim_speed", 1.0), float)
    seed = _number("sim_seed", values.get("sim_seed", 1), int)
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be 0 to 65535, not {port}")
    if not 0.01 <= speed <= 1000:
        raise ConfigError(f"sim_speed must be 0.01 to 1000, not {speed}")
    rails = str(values.get("rails", "sim"))
    if rails not in RAILS:
        raise ConfigError(f"rails {rails!r}: this build serves {' or '.join(RAILS)}")
    allow = values.get("webhooks_allow_private", False)
    if isinstance(allow, str):
        allow = _flag("webhooks_allow_private", allow)
    secrets = tuple(values.get("inbound_secrets", ()))
    for provider, secret in secrets:
        if not provider or not valid_secret(secret):
            raise ConfigError(
                f"inbound secret for {provider or '(no provider)'}: a whsec_ secret of at least"
                " 16 bytes, base64"
            )
    policy_file = values.get("policy_file")
    source = SanctionsSource(
        paths=tuple(Path(p) for p in values.get("sanctions_files", ())),
        published=values.get("sanctions_published"),
        max_age_days=_number(
            "max_age_days", values.get("sanctions_max_age_days", MAX_AGE_DAYS_DEFAULT), int
        ),
    )
    return ServeConfig(
        policy_document=_policy(Path(policy_file)) if policy_file else None,
        sanctions=source,
        sanctions_list=_sanctions(source) if source.paths else None,
        inbound_secrets=secrets,
        bank_accounts=tuple(values.get("bank_accounts", ())),
        data_dir=Path(values.get("data_dir", "data")),
        host=str(values.get("host", "127.0.0.1")),
        port=port,
        rails=rails,
        sim_speed=speed,
        sim_seed=seed,
        env="test",
        webhooks_allow_private=bool(allow),
        log_level=str(values.get("log_level", "INFO")).upper(),
    )


def _policy(path: Path) -> bytes:
    """The rule set document at `path`, checked whole (a bad one stops the start, naming why)."""
    try:
        document = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the policy file {path}: {e.strerror}") from None
    parsed = policy.parse_document(document)
    problems = parsed if isinstance(parsed, list) else policy.compile_rules(parsed, 1)
    if isinstance(problems, list):
        raise ConfigError(f"policy file {path}: " + "; ".join(problems))
    return document


def _sanctions_section(path: Path, section: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    files = section.get("files", [section["file"]] if "file" in section else None)
    if files is not None:
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ConfigError(f"{path}: [sanctions] files is a list of paths")
        found["sanctions_files"] = files
    if "published" in section:
        published = section["published"]
        # TOML has a date type: published = 2026-12-01 (unquoted) arrives as one.
        found["sanctions_published"] = (
            published.isoformat() if isinstance(published, dt.date) else str(published)
        )
    if "max_age_days" in section:
        found["sanctions_max_age_days"] = section["max_age_days"]
    return found


def _sanctions(source: SanctionsSource) -> LoadedList:
    """The configured sanctions list, read and checked whole (a bad one stops the start)."""
    try:
        return load_list(source)
    except ListUnusable as e:
        raise ConfigError(str(e)) from None


ACCOUNT_LENGTH_MAX = 34


def bank_accounts(path: Path, tables: object) -> tuple[BankAccount, ...]:
    """`[[bank_accounts]]`: each with a bank name, an account identifier (at most 34 letters
    and digits, spaces ignored: an IBAN or the bank's own number), an ISO 4217 currency and a
    time zone (default UTC); no account twice."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: [[bank_accounts]] is a list of tables")
    found: list[BankAccount] = []
    seen: set[str] = set()
    for n, table in enumerate(tables, start=1):
        where = f"{path}: bank_accounts {n}"
        unknown = set(table) - {"bank", "account", "currency", "timezone"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        bank, account = table.get("bank"), table.get("account")
        currency, zone = table.get("currency"), table.get("timezone", "UTC")
        if not isinstance(bank, str) or not ledger.is_name(bank):
            raise ConfigError(f"{where}: bank is a name of letters, digits, '-', '_' or '.'")
        key = account_key(account) if isinstance(account, str) else ""
        if not key.isalnum() or len(key) > ACCOUNT_LENGTH_MAX:
            raise ConfigError(f"{where}: account is an IBAN or account number (1 to 34 letters"
                              " and digits)")  # fmt: skip
        if key in seen:
            raise ConfigError(f"{where}: account {key} is configured twice")
        if not isinstance(currency, str) or currencies.exponent(currency) is None:
            raise ConfigError(f"{where}: currency is an ISO 4217 code, not {currency!r}")
        if not isinstance(zone, str):
            raise ConfigError(f"{where}: timezone is a name such as Europe/Berlin")
        try:
            timezone(zone)
        except UnknownTimezone as e:
            raise ConfigError(f"{where}: {e}") from None
        seen.add(key)
        found.append(BankAccount(bank=bank, account=key, currency=currency, timezone=zone))
    return tuple(found)


def load_bank_accounts(config_file: Path | None) -> tuple[BankAccount, ...]:
    """Only the `[[bank_accounts]]` of a config file (for the offline commands)."""
    if config_file is None:
        return ()
    return bank_accounts(config_file, _read_toml(config_file).get("bank_accounts", []))
