"""`serve`'s configuration: defaults, then a TOML file (`--config`), then environment variables,
then command-line flags, each overriding the one before.

    [server]
    host = "127.0.0.1"
    port = 8080
    data_dir = "data"
    cpu = 0               # optional (absent: any core): every thread of the server on this
                          # core (Linux). Its Python runs under one lock, and threads handing it
                          # between cores cost CPU (README, "Figures": about 15% of a create's)

    [rails]
    kind = "sim"          # the simulated world, kept in the data dir; or "sim-instant" (below)
    sim_speed = 1.0       # the simulated world runs this many times faster than real time
    sim_seed = 1

    [evm]                        # `kind = "evm"`: the real chain (adapters/chain, docs/evm.md)
    rpc_url = "http://127.0.0.1:8545"  # the node's JSON-RPC endpoint
    chain_id = 31337             # the node must report this chain id, or the start stops
    keystore = "treasury.json"   # the treasury key (`stablerail wallet new`)
    passphrase_file = "treasury.pass"  # its passphrase; else STABLERAIL_KEYSTORE_PASSPHRASE
    start_block = 0              # the indexer feed reads no block before this one
    finality = "finalized"       # or "depth": final = finality_depth blocks under the head
    finality_depth = 64
    confirmations = 12           # blocks before a payment is CONFIRMED (12 at least)
    poll_s = 2.0                 # how often the node is asked (about a block time)
    rpc_timeout_s = 10.0         # each JSON-RPC request's deadline
    [evm.tokens]                 # currency -> the ERC-20 contract (decimals = ledger scale)
    USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"

    [reconciliation]             # how often and how patiently the books are checked
    round_s = 60                 # a full reconciliation round at least this often
    external_only_grace_s = 3600 # an unclaimed report waits this long for its transfer
    balance_check_s = 300        # each held balance read against its holder this often
    balance_drift_persist_s = 1800  # an unexplained drift this old is a balance_drift case

    [pricing]                    # the pricing desk and each provider's terms: see
    quote_deadline_s = 2.0       # adapters/pricing_config.py for [pricing.breaker],
                                 # [pricing.requote] (per client too) and
    [providers.rampa-sim]        # [providers.NAME.corridors.USD-MXN] min_amount/max_amount
    compliance = "approved"      # or "under_review", "suspended"; enabled = false: never asked

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

Environment: STABLERAIL_HOST, STABLERAIL_PORT, STABLERAIL_DATA_DIR, STABLERAIL_CPU,
STABLERAIL_SIM_SPEED, STABLERAIL_SIM_SEED, STABLERAIL_WEBHOOKS_ALLOW_PRIVATE (1/true/yes),
STABLERAIL_LOG_LEVEL, STABLERAIL_INBOUND_SECRETS ("provider=whsec_...,provider=whsec_..."),
STABLERAIL_POLICY_FILE, STABLERAIL_SANCTIONS_FILE (files or directories, separated by the path
separator ':').

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

from adapters import affinity
from adapters.chain.network import EvmNetwork
from adapters.chain.rails import EvmSettings
from adapters.pricing_config import PricingError, PricingSettings, pricing_section
from adapters.sanctions_files import (
    MAX_AGE_DAYS_DEFAULT,
    ListUnusable,
    LoadedList,
    SanctionsSource,
    load_list,
)
from adapters.zones import UnknownTimezone, timezone
from engine import currencies, destinations, ledger, limits, money, policy
from engine.statements import BankAccount, account_key
from engine.webhooks import valid_secret


class ConfigError(ValueError):
    """The configuration cannot be used (a one-line reason)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServeConfig:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    # The one core every thread of the server runs on (adapters/affinity.py); None: any.
    cpu: int | None = None
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
    # [reconciliation]: (Tuning field, seconds) for the ones the file sets.
    reconciliation: tuple[tuple[str, float], ...] = ()
    # [pricing] and [providers.NAME] (adapters.pricing_config).
    pricing: PricingSettings = dataclasses.field(default_factory=PricingSettings)
    # The real chain (`rails = "evm"`), and how often it is polled.
    evm: EvmSettings | None = None
    evm_poll_s: float = 2.0


RAILS = ("sim", "sim-instant", "evm")
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
    if "evm" in raw:
        found["evm"], found["evm_poll_s"] = evm_section(path, raw["evm"])
    if "reconciliation" in raw:
        found["reconciliation"] = reconciliation_section(path, raw["reconciliation"])
    if "pricing" in raw or "providers" in raw or "liquidity" in raw:
        try:
            found["pricing"] = pricing_section(path, raw)
        except PricingError as e:
            raise ConfigError(str(e)) from None
    secrets = raw.get("inbound", {}).get("secrets")
    if secrets is not None:
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise ConfigError(f"{path}: [inbound.secrets] maps a provider to a whsec_ secret")
        found["inbound_secrets"] = tuple(sorted(secrets.items()))
    for key, section, name in (
        ("host", server, "host"),
        ("port", server, "port"),
        ("data_dir", server, "data_dir"),
        ("cpu", server, "cpu"),
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
        ("cpu", "STABLERAIL_CPU"),
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
    cpu = values.get("cpu")
    if cpu is not None:
        cpu = _number("cpu", cpu, int)
        if (refused := affinity.refusal(cpu)) is not None:
            raise ConfigError(refused)
    if not 0.01 <= speed <= 1000:
        raise ConfigError(f"sim_speed must be 0.01 to 1000, not {speed}")
    rails = str(values.get("rails", "sim"))
    if rails not in RAILS:
        raise ConfigError(f"rails {rails!r}: this build serves {' or '.join(RAILS)}")
    evm = values.get("evm")
    if rails == "evm" and evm is None:
        raise ConfigError("rails evm needs an [evm] section in the config file (rpc_url,"
                          " chain_id, keystore, [evm.tokens])")  # fmt: skip
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
        cpu=cpu,
        rails=rails,
        evm=evm,
        evm_poll_s=values.get("evm_poll_s", 2.0),
        reconciliation=tuple(values.get("reconciliation", ())),
        pricing=values.get("pricing", PricingSettings()),
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


_EVM_KEYS = frozenset(
    {"rpc_url", "chain_id", "keystore", "passphrase_file", "start_block", "finality"}
    | {"finality_depth", "poll_s", "tokens", "chain", "rpc_timeout_s", "confirmations"}
)


def evm_section(path: Path, section: object) -> tuple[EvmSettings, float]:
    """`[evm]`: the node, the chain id it must report, the treasury keystore and the tokens,
    each checked here so a mistake stops the start with its name."""
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [evm] is a table")
    where = f"{path}: [evm]"
    unknown = set(section) - _EVM_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    url = section.get("rpc_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: rpc_url is the node's http:// or https:// JSON-RPC URL")
    chain_id = section.get("chain_id")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
        raise ConfigError(f"{where}: chain_id is the chain's EIP-155 id (1 for Ethereum)")
    key_file = section.get("keystore")
    if not isinstance(key_file, str) or not key_file:
        raise ConfigError(f"{where}: keystore is the path of the treasury's keystore file")
    secret_file = section.get("passphrase_file")
    if secret_file is not None and not isinstance(secret_file, str):
        raise ConfigError(f"{where}: passphrase_file is a path")
    tokens = section.get("tokens")
    if not isinstance(tokens, dict) or not tokens:
        raise ConfigError(f"{where}: [evm.tokens] maps a stablecoin (USDC) to its contract")
    for currency, address in tokens.items():
        asset = money.asset(currency)
        if asset is None or asset.kind is not money.AssetKind.STABLECOIN:
            raise ConfigError(f"{where}: tokens: {currency} is not a stablecoin the ledger keeps")
        if not isinstance(address, str) or not destinations.is_address(address):
            raise ConfigError(f"{where}: tokens: {currency} is a 0x address, not {address!r}")
    chain = section.get("chain", "ethereum")
    if chain not in destinations.CHAINS:
        raise ConfigError(f"{where}: chain is one of {', '.join(sorted(destinations.CHAINS))}")
    finality = section.get("finality", "finalized")
    if finality not in ("finalized", "depth"):
        raise ConfigError(f'{where}: finality is "finalized" or "depth"')
    numbers = {}
    for name, default, low, high in (
        ("start_block", 0, 0, 2**63),
        ("finality_depth", 64, 1, 10_000),
        # The engine confirms a payment at no fewer than limits.confirmations_required blocks.
        ("confirmations", limits.confirmations_required, limits.confirmations_required, 10_000),
    ):
        value = section.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{where}: {name} is a whole number from {low} to {high}")
        numbers[name] = value
    seconds: dict[str, float] = {}
    for key, fallback, least, most in (
        ("poll_s", 2.0, 0.05, 60.0),
        ("rpc_timeout_s", 10.0, 0.1, 60.0),
    ):
        given = section.get(key, fallback)
        if (
            not isinstance(given, int | float)
            or isinstance(given, bool)
            or not least <= given <= most
        ):
            raise ConfigError(f"{where}: {key} is {least} to {most} seconds")
        seconds[key] = float(given)
    network = EvmNetwork(
        rpc_url=url,
        chain_id=chain_id,
        tokens=tuple(sorted((c, a.lower()) for c, a in tokens.items())),
        chain=chain,
        start_block=numbers["start_block"],
        use_finalized_tag=finality == "finalized",
        finality_depth=numbers["finality_depth"],
        rpc_timeout_s=seconds["rpc_timeout_s"],
    )
    settings = EvmSettings(
        confirmations=numbers["confirmations"],
        network=network,
        keystore=Path(key_file),
        passphrase_file=Path(secret_file) if secret_file else None,
    )
    return settings, seconds["poll_s"]


def _seconds(where: str, key: str, value: object, least: float, most: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not least <= value <= most:
        raise ConfigError(f"{where}: {key} is {least} to {most} seconds")
    return float(value)


# [reconciliation] key -> (actors.context.Tuning field, least, most seconds)
_RECONCILIATION = {
    "round_s": ("reconcile_round_s", 0.1, 86_400.0),
    "external_only_grace_s": ("external_only_grace_s", 0.0, 30 * 86_400.0),
    "balance_check_s": ("balance_check_s", 0.1, 86_400.0),
    "balance_drift_persist_s": ("balance_drift_persist_s", 0.0, 30 * 86_400.0),
}


def reconciliation_section(path: Path, section: object) -> tuple[tuple[str, float], ...]:
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [reconciliation] is a table")
    found = []
    for key, value in section.items():
        if key not in _RECONCILIATION:
            raise ConfigError(
                f"{path}: [reconciliation] {key}: one of {', '.join(sorted(_RECONCILIATION))}"
            )
        field, least, most = _RECONCILIATION[key]
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not least <= value <= most
        ):
            raise ConfigError(f"{path}: [reconciliation] {key} is {least} to {most} seconds")
        found.append((field, float(value)))
    return tuple(sorted(found))


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
