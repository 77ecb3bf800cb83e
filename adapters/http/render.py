"""What the API writes: the engine's values as API.md's JSON objects.

Money is a decimal string with exactly the currency's scale; timestamps are RFC 3339 UTC to the
second; ids are the engine's. Rendering is a pure function of the value, so a stored answer and a
webhook body are the same bytes every time they are rendered from the same journal prefix.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine import events as ev
from engine import liquidity, money
from engine.access import ApiKey
from engine.audit import AuditRow
from engine.policy import US_PER_HOUR, PolicyDecision
from engine.pricing import Desk
from engine.quotes import Answered, Quote
from engine.records import Recorded
from engine.sanctions import ListInForce
from engine.service import Balance, FeedEvent, LedgerLine
from engine.states import Status
from engine.timefmt import rfc3339
from engine.transfer import TransferState, approval_state, approvers, evolve, terms_hash
from engine.webhooks import Attempt, Endpoint

JSON = dict[str, Any]
_encoder = msgspec.json.Encoder()


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def amount(minor: int | None, currency: str) -> str | None:
    if minor is None:
        return None
    asset = money.asset(currency)
    assert asset is not None, currency
    return money.format_amount(minor, asset)


def transfer(state: TransferState) -> JSON:
    quote = state.quote
    if state.mined is not None:
        tx_hash: str | None = state.mined.tx_hash
    else:
        tx_hash = state.txs[-1].tx_hash if state.txs else None
    failure = None
    if state.failure_code is not None:
        failure = {"code": state.failure_code, "message": state.failure_message or ""}
    approval: JSON = {
        "required": state.approvals_required > 0,
        "state": approval_state(state),
        "approved_by": list(approvers(state)),
        "terms_hash": terms_hash(state),
    }
    return {
        "id": state.transfer_id,
        "client_id": state.client_id,
        "status": state.status.value,
        "source_amount": amount(state.amount, state.source_currency),
        "source_currency": state.source_currency,
        "target_amount": amount(quote.target_amount, quote.target_currency) if quote else None,
        "target_currency": state.target_currency,
        "fx_rate": quote.rate if quote else None,
        "fee": amount(quote.fee, quote.source_currency) if quote else None,
        "quote_id": quote.quote_id if quote else state.requested_quote_id,
        "destination": msgspec.to_builtins(state.destination),
        "reference": state.reference,
        "approval": approval,
        "policy": policy_ref(state.policy) if state.policy is not None else None,
        "on_chain_tx_hash": tx_hash,
        "bank_reference": state.bank_reference,
        "provider_trade_id": state.provider_trade_id,
        "failure": failure,
        "created_at": rfc3339(state.created_at),
        "updated_at": rfc3339(state.updated_at),
        "metadata": dict(state.metadata),
    }


def policy_ref(decision: PolicyDecision) -> JSON:
    """Which rule of which rule set version decided the transfer, and what."""
    return {
        "rule_id": decision.rule_id,
        "version": decision.version,
        "action": decision.action.value,
        "approvals_required": decision.approvals_required,
    }


def decision(d: PolicyDecision) -> JSON:
    return {
        **policy_ref(d),
        "code": d.code,
        "usd_amount": amount(d.usd_amount, "USD"),
        "beneficiary": d.beneficiary,
        "limits": [
            {
                "id": check.limit_id,
                "scope": check.scope.value,
                "window_hours": check.window_us // US_PER_HOUR,
                "volume_max": amount(check.volume_max, "USD")
                if check.volume_max is not None
                else None,
                "count_max": check.count_max,
            }
            for check in d.limits
        ],
    }


def quote(q: Quote) -> JSON:
    return {
        "id": q.quote_id,
        "source_currency": q.source_currency,
        "target_currency": q.target_currency,
        "source_amount": amount(q.source_amount, q.source_currency),
        "target_amount": amount(q.target_amount, q.target_currency),
        "rate": q.rate,
        "fee": amount(q.fee, q.source_currency),
        "provider": q.provider,
        "expires_at": rfc3339(q.expires_at),
    }


def quote_detail(q: Quote, *, raw: bool) -> JSON:
    """A quote with every provider's answer to the same request (`raw`: with each provider's
    response body as it came, for staff)."""
    return {
        **quote(q),
        "provider_quote_id": q.provider_quote_id,
        "alternatives": [
            {
                "provider": a.provider,
                "outcome": a.answered.value,
                "detail": a.detail,
                "target_amount": (
                    amount(a.target_amount, q.target_currency)
                    if a.answered is Answered.QUOTED
                    else None
                ),
                "fee": amount(a.fee, q.source_currency) if a.answered is Answered.QUOTED else None,
                "rate": a.rate or None,
                "provider_quote_id": a.provider_quote_id,
                "latency_ms": a.latency_us // 1_000,
                "chosen": a.provider == q.provider,
                **({"raw": a.raw or None} if raw else {}),
            }
            for a in q.alternatives
        ],
    }


def _limit(corridor: str, minor: int | None) -> str | None:
    source = corridor.partition("-")[0]
    return amount(minor, source) if money.asset(source) is not None else None


def desk(d: Desk) -> JSON:
    return {
        "data": [
            {
                "provider": p.provider,
                "corridors": list(p.corridors),
                "enabled": p.terms.enabled,
                "compliance": p.terms.compliance.value,
                "limits": {
                    corridor: {
                        "min_amount": _limit(corridor, terms.min_amount),
                        "max_amount": _limit(corridor, terms.max_amount),
                    }
                    for corridor, terms in sorted(p.terms.corridors.items())
                },
                "circuit": {
                    "state": p.circuit.state.value,
                    "failures_in_a_row": p.circuit.failures,
                    "opened_at": rfc3339(p.circuit.opened_at) if p.circuit.opened_at else None,
                    "last_error": p.circuit.last_error or None,
                    "changed_at": rfc3339(p.changed_at) if p.changed_at is not None else None,
                },
                "answers": dict(p.answers),
            }
            for p in d.providers
        ],
        "breaker": {
            "failures_to_open": d.breaker.failures_to_open,
            "open_s": d.breaker.open_us / 1e6,
            "probes": d.breaker.probes,
            "successes_to_close": d.breaker.successes_to_close,
        },
        "quote_deadline_s": d.quote_deadline_s,
    }


def liquidity_view(v: liquidity.View) -> JSON:
    def standing(s: liquidity.Standing) -> JSON:
        t, e = s.threshold, s.episode
        return {
            "account": s.account,
            "currency": s.currency,
            "balance": amount(s.balance, s.currency),
            "min": amount(t.min_amount, s.currency) if t else None,
            "max": amount(t.max_amount, s.currency) if t else None,
            "state": s.past.value if s.past else ("within" if t else "unbounded"),
            "since": rfc3339(e.since) if e else None,
            "alerted": e is not None,
        }

    return {
        "data": [standing(s) for s in v.standings],
        "plan": [
            {
                "from": m.from_account,
                "to": m.to_account,
                "currency": m.currency,
                "amount": amount(m.amount, m.currency),
            }
            for m in v.plan
        ],
    }


# Who decided each kind of event: the client (through the API), an operator, or a system part.
_ACTORS: dict[str, tuple[str, str]] = {
    "QuoteCaptured": ("provider", "quotes"),
    "FundsLocked": ("system", "ledger"),
    "OnChainSubmitted": ("system", "custody"),
    "OnChainReplaced": ("system", "custody"),
    "OnChainConfirmed": ("chain", "confirmation-watcher"),
    "ChainReorged": ("chain", "confirmation-watcher"),
    "OnChainReverted": ("chain", "confirmation-watcher"),
    "OffRampInitiated": ("provider", "offramp"),
    "OffRampRerouted": ("system", "pricing-desk"),
    "FiatSettled": ("bank", "settlement-tracker"),
    "FundsReturned": ("provider", "offramp"),
    "Reconciled": ("system", "reconciler"),
    "TransferExpired": ("system", "timers"),
}


def _actor(event: ev.TransferEvent) -> JSON:
    match event:
        case ev.TransferCreated(initiator=who):
            return {"type": "user", "id": who}
        case ev.ApprovalGranted(by=who) | ev.ApprovalRejected(by=who):
            return {"type": "user", "id": who}
        case ev.TransferCancelled(by=who):
            return {"type": "user", "id": who}
        case ev.TransferFailed():
            return {"type": "system", "id": "engine"}
    kind, name = _ACTORS.get(ev.event_type(event), ("system", "engine"))
    return {"type": kind, "id": name}


_DATA_SKIP = frozenset({"at", "entries", "type", "raw"})


def _data(event: ev.TransferEvent) -> JSON:
    """The event's facts without its ledger lines and raw transaction bytes."""
    found = msgspec.to_builtins(event)
    assert isinstance(found, dict)
    return {k: _strip(v) for k, v in found.items() if k not in _DATA_SKIP}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _DATA_SKIP}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def history(records: list[Recorded]) -> list[JSON]:
    found = []
    state: TransferState | None = None
    for rec in records:
        event = rec.event
        assert ev.is_transfer_event(event)
        before = state.status.value if state is not None else None
        state = evolve(state, event)
        found.append(
            {
                "seq": rec.version,
                "type": rec.event_type,
                "at": rfc3339(event.at),
                "actor": _actor(event),
                "from_status": before,
                "to_status": state.status.value,
                "data": _data(event),
                "request_id": rec.request_id,
            }
        )
    return found


def feed_event(event: FeedEvent) -> JSON:
    return {
        "id": event.event_id,
        "type": event.event_type,
        "created_at": rfc3339(event.created_at),
        "request_id": event.request_id,
        "data": {"transfer": transfer(event.transfer) if event.transfer is not None else None},
    }


def balance(b: Balance) -> JSON:
    return {
        "currency": b.currency,
        "available": amount(b.available, b.currency),
        "held": amount(b.held, b.currency),
    }


def ledger_line(line: LedgerLine) -> JSON:
    return {
        "id": f"le_{line.journal_seq}_{line.leg}",
        "transfer_id": line.transfer_id,
        "account": line.account,
        "currency": line.currency,
        "debit": amount(line.debit, line.currency),
        "credit": amount(line.credit, line.currency),
        "entry_type": line.entry_type,
        "effective_at": rfc3339(line.effective_at),
    }


def endpoint(e: Endpoint, secret: str | None = None) -> JSON:
    found: JSON = {
        "id": e.endpoint_id,
        "url": e.url,
        "events": list(e.events),
        "status": e.status.value,
        "disabled_reason": e.disabled_reason,
        "created_at": rfc3339(e.created_at),
    }
    if secret is not None:
        found["secret"] = secret
    return found


def attempt(a: Attempt) -> JSON:
    return {
        "event_id": a.event_id,
        "event_type": a.event_type,
        "attempt": a.attempt,
        "attempted_at": rfc3339(a.attempted_at),
        "http_status": a.http_status,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "status": a.status.value,
    }


def api_key(k: ApiKey, text: str | None = None) -> JSON:
    found: JSON = {
        "id": k.key_id,
        "client_id": k.client_id,
        "role": k.role.value,
        "user": k.user,
        "created_at": rfc3339(k.created_at),
        "revoked_at": rfc3339(k.revoked_at) if k.revoked_at is not None else None,
    }
    if text is not None:
        found["key"] = text
    return found


# --- operations -----------------------------------------------------------------------------------


def audit_row(row: AuditRow) -> JSON:
    r = row.record
    return {
        "id": f"au_{row.seq}",
        "seq": row.seq,
        "timestamp": rfc3339(r.at),
        "actor_type": r.actor_type.value,
        "actor_id": r.actor_id,
        "action_type": r.action_type,
        "resource_type": r.resource_type,
        "resource_id": r.resource_id,
        "request_id": r.request_id,
        "outcome": r.outcome,
        "diff_summary": dict(r.diff_summary),
        "metadata": dict(r.metadata),
        "hash": row.hash.hex(),
    }


def _units(minor: int, currency: str) -> str:
    return money.format_amount(minor, asset) if (asset := money.asset(currency)) else str(minor)


def trial_balance(rows: list[tuple[str, str, int, int]], now: int) -> JSON:
    accounts = []
    totals: dict[str, tuple[int, int]] = {}
    for account, currency, debits, credits in rows:
        accounts.append(
            {"account": account, "currency": currency, "debits": _units(debits, currency),
             "credits": _units(credits, currency)}
        )  # fmt: skip
        d, k = totals.get(currency, (0, 0))
        totals[currency] = (d + debits, k + credits)
    by_currency = [
        {"currency": currency, "debits": _units(d, currency), "credits": _units(k, currency),
         "balanced": d == k}
        for currency, (d, k) in sorted(totals.items())
    ]  # fmt: skip
    return {
        "as_of": rfc3339(now),
        "accounts": accounts,
        "totals": by_currency,
        "balanced": all(t["balanced"] for t in by_currency),
    }


def reconciliation_summary(counts: dict[str, int], now: int) -> JSON:
    awaiting = sum(counts.get(s.value, 0) for s in (Status.CONFIRMED, Status.FIAT_SETTLED))
    return {
        "as_of": rfc3339(now),
        "transfers_by_status": {s.value: counts.get(s.value, 0) for s in Status},
        "reconciled": counts.get(Status.RECONCILED.value, 0),
        "awaiting_reconciliation": awaiting,
        "open_discrepancies": 0,
    }


US_PER_DAY = 24 * US_PER_HOUR


def sanctions_list(found: ListInForce, now: int) -> JSON:
    h = found.holdings
    return {
        "digest": h.digest,
        "sample": found.sample,
        "sources": list(found.sources),
        "file_date": None if found.sample else rfc3339(found.file_date),
        "loaded_at": None if found.sample else rfc3339(found.loaded_at),
        "max_age_days": found.max_age_us // US_PER_DAY,
        "stale": found.stale(now),
        "entries": h.entries,
        "lists": dict(h.lists),
        "names": h.names,
        "aliases": h.aliases,
        "addresses": h.addresses,
        "address_assets": dict(h.address_assets),
        "other_addresses": h.other_addresses,
        "truncated_addresses": h.truncated_addresses,
        "accounts": h.accounts,
        "postal_addresses": h.postal_addresses,
        "wallet_program_entries": h.wallet_program_entries,
        "orphan_rows": h.orphan_rows,
        "files": [
            {
                "name": f.name,
                "list": f.list,
                "role": f.role.value,
                "rows": f.rows,
                "sha256": f.sha256,
            }
            for f in h.files
        ],
    }
