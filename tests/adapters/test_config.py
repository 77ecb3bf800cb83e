"""`serve`'s configuration: a TOML file, then environment variables, then flags, each overriding
the one before; anything unusable is a one-line ConfigError, never a half-read config."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import ConfigError, load
from engine import policy, sanctions

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
    listed = tmp_path / "sdn.csv"
    listed.write_text(sanctions.SAMPLE_LIST + '90100,"NEW ENTRY",entity,CYBER2,""\n')
    file = tmp_path / "serve.toml"
    file.write_text(f'[policy]\nfile = "{rules}"\n[sanctions]\nfile = "{listed}"\n')
    config = load({}, file, env={})
    assert config.policy_document == policy.DEFAULT_DOCUMENT
    assert config.sanctions_list is not None and "NEW ENTRY" in config.sanctions_list
    assert load({}, None, env={}).sanctions_list is None
    rules.write_text('[[rules]]\nid = "x"\naction = "approve"\n')
    with pytest.raises(ConfigError, match="approvers is 1 to 5"):
        load({}, file, env={})
    rules.write_bytes(policy.DEFAULT_DOCUMENT)
    listed.write_text("not,a,list\n")
    with pytest.raises(ConfigError, match="line 1"):
        load({}, None, env={"STABLERAIL_SANCTIONS_FILE": str(listed)})
