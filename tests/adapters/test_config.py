"""`serve`'s configuration: a TOML file, then environment variables, then flags, each overriding
the one before; anything unusable is a one-line ConfigError, never a half-read config."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from adapters import affinity
from adapters.config import ConfigError, load, load_bank_accounts
from engine import policy, sanctions
from engine.pricing import Requote, RequotePolicy

SAMPLE_SDN = sanctions.SAMPLE_FILES[0]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(
        '[server]\nport = 9000\nhost = "0.0.0.0"\n'
        "[rails]\nsim_speed = 5\n"
        f'[inbound.secrets]\n"bank-sim" = "{SECRET}"\n'
    )
    config = load({"port": 9100}, file, env={"STABLERAIL_SIM_SPEED": "7"})
    assert (config.host, config.port, config.sim_speed) == ("0.0.0.0", 9100, 7.0)
    assert config.inbound_secrets == (("bank-sim", SECRET),)
    env = {"STABLERAIL_INBOUND_SECRETS": f"bitso-sim={SECRET},bank-sim={SECRET}"}
    assert dict(load({}, None, env=env).inbound_secrets) == {
        "bitso-sim": SECRET,
        "bank-sim": SECRET,
    }


@pytest.mark.skipif(affinity.usable_cpus() is None, reason="keeping to one core is Linux's")
def test_the_core_to_keep_to_comes_from_the_file_the_environment_or_the_flag(
    tmp_path: Path,
) -> None:
    usable = affinity.usable_cpus()
    assert usable is not None
    core = min(usable)
    file = tmp_path / "serve.toml"
    file.write_text(f"[server]\ncpu = {core}\n")
    assert load({}, None, env={}).cpu is None  # any core unless told
    assert load({}, file, env={}).cpu == core
    assert load({}, None, env={"STABLERAIL_CPU": str(core)}).cpu == core
    assert load({"cpu": core}, None, env={}).cpu == core
    with pytest.raises(ConfigError, match="cpu must be a number"):
        load({}, None, env={"STABLERAIL_CPU": "first"})
    with pytest.raises(ConfigError, match="is not one this process may run on"):
        load({"cpu": max(usable) + 1000}, None, env={})
    with pytest.raises(ConfigError, match="is not one this process may run on"):
        load({"cpu": -1}, None, env={})


@pytest.mark.parametrize(
    ("flags", "env", "says"),
    [
        ({"port": 70000}, {}, "port must be 0 to 65535"),
        ({"sim_speed": 0}, {}, "sim_speed must be"),
        ({"rails": "real"}, {}, "this build serves sim or sim-instant"),
        ({}, {"STABLERAIL_PORT": "eighty"}, "port must be a number"),
        ({}, {"STABLERAIL_WEBHOOKS_ALLOW_PRIVATE": "maybe"}, "must be true or false"),
        ({}, {"STABLERAIL_INBOUND_SECRETS": "bank-sim=hunter2"}, "inbound secret for bank-sim"),
        ({}, {"STABLERAIL_INBOUND_SECRETS": f"={SECRET}"}, "(no provider)"),
    ],
)
def test_unusable_settings_are_refused_with_a_reason(
    flags: dict[str, object], env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=None) as refused:
        load(flags, None, env=env)
    assert says in str(refused.value)
    assert "hunter2" not in str(refused.value)  # a secret never appears in an error


def test_a_config_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load({}, tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError):
        load({}, broken)


def test_policy_and_sanctions_files_are_read_and_checked_whole(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_bytes(policy.DEFAULT_DOCUMENT)
    listed = tmp_path / "SDN.CSV"
    listed.write_text(SAMPLE_SDN.text + sanctions.sdn_row("90100", "NEW ENTRY", "", "SDGT", ""))
    file = tmp_path / "serve.toml"
    file.write_text(f'[policy]\nfile = "{rules}"\n[sanctions]\nfile = "{listed}"\n')
    config = load({}, file, env={})
    assert config.policy_document == policy.DEFAULT_DOCUMENT
    assert config.sanctions_list is not None
    assert config.sanctions_list.listed.entries == 6
    assert config.sanctions.max_age_days == 7
    assert load({}, None, env={}).sanctions_list is None
    rules.write_text('[[rules]]\nid = "x"\naction = "approve"\n')
    with pytest.raises(ConfigError, match="approvers is 1 to 5"):
        load({}, file, env={})
    rules.write_bytes(policy.DEFAULT_DOCUMENT)
    listed.write_text("not,a,list\n")
    with pytest.raises(ConfigError, match=r"SDN\.CSV line 1: 3 columns"):
        load({}, None, env={"STABLERAIL_SANCTIONS_FILE": str(listed)})


def test_a_directory_of_ofac_files_with_its_date(tmp_path: Path) -> None:
    """A directory gives every file in it with OFAC's names (others are left alone); the
    publication date, when configured, is the list's date; a Windows-1252 file is read."""
    ofac = tmp_path / "ofac"
    ofac.mkdir()
    for f in sanctions.SAMPLE_FILES:
        (ofac / f.name.lower()).write_text(f.text)
    (ofac / "README.txt").write_text("not a list")
    (ofac / "CONS_PRIM.CSV").write_bytes(
        sanctions.sdn_row("17001", "CAF\u00c9 EXAMPLE", "", "SSI", "").encode("cp1252") + b"\r\n"
    )
    file = tmp_path / "serve.toml"
    file.write_text(f'[sanctions]\nfiles = ["{ofac}"]\npublished = 2026-11-30\nmax_age_days = 3\n')
    config = load({}, file, env={})
    loaded = config.sanctions_list
    assert loaded is not None
    assert [Path(p).name for p in loaded.sources] == ["CONS_PRIM.CSV", "alt.csv", "sdn.csv"]
    assert loaded.listed.holdings.lists == {"CONS": 1, "SDN": 5}
    assert "cafe example" in loaded.listed.names
    assert loaded.file_date == 1_795_996_800 * 1_000_000  # 2026-11-30T00:00:00Z
    assert config.sanctions.max_age_days == 3
    env = {"STABLERAIL_SANCTIONS_FILE": f"{ofac / 'sdn.csv'}{os.pathsep}{ofac / 'alt.csv'}"}
    from_env = load({}, None, env=env).sanctions_list
    assert from_env is not None and from_env.listed.holdings.aliases == 4


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ('files = ["{dir}/nothing-here"]', "cannot read the sanctions list"),
        ('files = ["{dir}/empty"]', "no sanctions list files at"),
        ('files = ["{dir}/SDN.CSV"]\npublished = "last week"', "published is a date"),
        ('files = ["{dir}/SDN.CSV"]\nmax_age_days = 0', "max_age_days is at least 1"),
        ('files = "SDN.CSV"', "[sanctions] files is a list of paths"),
    ],
)
def test_unusable_sanctions_settings_are_refused(tmp_path: Path, section: str, says: str) -> None:
    (tmp_path / "SDN.CSV").write_text(SAMPLE_SDN.text)
    file = tmp_path / "serve.toml"
    (tmp_path / "empty").mkdir()
    file.write_text("[sanctions]\n" + section.format(dir=tmp_path))
    with pytest.raises(ConfigError) as refused:
        load({}, file, env={})
    assert says in str(refused.value)


def test_bank_accounts_are_read_and_checked(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(
        '[[bank_accounts]]\nbank = "commerz"\naccount = "DE89 3704 0044 0532 0130 00"\n'
        'currency = "EUR"\ntimezone = "Europe/Berlin"\n'
        '[[bank_accounts]]\nbank = "chase"\naccount = "000123456789"\ncurrency = "USD"\n'
    )
    config = load({}, file, env={})
    assert [(a.bank, a.account, a.currency, a.timezone) for a in config.bank_accounts] == [
        ("commerz", "DE89370400440532013000", "EUR", "Europe/Berlin"),
        ("chase", "000123456789", "USD", "UTC"),
    ]
    assert load_bank_accounts(file) == config.bank_accounts
    assert load_bank_accounts(None) == ()


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('bank = "a:b"\naccount = "X1"\ncurrency = "EUR"', "bank is a name"),
        ('bank = "b"\naccount = "DE89-3704"\ncurrency = "EUR"', "account is an IBAN"),
        ('bank = "b"\naccount = "X1"\ncurrency = "EURO"', "currency is an ISO 4217 code"),
        ('bank = "b"\naccount = "X1"\ncurrency = "EUR"\ntimezone = "Mars/Olympus"',
         "time zone 'Mars/Olympus' is not in the time zone database"),
        ('bank = "b"\naccount = "X1"\ncurrency = "EUR"\niban = "X"', "unknown keys iban"),
    ],
)  # fmt: skip
def test_unusable_bank_accounts_are_refused(tmp_path: Path, table: str, says: str) -> None:
    file = tmp_path / "serve.toml"
    file.write_text("[[bank_accounts]]\n" + table + "\n")
    with pytest.raises(ConfigError, match="bank_accounts 1: ") as refused:
        load({}, file, env={})
    assert says in str(refused.value)


def test_an_account_configured_twice_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    one = '[[bank_accounts]]\nbank = "b"\naccount = "{}"\ncurrency = "EUR"\n'
    file.write_text(one.format("X1") + one.format("x1"))
    with pytest.raises(ConfigError, match="account X1 is configured twice"):
        load_bank_accounts(file)


EVM = (
    '[rails]\nkind = "evm"\n[evm]\nrpc_url = "http://127.0.0.1:8545"\nchain_id = 31337\n'
    'keystore = "treasury.json"\npassphrase_file = "treasury.pass"\nstart_block = 7\n'
    'finality = "depth"\nfinality_depth = 32\npoll_s = 0.5\nrpc_timeout_s = 3\n'
    "confirmations = 20\n"
    '[evm.tokens]\nUSDC = "0xA0b86991c6218b36c1d19d4a2e9eB0cE3606eB48"\n'
)


def test_the_evm_section_is_read_whole(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(EVM)
    config = load({}, file, env={})
    assert config.rails == "evm" and config.evm is not None and config.evm_poll_s == 0.5
    network = config.evm.network
    assert (network.rpc_url, network.chain_id, network.start_block) == (
        "http://127.0.0.1:8545", 31337, 7,
    )  # fmt: skip
    assert network.tokens == (("USDC", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"),)
    assert (network.use_finalized_tag, network.finality_depth) == (False, 32)
    assert network.rpc_timeout_s == 3.0
    assert config.evm.confirmations == 20
    assert config.evm.keystore == Path("treasury.json")
    assert config.evm.passphrase_file == Path("treasury.pass")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (('rpc_url = "http://127.0.0.1:8545"', 'rpc_url = "ws://x"'), "rpc_url is the node's"),
        (("chain_id = 31337", "chain_id = 0"), "chain_id is the chain's EIP-155 id"),
        (('keystore = "treasury.json"\n', ""), "keystore is the path"),
        (('USDC = "0xA0b8', 'USD = "0xA0b8'), "USD is not a stablecoin"),
        (('USDC = "0xA0b86991c6218b36c1d19d4a2e9eB0cE3606eB48"', 'USDC = "0x12"'), "0x address"),
        (('finality = "depth"', 'finality = "soon"'), 'finality is "finalized" or "depth"'),
        (("finality_depth = 32", "finality_depth = 0"), "finality_depth is a whole number"),
        (("poll_s = 0.5", "poll_s = 0"), "poll_s is 0.05 to 60.0 seconds"),
        (("confirmations = 20", "confirmations = 6"), "confirmations is a whole number from 12"),
        (("start_block = 7", "start_block = 7\nrpc = 1"), "unknown keys rpc"),
        ((EVM, '[rails]\nkind = "evm"\n'), "needs an [evm]"),
    ],
)
def test_an_unusable_evm_section_is_refused_with_a_reason(
    tmp_path: Path, change: tuple[str, str], says: str
) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(EVM.replace(*change))
    with pytest.raises(ConfigError) as refused:
        load({}, file, env={})
    assert says in str(refused.value)


def test_the_reconciliation_section_tunes_the_reconciler(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    file.write_text("[reconciliation]\nround_s = 5\nbalance_drift_persist_s = 0\n")
    assert load({}, file, env={}).reconciliation == (
        ("balance_drift_persist_s", 0.0), ("reconcile_round_s", 5.0),
    )  # fmt: skip
    file.write_text("[reconciliation]\nround_s = 0\n")
    with pytest.raises(ConfigError, match=re.escape("round_s is 0.1 to 86400.0 seconds")):
        load({}, file, env={})
    file.write_text("[reconciliation]\nrounds = 5\n")
    with pytest.raises(ConfigError, match="rounds: one of"):
        load({}, file, env={})


PRICING = """
[pricing]
quote_deadline_s = 1.5
prefunded_corridors = ["USD-MXN"]
[pricing.breaker]
failures_to_open = 3
open_s = 45
[pricing.requote]
tolerance_bps = 25
[pricing.requote.clients.acme]
mode = "require_new"
[pricing.slippage]
tolerance_bps = 40
[pricing.slippage.corridors.USD-MXN]
tolerance_bps = 25
[providers.rampa-sim]
compliance = "under_review"
[providers.bitso-sim.corridors.USD-MXN]
min_amount = "100"
max_amount = "50000.00"
[providers.bitso-sim.deposit_addresses]
ethereum = "0xB1b1B1b1B1b1b1b1b1b1b1b1b1b1b1b1B1B1b1B1"
"""


def test_the_pricing_sections_set_the_deadline_the_breaker_and_each_providers_terms(
    tmp_path: Path,
) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(PRICING)
    pricing = load({}, file, env={}).pricing
    assert pricing.quote_deadline_s == 1.5
    assert (pricing.breaker.failures_to_open, pricing.breaker.open_us) == (3, 45_000_000)
    assert pricing.breaker.successes_to_close == 2, "unset keys keep their defaults"
    terms = dict(pricing.terms)
    assert terms["rampa-sim"].compliance.value == "under_review" and terms["rampa-sim"].enabled
    limits = terms["bitso-sim"].corridors["USD-MXN"]
    assert (limits.min_amount, limits.max_amount) == (100_00, 50_000_00)
    assert terms["bitso-sim"].deposit_addresses == {"ethereum": "0x" + "b1" * 20}
    assert terms["rampa-sim"].deposit_addresses == {}, "no address: no rebalancing to it"
    assert pricing.requote == RequotePolicy(mode=Requote.AUTO, tolerance_bps=25)
    assert pricing.requote_by_client == (("acme", RequotePolicy(mode=Requote.REQUIRE_NEW)),)
    assert (pricing.slippage_bps, pricing.slippage_by_corridor) == (40, (("USD-MXN", 25),))
    assert pricing.prefunded_corridors == {"USD-MXN"}


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("[pricing]\nquote_deadline_s = 0\n", "quote_deadline_s is a number from 0.05"),
        ("[pricing]\ndeadline = 1\n", "deadline is not one of quote_deadline_s, breaker"),
        ("[pricing.breaker]\nfailures_to_open = 0\n", "failures_to_open is a whole number"),
        ('[providers.x]\ncompliance = "fine"\n', "compliance is one of approved"),
        ('[pricing.requote]\nmode = "ask"\n', "mode is one of auto, require_new"),
        ("[pricing.requote]\ntolerance_bps = -1\n", "tolerance_bps is a whole number from 0"),
        ("[pricing.requote.clients.acme]\nbps = 1\n", "bps is not one of mode, tolerance_bps"),
        ('[providers.x]\nenabled = "yes"\n', "enabled is true or false"),
        ("[providers.x.corridors.USD-JPY]\n", "USD-JPY: not a corridor"),
        ("[pricing.slippage]\ntolerance_bps = 5000\n", "tolerance_bps is a whole number from 0"),
        ("[pricing.slippage.corridors.USD-JPY]\n", "USD-JPY]: not a corridor"),
        ('[pricing]\nprefunded_corridors = ["USD-USDC"]\n', "USD-USDC is not a corridor paid"),
        ('[pricing]\nprefunded_corridors = "USD-MXN"\n', "is a list of corridor ids"),
        ('[providers.x.deposit_addresses]\ntron = "0x"\n', "tron is not one of ['ethereum']"),
        ('[providers.x.deposit_addresses]\nethereum = "0x12"\n', "ethereum is a 0x address"),
        ("[providers.x.corridors.USD-MXN]\nmin_amount = 5\n", "min_amount is an amount in USD"),
        ('[providers.x.corridors.USD-MXN]\nmin_amount = "1.001"\n', "an amount in USD"),
        (
            '[providers.x.corridors.USD-MXN]\nmin_amount = "10"\nmax_amount = "5"\n',
            "max_amount is below min_amount",
        ),
    ],
)
def test_unusable_pricing_settings_are_refused(tmp_path: Path, toml: str, says: str) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(says)):
        load({}, file, env={})


def test_liquidity_thresholds_are_read_and_checked(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(
        '[[liquidity]]\naccount = "treasury"\ncurrency = "USDC"\nmin = "1000"\n'
        '[[liquidity]]\naccount = "provider:bitso-sim"\ncurrency = "USDC"\nmin = "10"\n'
        'max = "20.5"\n'
    )
    treasury, bitso = load({}, file, env={}).pricing.liquidity
    assert (treasury.account, treasury.min_amount, treasury.max_amount) == (
        "treasury", 1_000_000_000, None
    )  # fmt: skip
    assert (bitso.min_amount, bitso.max_amount) == (10_000_000, 20_500_000)
    head = '[[liquidity]]\naccount = "treasury"\n'
    for toml, says in (
        (
            '[[liquidity]]\naccount = "client:x:available"\ncurrency = "USDC"\nmin = "1"\n',
            "account",
        ),
        (head + 'currency = "MXN"\nmin = "1"\n', "a stablecoin"),
        (head + 'currency = "USDC"\n', "min, max or both"),
        (head + 'currency = "USDC"\nmin = "2"\nmax = "1"\n', "max is below min"),
    ):
        file.write_text(toml)
        with pytest.raises(ConfigError, match=re.escape(says)):
            load({}, file, env={})
