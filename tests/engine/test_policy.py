"""The policy engine decides from data: a decision table over one rule set (each line a transfer's
facts and the rule, action and code it must get), the shipped default rule set at its bounds,
and a document with problems refused whole with every problem named."""

from __future__ import annotations

import pytest

from engine import policy
from engine.destinations import BankDestination, Destination, WalletDestination
from engine.policy import Action

H = policy.US_PER_HOUR
NOON = 1_795_564_800_000_000 + 12 * H  # 2026-11-25T12:00:00Z
LISTED = "0x" + "11" * 20
FRESH = "0x" + "22" * 20
CLABE = "032180000118359719"
SERVED = frozenset({"USD-USDC", "EUR-EURC", "USD-MXN"})

TABLE = b"""
cooling_off_hours = 48
[usd_rates]
EUR = "1.10"
EURC = "1.10"
MXN = "0.05"

[[allowlist]]
client = "acme"
destination = "0x1111111111111111111111111111111111111111"

[[rules]]
id = "sanctioned-client"
action = "block"
when = { clients = ["blocked-co"] }

[[rules]]
id = "no-eur-to-wallets-at-night"
action = "block"
when = { corridors = ["EUR-EURC"], hours_utc = [22, 6] }

[[rules]]
id = "bots-need-two"
action = "approve"
approvers = 2
when = { initiators = ["bot"], amount_over = "1000.00" }

[[rules]]
id = "new-beneficiary-over-500"
action = "approve"
approvers = 1
when = { beneficiary_new = true, beneficiary_listed = false, amount_over = "500.00" }

[[rules]]
id = "mx-banks-up-to-50k"
action = "allow"
when = { destination_kinds = ["bank"], countries = ["MX"], amount_up_to = "50000.00" }

[[rules]]
id = "wallets-up-to-5k"
action = "allow"
when = { destination_kinds = ["wallet"], amount_up_to = "5000.00" }

[[rules]]
id = "listed-up-to-100k"
action = "allow"
when = { beneficiary_listed = true, amount_up_to = "100000.00" }

[[limits]]
id = "daily-volume"
scope = "client"
window_hours = 24
volume_max = "200000.00"

[[limits]]
id = "beneficiary-count"
scope = "beneficiary"
window_hours = 1
count_max = 3
clients = ["acme"]
"""


def rules() -> policy.RuleSet:
    doc = policy.parse_document(TABLE)
    assert isinstance(doc, policy.RuleSetDoc), doc
    compiled = policy.compile_rules(doc, 7)
    assert isinstance(compiled, policy.RuleSet), compiled
    return compiled


def wallet(address: str = FRESH) -> WalletDestination:
    return WalletDestination(chain="ethereum", address=address)


def bank() -> BankDestination:
    return BankDestination(country="MX", clabe=CLABE, name="Ana")


def facts(
    amount: int,
    *,
    source: str = "USD",
    target: str = "USDC",
    destination: Destination | None = None,
    client: str = "acme",
    initiator: str = "alice",
    at: int = NOON,
    first_seen: int | None = NOON - 100 * H,
) -> policy.Facts:
    return policy.Facts(
        client_id=client,
        initiator=initiator,
        source_currency=source,
        target_currency=target,
        destination=destination or (bank() if target == "MXN" else wallet()),
        amount=amount,
        at=at,
        beneficiary_first_seen=first_seen,
    )


# (why, facts, rule id, action, code, approvals)
CASES = [
    ("a blocked client is blocked whatever else", facts(100, client="blocked-co"),
     "sanctioned-client", Action.BLOCK, "policy_blocked", 0),
    ("small wallet payout", facts(100_00), "wallets-up-to-5k", Action.ALLOW, None, 0),
    ("wallet payout at the bound", facts(5_000_00), "wallets-up-to-5k", Action.ALLOW, None, 0),
    ("a cent over the wallet bound, unlisted: default deny", facts(5_000_01),
     policy.DEFAULT_DENY, Action.BLOCK, "policy_blocked", 0),
    ("over the wallet bound to a listed address", facts(20_000_00, destination=wallet(LISTED)),
     "listed-up-to-100k", Action.ALLOW, None, 0),
    ("listed for acme only, not for another client",
     facts(20_000_00, destination=wallet(LISTED), client="other"),
     policy.DEFAULT_DENY, Action.BLOCK, "policy_blocked", 0),
    ("listed, over its bound", facts(100_000_01, destination=wallet(LISTED)),
     policy.DEFAULT_DENY, Action.BLOCK, "policy_blocked", 0),
    ("MX bank payout", facts(40_000_00, target="MXN"), "mx-banks-up-to-50k", Action.ALLOW,
     None, 0),
    ("MX bank payout at its bound", facts(50_000_00, target="MXN"), "mx-banks-up-to-50k",
     Action.ALLOW, None, 0),
    ("MX bank payout over its bound", facts(50_000_01, target="MXN"), policy.DEFAULT_DENY,
     Action.BLOCK, "policy_blocked", 0),
    ("a bot over 1,000.00 needs two", facts(1_000_01, initiator="bot"), "bots-need-two",
     Action.APPROVE, None, 2),
    ("a bot at 1,000.00 does not", facts(1_000_00, initiator="bot"), "wallets-up-to-5k",
     Action.ALLOW, None, 0),
    ("a new beneficiary over 500.00 needs one", facts(500_01, first_seen=None),
     "new-beneficiary-over-500", Action.APPROVE, None, 1),
    ("a beneficiary first paid inside the cooling-off is still new",
     facts(600_00, first_seen=NOON - 47 * H), "new-beneficiary-over-500", Action.APPROVE, None, 1),
    ("cooled off: no approval", facts(600_00, first_seen=NOON - 48 * H), "wallets-up-to-5k",
     Action.ALLOW, None, 0),
    ("a new but listed beneficiary needs none", facts(600_00, destination=wallet(LISTED),
     first_seen=None), "wallets-up-to-5k", Action.ALLOW, None, 0),
    ("a new beneficiary at 500.00 needs none", facts(500_00, first_seen=None),
     "wallets-up-to-5k", Action.ALLOW, None, 0),
    ("EUR converts at the rule set's rate (4,545.45 EUR = 4,999.995 USD, rounded up)",
     facts(4_545_45, source="EUR", target="EURC"), "wallets-up-to-5k", Action.ALLOW, None, 0),
    ("4,545.46 EUR is over 5,000.00 USD", facts(4_545_46, source="EUR", target="EURC"),
     policy.DEFAULT_DENY, Action.BLOCK, "policy_blocked", 0),
    ("EURC to a wallet: validation allows it, no provider serves it",
     facts(4_545_450_000, source="EURC", target="EURC"),
     policy.NO_PROVIDER, Action.BLOCK, "corridor_unsupported", 0),
    ("EUR to wallets at 23:00 UTC", facts(100_00, source="EUR", target="EURC", at=NOON + 11 * H),
     "no-eur-to-wallets-at-night", Action.BLOCK, "policy_blocked", 0),
    ("EUR to wallets at 05:59 UTC", facts(100_00, source="EUR", target="EURC",
     at=NOON - 6 * H - 1), "no-eur-to-wallets-at-night", Action.BLOCK, "policy_blocked", 0),
    ("EUR to wallets at 06:00 UTC", facts(100_00, source="EUR", target="EURC", at=NOON - 6 * H),
     "wallets-up-to-5k", Action.ALLOW, None, 0),
    ("USD to wallets at 23:00 UTC", facts(100_00, at=NOON + 11 * H), "wallets-up-to-5k",
     Action.ALLOW, None, 0),
    ("a corridor no provider serves", facts(100_00, source="EUR", target="MXN"),
     policy.NO_PROVIDER, Action.BLOCK, "corridor_unsupported", 0),
    ("no provider outranks every rule", facts(100, client="blocked-co", source="EUR",
     target="MXN"), policy.NO_PROVIDER, Action.BLOCK, "corridor_unsupported", 0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("why", "given", "rule_id", "action", "code", "approvals"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decision_table(
    why: str,
    given: policy.Facts,
    rule_id: str,
    action: Action,
    code: str | None,
    approvals: int,
) -> None:
    decision = policy.evaluate(rules(), given, SERVED)
    got = (decision.rule_id, decision.action, decision.code, decision.approvals_required)
    assert got == (rule_id, action, code, approvals), why
    assert decision.version == 7
    assert policy.decision_problem(decision) is None


def test_limits_travel_with_what_is_allowed_and_apply_per_client() -> None:
    allowed = policy.evaluate(rules(), facts(100_00), SERVED)
    assert [c.limit_id for c in allowed.limits] == ["daily-volume", "beneficiary-count"]
    other = policy.evaluate(rules(), facts(100_00, client="other", destination=wallet(LISTED)),
                            SERVED)  # fmt: skip
    assert other.rule_id == "wallets-up-to-5k"
    assert [c.limit_id for c in other.limits] == ["daily-volume"]
    blocked = policy.evaluate(rules(), facts(100, client="blocked-co"), SERVED)
    assert blocked.limits == ()


def test_a_dry_run_says_why_each_earlier_rule_passed() -> None:
    explained = policy.explain(rules(), facts(20_000_00, destination=wallet(LISTED)), SERVED)
    assert explained.decision.rule_id == "listed-up-to-100k"
    assert dict(explained.passed) == {
        "sanctioned-client": "client",
        "no-eur-to-wallets-at-night": "corridor",
        "bots-need-two": "initiator",
        "new-beneficiary-over-500": "beneficiary allow-list",
        "mx-banks-up-to-50k": "destination kind",
        "wallets-up-to-5k": "amount over the bound",
    }


def test_the_usd_amount_and_beneficiary_are_recorded() -> None:
    given = facts(1_000_00, source="EUR", target="EURC", destination=wallet("0x" + "AB" * 20))
    decision = policy.evaluate(rules(), given, SERVED)
    assert decision.usd_amount == 1_100_00
    assert decision.beneficiary == "ethereum:0x" + "ab" * 20


# The shipped default (the numbers): allow up to 10,000.00, one approver above that up to
# 250,000.00, block above, 1,000,000.00 a day per client.
DEFAULT_CASES = [
    (1, "allow-up-to-10k", Action.ALLOW, 0),
    (10_000_00, "allow-up-to-10k", Action.ALLOW, 0),
    (10_000_01, "approve-over-10k", Action.APPROVE, 1),
    (250_000_00, "approve-over-10k", Action.APPROVE, 1),
    (250_000_01, "block-over-250k", Action.BLOCK, 0),
]


@pytest.mark.parametrize(("cents", "rule_id", "action", "approvals"), DEFAULT_CASES)
def test_the_default_rule_set(cents: int, rule_id: str, action: Action, approvals: int) -> None:
    decision = policy.evaluate(policy.default_rules(1), facts(cents), SERVED)
    assert (decision.rule_id, decision.action, decision.approvals_required) == (
        rule_id,
        action,
        approvals,
    )
    if action is not Action.BLOCK:
        (limit,) = decision.limits
        assert (limit.limit_id, limit.volume_max, limit.window_us) == (
            "client-24h-volume",
            1_000_000_00,
            24 * H,
        )


BAD_DOCUMENTS = [
    (b"[[rules]]\nid = 'x'\naction = 'fly'\n", "Invalid enum value 'fly'"),
    (b"[[rules]]\nid = 'x'\naction = 'allow'\ncolour = 'red'\n", "unknown field `colour`"),
    (b"rules = 'x'", "Expected `array`"),
    (b"not toml at all = = =", "Expected '=' after a key"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"rules": 3}', "Expected `array`"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_DOCUMENTS)
def test_a_malformed_document_is_named(text: bytes, problem: str) -> None:
    parsed = policy.parse_document(text)
    assert isinstance(parsed, list) and problem in parsed[0], parsed


def test_every_problem_of_a_document_is_listed_and_nothing_compiles() -> None:
    text = b"""
usd_rates = { EUR = "-1", XXX = "1" }
[[allowlist]]
destination = "not an address"
[[rules]]
id = "bad id!"
action = "approve"
approvers = 9
when = { amount_over = "12.345", hours_utc = [3], source_currencies = ["BTC"] }
[[rules]]
id = "default_deny"
action = "block"
code = "insufficient_funds"
[[rules]]
id = "dup"
action = "allow"
approvers = 1
[[limits]]
id = "dup"
scope = "client"
window_hours = 0
"""
    parsed = policy.parse_document(text)
    assert isinstance(parsed, policy.RuleSetDoc)
    problems = policy.compile_rules(parsed, 1)
    assert isinstance(problems, list)
    joined = "\n".join(problems)
    for expected in (
        "usd_rates.EUR",
        "XXX is not a known currency",
        "no rate for",
        "allowlist[0]",
        "an id is 1 to 64",
        "approvers is 1 to 5",
        "amount_over",
        "hours_utc",
        "BTC is not a known currency",
        "code is one of",
        "approvers goes with action = approve",
        "ids must be unique",
        "engine's own rule ids",
        "window_hours is 1 to",
        "names volume_max, count_max or both",
    ):
        assert expected in joined, (expected, problems)


def test_the_digest_names_the_content_not_its_spelling() -> None:
    """TOML and JSON spellings of the same rules are one rule set (same digest)."""
    toml = policy.parse_document(policy.DEFAULT_DOCUMENT)
    assert isinstance(toml, policy.RuleSetDoc)
    json_doc = policy.parse_document(policy.canonical(toml))
    assert isinstance(json_doc, policy.RuleSetDoc)
    a, b = policy.compile_rules(toml, 1), policy.compile_rules(json_doc, 2)
    assert isinstance(a, policy.RuleSet) and isinstance(b, policy.RuleSet)
    assert a.digest == b.digest


def test_only_currencies_a_transfer_can_be_paid_from_need_a_rate() -> None:
    doc = policy.parse_document(b'usd_rates = { EUR = "1.1", EURC = "1.1" }\n')
    assert isinstance(doc, policy.RuleSetDoc)
    assert isinstance(policy.compile_rules(doc, 1), policy.RuleSet)
    doc = policy.parse_document(b'usd_rates = { EUR = "1.1" }\n')
    assert isinstance(doc, policy.RuleSetDoc)
    assert policy.compile_rules(doc, 1) == ["usd_rates: no rate for EURC"]
