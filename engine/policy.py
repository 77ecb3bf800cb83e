"""The policy engine (Series 1 and 10): ordered, first-match rules over a transfer's facts,
decided from data and recorded with the rule that matched.

A rule set is a document (TOML or JSON) an operator writes: reference rates for USD-equivalent
amounts, an allow-list of beneficiaries, rules and rolling limits. `compile_rules` checks it whole
and turns it into a `RuleSet` with every amount in integer US cents; a document with any problem
is refused with every problem named, and the rule set in force stays. `evaluate` answers, for one
transfer's `Facts`, which rule matched first and what it decided (allow, block with a reason code,
or require N distinct approvers); what no rule allows is blocked by the implicit last rule,
`default_deny`. The decision carries the rolling limits that apply, so the store can check them in
the same commit as the hold they guard (store/judge.py), where two concurrent transfers cannot
both squeeze under a limit.

Policy and execution must agree: a corridor no provider serves is refused here, at creation, as
`corridor_unsupported` (rule `no_provider`), instead of failing later at the quote.

Pure: no clock (the caller passes `at`), no I/O (the caller reads the document and the facts).
"""

from __future__ import annotations

import enum
import hashlib
import tomllib

import msgspec

from engine import controls, destinations, limits, money, sanctions
from engine.destinations import Destination
from engine.results import Result

US_PER_HOUR = 3600 * 1_000_000
USD = money.ASSETS["USD"]

DEFAULT_DENY = "default_deny"
NO_PROVIDER = "no_provider"
# The codes a blocking rule may name (a limit names limit_exceeded).
BLOCK_CODES = frozenset({Result.policy_blocked, Result.limit_exceeded, Result.corridor_unsupported})
# The engine's own rules, decided before the rule set's: a freeze or halt in force, a corridor
# nothing can execute. A transfer they refuse is refused before its funds are even looked at.
ENGINE_RULES = frozenset({NO_PROVIDER, sanctions.RULE_ID, *controls.RULE_IDS.values()})
DECISION_CODES = BLOCK_CODES | frozenset(controls.CODES.values()) | {Result.sanctions_hit}
NONE_IN_FORCE = controls.Controls()


class Action(enum.StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    APPROVE = "approve"


class Scope(enum.StrEnum):
    CLIENT = "client"
    BENEFICIARY = "beneficiary"


# --- the document, as an operator writes it ------------------------------------------------------


class _Doc(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class MatchDoc(_Doc, frozen=True, kw_only=True):
    """Conditions, all of which must hold (an absent one always holds)."""

    clients: list[str] | None = None
    initiators: list[str] | None = None
    # Corridors as "SOURCE-TARGET" ("USD-MXN").
    corridors: list[str] | None = None
    source_currencies: list[str] | None = None
    target_currencies: list[str] | None = None
    destination_kinds: list[str] | None = None
    countries: list[str] | None = None
    # USD-equivalent bounds, decimal strings: matches amount > over and amount <= up_to.
    amount_over: str | None = None
    amount_up_to: str | None = None
    # [start, end) hours of the day, UTC; start > end wraps past midnight ([22, 6]).
    hours_utc: list[int] | None = None
    # Whether the destination is on the allow-list (for this client or for every client).
    beneficiary_listed: bool | None = None
    # Whether the destination is new: never paid by this client, or first paid within the
    # rule set's cooling-off period.
    beneficiary_new: bool | None = None


class RuleDoc(_Doc, frozen=True, kw_only=True):
    id: str
    action: Action
    description: str = ""
    # block: the code the transfer fails with; approve: how many distinct approvers.
    code: str = Result.policy_blocked.code
    approvers: int = 0
    when: MatchDoc = MatchDoc()


class LimitDoc(_Doc, frozen=True, kw_only=True):
    """A rolling window over transfers whose funds were locked and not released: their USD
    volume and their count, per client or per (client, beneficiary)."""

    id: str
    scope: Scope
    window_hours: int
    volume_max: str | None = None
    count_max: int | None = None
    # The clients it applies to (absent: every client).
    clients: list[str] | None = None


class AllowDoc(_Doc, frozen=True, kw_only=True):
    # Absent: listed for every client.
    client: str | None = None
    # An address ("0x…") or a CLABE.
    destination: str


class RuleSetDoc(_Doc, frozen=True, kw_only=True):
    description: str = ""
    # Currency -> USD per unit, a decimal string; USD and USDC are 1 unless given.
    usd_rates: dict[str, str] = {}
    cooling_off_hours: int = 24
    allowlist: list[AllowDoc] = []
    rules: list[RuleDoc] = []
    limits: list[LimitDoc] = []


# --- the compiled rule set -----------------------------------------------------------------------


class Match(msgspec.Struct, frozen=True, kw_only=True):
    clients: frozenset[str] | None = None
    initiators: frozenset[str] | None = None
    corridors: frozenset[str] | None = None
    source_currencies: frozenset[str] | None = None
    target_currencies: frozenset[str] | None = None
    destination_kinds: frozenset[str] | None = None
    countries: frozenset[str] | None = None
    over_cents: int | None = None
    up_to_cents: int | None = None
    hours_utc: tuple[int, int] | None = None
    beneficiary_listed: bool | None = None
    beneficiary_new: bool | None = None


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    action: Action
    code: str | None
    approvers: int
    match: Match


class LimitCheck(msgspec.Struct, frozen=True, kw_only=True):
    """A rolling limit as a decision carries it to the hold it guards."""

    limit_id: str
    scope: Scope
    window_us: int
    volume_max: int | None = None
    count_max: int | None = None


class Limit(msgspec.Struct, frozen=True, kw_only=True):
    check: LimitCheck
    clients: frozenset[str] | None


class RuleSet(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    digest: str
    rates: dict[str, int]
    cooling_off_us: int
    allowlist: frozenset[tuple[str | None, str]]
    rules: tuple[Rule, ...]
    limits: tuple[Limit, ...]
    doc: RuleSetDoc
    # Whether any rule asks about new beneficiaries (so Facts need beneficiary_first_seen).
    reads_first_seen: bool = False


# --- facts and decisions -------------------------------------------------------------------------


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """What policy knows about a transfer being created."""

    client_id: str
    initiator: str
    source_currency: str
    target_currency: str
    destination: Destination
    amount: int
    at: int
    # When this client first paid this destination (None: never).
    beneficiary_first_seen: int | None = None


class PolicyDecision(msgspec.Struct, frozen=True, kw_only=True):
    """Recorded on the transfer (TransferCreated.policy): which rule of which version decided
    what, on what USD-equivalent amount, and the rolling limits its hold must fit."""

    version: int
    rule_id: str
    action: Action
    code: str | None = None
    approvals_required: int = 0
    usd_amount: int
    beneficiary: str
    limits: tuple[LimitCheck, ...] = ()


class Explained(msgspec.Struct, frozen=True, kw_only=True):
    """A dry run: the decision, and for every rule up to the one that matched, why it did not."""

    decision: PolicyDecision
    passed: tuple[tuple[str, str], ...]


def corridor_id(source: str, target: str) -> str:
    return f"{source}-{target}"


def _corridor_ids() -> tuple[str, ...]:
    """Every corridor the engine's validation lets a client ask for ("USD-MXN", …)."""
    found = []
    for source in money.ASSETS.values():
        rail = money.rail_asset(source)
        for target in money.ASSETS.values():
            by_wallet = rail is not None and target.code == rail.code
            by_bank = rail is not None and target.code in destinations.BANK_COUNTRIES.values()
            if by_wallet or by_bank:
                found.append(corridor_id(source.code, target.code))
    return tuple(found)


CORRIDOR_IDS = _corridor_ids()


def beneficiary_key(destination: Destination) -> str:
    match destination:
        case destinations.WalletDestination(chain=chain, address=address):
            return f"{chain}:{destinations.normalize_address(address)}"
        case destinations.BankDestination(country=country, clabe=clabe):
            return f"{country}:{clabe}"


def _allow_key(text: str) -> str | None:
    """An allow-list destination as beneficiary keys name it."""
    if destinations.is_address(text):
        return f"ethereum:{destinations.normalize_address(text)}"
    if destinations.clabe_valid(text):
        return f"MX:{text}"
    return None


def usd_cents(amount: int, currency: str, rates: dict[str, int]) -> int | None:
    """`amount` minor units of `currency` in US cents, rounded up (a limit never undercounts);
    None when the rule set has no rate for the currency."""
    a = money.asset(currency)
    rate = rates.get(currency)
    if a is None or rate is None:
        return None
    numerator = amount * rate * money.POW10[USD.scale]
    denominator = money.POW10[a.scale] * money.POW10[limits.rate_decimals]
    return -(-numerator // denominator)


# --- compiling a document ------------------------------------------------------------------------


def parse_document(text: bytes) -> RuleSetDoc | list[str]:
    """A TOML or JSON rule set document (JSON if it starts with '{'), or its problems."""
    try:
        stripped = text.lstrip()
        if stripped.startswith(b"{"):
            return msgspec.json.decode(stripped, type=RuleSetDoc)
        return msgspec.convert(tomllib.loads(text.decode()), RuleSetDoc)
    except (msgspec.ValidationError, msgspec.DecodeError, tomllib.TOMLDecodeError) as e:
        return [str(e)]
    except UnicodeDecodeError:
        return ["the document is not UTF-8"]


def canonical(doc: RuleSetDoc) -> bytes:
    """The document's canonical JSON (sorted keys): what is journaled and what the digest names."""
    return msgspec.json.encode(doc, order="sorted")


def compile_rules(doc: RuleSetDoc, version: int) -> RuleSet | list[str]:
    problems: list[str] = []
    rates = {"USD": money.RATE_ONE.units, "USDC": money.RATE_ONE.units}
    for code, text in doc.usd_rates.items():
        rate = money.parse_rate(text)
        if money.asset(code) is None:
            problems.append(f"usd_rates: {code} is not a known currency")
        elif isinstance(rate, money.Rate):
            rates[code] = rate.units
        else:
            problems.append(f"usd_rates.{code}: {text!r} is not a positive decimal rate")
    # Amounts are judged in their source currency: every currency a transfer can be paid from
    # needs a rate (a payout-only currency such as MXN does not).
    sources = [a for a in money.ASSETS.values() if money.rail_asset(a) is not None]
    missing = sorted(a.code for a in sources if a.code not in rates)
    if missing:
        problems.append(f"usd_rates: no rate for {', '.join(missing)}")
    if not 0 <= doc.cooling_off_hours <= 24 * 365:
        problems.append("cooling_off_hours: 0 to 8760")
    allowlist: set[tuple[str | None, str]] = set()
    for i, entry in enumerate(doc.allowlist):
        key = _allow_key(entry.destination)
        if key is None:
            problems.append(f"allowlist[{i}]: {entry.destination!r} is no address or CLABE")
        else:
            allowlist.add((entry.client, key))
    rules = tuple(_rule(r, i, problems) for i, r in enumerate(doc.rules))
    ids = [r.id for r in doc.rules] + [limit.id for limit in doc.limits]
    if len(set(ids)) != len(ids):
        problems.append("rule and limit ids must be unique")
    if DEFAULT_DENY in ids or NO_PROVIDER in ids:
        problems.append(f"{DEFAULT_DENY} and {NO_PROVIDER} are the engine's own rule ids")
    if len(doc.rules) > limits.policy_rules_max or len(doc.limits) > limits.policy_limits_max:
        problems.append(
            f"at most {limits.policy_rules_max} rules and {limits.policy_limits_max} limits"
        )
    found_limits = tuple(_limit(lim, i, problems) for i, lim in enumerate(doc.limits))
    if problems:
        return problems
    return RuleSet(
        version=version,
        digest=hashlib.sha256(canonical(doc)).hexdigest(),
        rates=rates,
        cooling_off_us=doc.cooling_off_hours * US_PER_HOUR,
        allowlist=frozenset(allowlist),
        rules=rules,
        limits=found_limits,
        doc=doc,
        reads_first_seen=any(r.match.beneficiary_new is not None for r in rules),
    )


def _cents(text: str | None, where: str, problems: list[str]) -> int | None:
    if text is None:
        return None
    cents = money.parse_amount(text, USD)
    if isinstance(cents, Result):
        problems.append(f"{where}: {text!r} is not a USD amount ({cents.code})")
        return None
    return cents


def _names(values: list[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values is not None else None


def _rule(doc: RuleDoc, i: int, problems: list[str]) -> Rule:
    where = f"rules[{i}] ({doc.id})"
    if not _is_rule_id(doc.id):
        problems.append(f"{where}: an id is 1 to 64 letters, digits, '_', '.', '-'")
    code: str | None = None
    if doc.action is Action.BLOCK:
        result = Result.from_code(doc.code)
        if result not in BLOCK_CODES:
            problems.append(
                f"{where}: code is one of {', '.join(sorted(r.code for r in BLOCK_CODES))}"
            )
        code = doc.code
    if doc.action is Action.APPROVE and not 1 <= doc.approvers <= limits.approvals_required_max:
        problems.append(f"{where}: approvers is 1 to {limits.approvals_required_max}")
    if doc.action is not Action.APPROVE and doc.approvers:
        problems.append(f"{where}: approvers goes with action = approve")
    when = doc.when
    hours = None
    if when.hours_utc is not None:
        if len(when.hours_utc) != 2 or not all(0 <= h <= 24 for h in when.hours_utc):
            problems.append(f"{where}: hours_utc is [start, end], hours 0 to 24")
        else:
            hours = (when.hours_utc[0], when.hours_utc[1])
    for kind in when.destination_kinds or ():
        if kind not in ("wallet", "bank"):
            problems.append(f"{where}: destination_kinds are wallet or bank")
    for code_ in (when.source_currencies or []) + (when.target_currencies or []):
        if money.asset(code_) is None:
            problems.append(f"{where}: {code_} is not a known currency")
    match = Match(
        clients=_names(when.clients),
        initiators=_names(when.initiators),
        corridors=_names(when.corridors),
        source_currencies=_names(when.source_currencies),
        target_currencies=_names(when.target_currencies),
        destination_kinds=_names(when.destination_kinds),
        countries=_names(when.countries),
        over_cents=_cents(when.amount_over, f"{where}.amount_over", problems),
        up_to_cents=_cents(when.amount_up_to, f"{where}.amount_up_to", problems),
        hours_utc=hours,
        beneficiary_listed=when.beneficiary_listed,
        beneficiary_new=when.beneficiary_new,
    )
    return Rule(rule_id=doc.id, action=doc.action, code=code, approvers=doc.approvers, match=match)


def _limit(doc: LimitDoc, i: int, problems: list[str]) -> Limit:
    where = f"limits[{i}] ({doc.id})"
    if not _is_rule_id(doc.id):
        problems.append(f"{where}: an id is 1 to 64 letters, digits, '_', '.', '-'")
    if not 1 <= doc.window_hours <= limits.policy_window_hours_max:
        problems.append(f"{where}: window_hours is 1 to {limits.policy_window_hours_max}")
    if doc.volume_max is None and doc.count_max is None:
        problems.append(f"{where}: a limit names volume_max, count_max or both")
    if doc.count_max is not None and doc.count_max < 1:
        problems.append(f"{where}: count_max is at least 1")
    check = LimitCheck(
        limit_id=doc.id,
        scope=doc.scope,
        window_us=doc.window_hours * US_PER_HOUR,
        volume_max=_cents(doc.volume_max, f"{where}.volume_max", problems),
        count_max=doc.count_max,
    )
    return Limit(check=check, clients=_names(doc.clients))


def _is_rule_id(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in text)


# --- deciding ------------------------------------------------------------------------------------


def _listed(rules: RuleSet, client_id: str, beneficiary: str) -> bool:
    return (client_id, beneficiary) in rules.allowlist or (None, beneficiary) in rules.allowlist


def _is_new(rules: RuleSet, facts: Facts) -> bool:
    first = facts.beneficiary_first_seen
    return first is None or facts.at - first < rules.cooling_off_us


def _mismatch(rule: Rule, rules: RuleSet, facts: Facts, usd: int, beneficiary: str) -> str | None:
    """Why `rule` does not match these facts (None: it matches). Cheapest conditions first."""
    m = rule.match
    kind = "wallet" if isinstance(facts.destination, destinations.WalletDestination) else "bank"
    country = getattr(facts.destination, "country", None)
    if m.clients is not None and facts.client_id not in m.clients:
        return "client"
    if m.initiators is not None and facts.initiator not in m.initiators:
        return "initiator"
    corridor = corridor_id(facts.source_currency, facts.target_currency)
    if m.corridors is not None and corridor not in m.corridors:
        return "corridor"
    if m.source_currencies is not None and facts.source_currency not in m.source_currencies:
        return "source currency"
    if m.target_currencies is not None and facts.target_currency not in m.target_currencies:
        return "target currency"
    if m.destination_kinds is not None and kind not in m.destination_kinds:
        return "destination kind"
    if m.countries is not None and country not in m.countries:
        return "country"
    if m.over_cents is not None and not usd > m.over_cents:
        return "amount not over the bound"
    if m.up_to_cents is not None and not usd <= m.up_to_cents:
        return "amount over the bound"
    if m.hours_utc is not None and not _in_hours(m.hours_utc, facts.at):
        return "time of day"
    if m.beneficiary_listed is not None and (
        _listed(rules, facts.client_id, beneficiary) != m.beneficiary_listed
    ):
        return "beneficiary allow-list"
    if m.beneficiary_new is not None and _is_new(rules, facts) != m.beneficiary_new:
        return "beneficiary cooling-off"
    return None


def _in_hours(hours: tuple[int, int], at: int) -> bool:
    hour = (at // US_PER_HOUR) % 24
    start, end = hours
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end


def explain(
    rules: RuleSet,
    facts: Facts,
    served: frozenset[str],
    in_force: controls.Controls = NONE_IN_FORCE,
    screening: sanctions.Screening | None = None,
) -> Explained:
    """The decision for `facts`, with why each rule before the matching one passed it by.
    `served`: the corridors some provider serves (the data plane's capabilities); `in_force`:
    the freezes and halts an operator has switched on; `screening`: the sanctions screening of
    the transfer's parties (a hit refuses it)."""
    beneficiary = beneficiary_key(facts.destination)
    usd = usd_cents(facts.amount, facts.source_currency, rules.rates)
    assert usd is not None, "compile_rules requires a rate for every source currency"
    applying = tuple(
        limit.check
        for limit in rules.limits
        if limit.clients is None or facts.client_id in limit.clients
    )
    base = {"version": rules.version, "usd_amount": usd, "beneficiary": beneficiary}
    corridor = corridor_id(facts.source_currency, facts.target_currency)
    control = controls.refusal(in_force, facts.client_id, corridor)
    if control is not None:
        decision = PolicyDecision(
            rule_id=controls.RULE_IDS[control],
            action=Action.BLOCK,
            code=controls.CODES[control].code,
            **base,  # type: ignore[arg-type]
        )
        return Explained(decision=decision, passed=())
    if screening is not None and screening.hits:
        decision = PolicyDecision(
            rule_id=sanctions.RULE_ID,
            action=Action.BLOCK,
            code=Result.sanctions_hit.code,
            **base,  # type: ignore[arg-type]
        )
        return Explained(decision=decision, passed=())
    if corridor not in served:
        decision = PolicyDecision(
            rule_id=NO_PROVIDER,
            action=Action.BLOCK,
            code=Result.corridor_unsupported.code,
            **base,  # type: ignore[arg-type]
        )
        return Explained(decision=decision, passed=())
    passed: list[tuple[str, str]] = []
    for rule in rules.rules:
        why = _mismatch(rule, rules, facts, usd, beneficiary)
        if why is not None:
            passed.append((rule.rule_id, why))
            continue
        decision = PolicyDecision(
            rule_id=rule.rule_id,
            action=rule.action,
            code=rule.code,
            approvals_required=rule.approvers,
            limits=applying if rule.action is not Action.BLOCK else (),
            **base,  # type: ignore[arg-type]
        )
        return Explained(decision=decision, passed=tuple(passed))
    decision = PolicyDecision(
        rule_id=DEFAULT_DENY,
        action=Action.BLOCK,
        code=Result.policy_blocked.code,
        **base,  # type: ignore[arg-type]
    )
    return Explained(decision=decision, passed=tuple(passed))


def evaluate(
    rules: RuleSet,
    facts: Facts,
    served: frozenset[str],
    in_force: controls.Controls = NONE_IN_FORCE,
    screening: sanctions.Screening | None = None,
) -> PolicyDecision:
    return explain(rules, facts, served, in_force, screening).decision


def decision_problem(decision: PolicyDecision) -> str | None:
    """Why a decision cannot have come from `evaluate` (None: it can): the engine checks what it
    is handed, so a bug upstream cannot slip a malformed decision into the journal."""
    if decision.version < 0 or decision.usd_amount < 0 or not decision.beneficiary:
        return "version, amount and beneficiary"
    if decision.action is Action.BLOCK:
        if Result.from_code(decision.code or "") not in DECISION_CODES:
            return "a block names its code"
        if decision.approvals_required:
            return "a block requires no approval"
    elif decision.code is not None:
        return "only a block names a code"
    if decision.action is Action.APPROVE:
        if not 1 <= decision.approvals_required <= limits.approvals_required_max:
            return "an approval rule names 1 to 5 approvers"
    elif decision.approvals_required:
        return "only an approval rule requires approvers"
    return None


# --- the shipped default ------------------------------------------------------------------------

DEFAULT_DOCUMENT = b"""\
# stablerail's default rule set. Rules are tried top to bottom and the first that matches
# decides; what no rule allows is blocked (the engine's own last rule, default_deny).
# Amounts are USD-equivalent, converted with usd_rates (rounded up).
description = "default: allow up to 10,000.00; one approver up to 250,000.00; block above"
cooling_off_hours = 24

[usd_rates]
EUR = "1.08"
EURC = "1.08"
MXN = "0.058"

[[rules]]
id = "block-over-250k"
description = "Above 250,000.00 no approval suffices"
action = "block"
code = "policy_blocked"
when = { amount_over = "250000.00" }

[[rules]]
id = "approve-over-10k"
description = "Above 10,000.00 one approver who is not the initiator"
action = "approve"
approvers = 1
when = { amount_over = "10000.00" }

[[rules]]
id = "allow-up-to-10k"
description = "Up to 10,000.00 goes straight through"
action = "allow"
when = { amount_up_to = "10000.00" }

[[limits]]
id = "client-24h-volume"
scope = "client"
window_hours = 24
volume_max = "1000000.00"
"""


def default_rules(version: int = 0) -> RuleSet:
    doc = parse_document(DEFAULT_DOCUMENT)
    assert isinstance(doc, RuleSetDoc), doc
    rules = compile_rules(doc, version)
    assert isinstance(rules, RuleSet), rules
    return rules
