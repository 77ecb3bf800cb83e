"""The OpenAPI 3.1 document of every route: built from the route table, the request Structs'
JSON schemas (msgspec) and the response schemas below, with every error status a route can give.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from adapters.http.discrepancies import RESOLUTIONS
from adapters.http.routes import OPTIONAL_BODIES, ROUTES, Route
from engine import discrepancies as dc
from engine import limits, money, rebalance
from engine.access import Role
from engine.policy import CORRIDOR_IDS
from engine.reconciliation import Kind, Severity, Source
from engine.states import Status
from engine.webhooks import EVENT_TYPES

VERSION = "1.0.0"
JSON = dict[str, Any]

_STRING = {"type": "string"}
_NSTRING = {"type": ["string", "null"]}
_MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]+$|^[0-9]+$"}
_NMONEY = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_AMOUNTS = {"type": "object", "additionalProperties": _MONEY}
_CORRECTION = {
    "type": "object",
    "properties": {"account": _STRING, "currency": _STRING, "debit": _MONEY, "credit": _MONEY},
    "required": ["account", "currency"],
    "additionalProperties": False,
}


QUOTE: JSON = {
    "id": _STRING,
    "source_currency": _STRING,
    "target_currency": _STRING,
    "source_amount": _MONEY,
    "target_amount": _MONEY,
    "rate": _STRING,
    "fee": _MONEY,
    "provider": _STRING,
    "expires_at": _TIME,
}


def _obj(props: JSON, required: list[str] | None = None, extra: bool = False) -> JSON:
    return {
        "type": "object",
        "properties": props,
        "required": required if required is not None else sorted(props),
        "additionalProperties": extra,
    }


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> JSON:
    return _obj(
        {
            "data": {"type": "array", "items": _ref(item)},
            "next_cursor": _NSTRING,
            "has_more": {"type": "boolean"},
        }
    )


TRANSFER = _obj(
    {
        "id": _STRING,
        "client_id": _STRING,
        "status": {
            "enum": [
                "CREATED", "QUOTED", "FUNDS_LOCKED", "SENT_ON_CHAIN", "CONFIRMED",
                "FIAT_SETTLED", "RECONCILED", "FAILED", "CANCELLED", "EXPIRED",
            ]
        },
        "source_amount": _MONEY,
        "source_currency": _STRING,
        "target_amount": _NMONEY,
        "target_currency": _STRING,
        "fx_rate": _NSTRING,
        "fee": _NMONEY,
        "quote_id": _NSTRING,
        "destination": {"type": "object"},
        "reference": _NSTRING,
        "approval": _obj(
            {
                "required": {"type": "boolean"},
                "state": {"enum": ["not_required", "pending", "approved", "rejected"]},
                "approved_by": {"type": "array", "items": _STRING},
                "terms_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            }
        ),
        "policy": {"oneOf": [{"type": "null"}, _ref("PolicyRef")]},
        "on_chain_tx_hash": _NSTRING,
        "bank_reference": _NSTRING,
        "provider_trade_id": _NSTRING,
        "failure": {
            "oneOf": [
                {"type": "null"},
                _obj({"code": _STRING, "message": _STRING}),
            ]
        },
        "created_at": _TIME,
        "updated_at": _TIME,
        "metadata": {"type": "object", "additionalProperties": _STRING},
    }
)  # fmt: skip

ENDPOINT: JSON = {
    "id": _STRING,
    "url": _STRING,
    "events": {"type": "array", "items": _STRING},
    "status": {"enum": ["enabled", "disabled", "deleted"]},
    "disabled_reason": _NSTRING,
    "created_at": _TIME,
}

API_KEY: JSON = {
    "id": _STRING,
    "client_id": _NSTRING,
    "role": {"enum": ["viewer", "initiator", "approver", "admin", "operator", "auditor"]},
    "user": _STRING,
    "created_at": _TIME,
    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
}

POLICY_REF: JSON = {
    "rule_id": _STRING,
    "version": {"type": "integer", "minimum": 0},
    "action": {"enum": ["allow", "block", "approve"]},
    "approvals_required": {"type": "integer", "minimum": 0},
}

SANCTIONS_LIST: JSON = {
    "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "sample": {"type": "boolean"},
    "sources": {"type": "array", "items": _STRING},
    "file_date": {"type": ["string", "null"], "format": "date-time"},
    "loaded_at": {"type": ["string", "null"], "format": "date-time"},
    "max_age_days": {"type": "integer", "minimum": 0},
    "stale": {"type": "boolean"},
    "entries": {"type": "integer", "minimum": 0},
    "lists": _COUNTS,
    "names": {"type": "integer", "minimum": 0},
    "aliases": {"type": "integer", "minimum": 0},
    "addresses": {"type": "integer", "minimum": 0},
    "address_assets": _COUNTS,
    "other_addresses": {"type": "integer", "minimum": 0},
    "truncated_addresses": {"type": "integer", "minimum": 0},
    "accounts": {"type": "integer", "minimum": 0},
    "postal_addresses": {"type": "integer", "minimum": 0},
    "wallet_program_entries": {"type": "integer", "minimum": 0},
    "orphan_rows": {"type": "integer", "minimum": 0},
    "files": {
        "type": "array",
        "items": _obj(
            {
                "name": _STRING,
                "list": {"enum": ["SDN", "CONS"]},
                "role": {"enum": ["primary", "aliases", "addresses", "comments"]},
                "rows": {"type": "integer", "minimum": 0},
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            }
        ),
    },
}

SCHEMAS: JSON = {
    "PolicyRef": _obj(POLICY_REF),
    "Override": _obj(
        {
            "id": _STRING,
            "kind": {"enum": ["fail_transfer", "reconcile_transfer"]},
            "transfer_id": _STRING,
            "reason": _STRING,
            "requested_by": _STRING,
            "requested_at": _TIME,
            "state": {"enum": ["pending", "approved", "rejected", "executed"]},
            "decided_by": _NSTRING,
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "decision_reason": _STRING,
            "outcome": _NSTRING,
        }
    ),
    "Rebalance": _obj(
        {
            "id": _STRING,
            "kind": {"enum": [k.value for k in rebalance.Kind]},
            "from_account": _STRING,
            "to_account": _STRING,
            "currency": _STRING,
            "amount": _MONEY,
            "chain": _STRING,
            "to_address": _STRING,
            "reason": _STRING,
            "proposed_by": _STRING,
            "proposed_at": _TIME,
            "state": {"enum": [s.value for s in rebalance.State]},
            "decided_by": _NSTRING,
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "decision_reason": _STRING,
            "transactions": {
                "type": "array",
                "items": _obj(
                    {
                        "tx_hash": _STRING,
                        "nonce": {"type": "integer", "minimum": 0},
                        "from_address": _STRING,
                        "max_fee_per_gas": _STRING,
                        "max_priority_fee_per_gas": _STRING,
                    }
                ),
            },
            "mined": {
                "anyOf": [
                    _obj(
                        {
                            "tx_hash": _STRING,
                            "block_number": {"type": "integer"},
                            "block_hash": _STRING,
                        }
                    ),
                    {"type": "null"},
                ]
            },
            "confirmed_at": {"type": ["string", "null"], "format": "date-time"},
            "failure": _NSTRING,
            "withdrawal_id": _NSTRING,
            "withdrawal_tx": _NSTRING,
        }
    ),
    "RebalancePage": _page("Rebalance"),
    "RuleSet": _obj(
        {
            "version": {"type": "integer", "minimum": 1},
            "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "loaded_at": _TIME,
            "loaded_by": _STRING,
            "reason": _STRING,
            "document": {"type": "object"},
        }
    ),
    "PolicyDryRun": _obj(
        {
            "decision": _obj(
                {
                    **POLICY_REF,
                    "code": _NSTRING,
                    "usd_amount": _MONEY,
                    "beneficiary": _STRING,
                    "limits": {
                        "type": "array",
                        "items": _obj(
                            {
                                "id": _STRING,
                                "scope": {"enum": ["client", "beneficiary"]},
                                "window_hours": {"type": "integer", "minimum": 1},
                                "volume_max": _NMONEY,
                                "count_max": {"type": ["integer", "null"]},
                            }
                        ),
                    },
                }
            ),
            "passed": {
                "type": "array",
                "items": _obj({"rule_id": _STRING, "reason": _STRING}),
            },
        }
    ),
    "Problem": _obj(
        {
            "type": _STRING,
            "title": _STRING,
            "status": {"type": "integer"},
            "detail": _STRING,
            "code": _STRING,
            "request_id": _STRING,
            "transfer_id": _STRING,
        },
        required=["type", "title", "status", "detail", "code", "request_id"],
    ),
    "Transfer": TRANSFER,
    "TransferPage": _page("Transfer"),
    "TransferList": _obj(
        {"data": {"type": "array", "items": _ref("Transfer")}, "has_more": {"type": "boolean"}}
    ),
    "Quote": _obj(QUOTE),
    "QuoteDetail": _obj(
        {
            **QUOTE,
            "provider_quote_id": _NSTRING,
            "alternatives": {
                "type": "array",
                "items": _obj(
                    {
                        "provider": _STRING,
                        "outcome": {
                            "enum": ["quoted", "failed", "timed_out", "circuit_open", "ineligible"]
                        },
                        "detail": _STRING,
                        "target_amount": _NMONEY,
                        "fee": _NMONEY,
                        "rate": _NSTRING,
                        "provider_quote_id": _NSTRING,
                        "latency_ms": {"type": "integer", "minimum": 0},
                        "chosen": {"type": "boolean"},
                        # Staff keys only: the provider's response body as it came.
                        "raw": _NSTRING,
                    },
                    required=[
                        "provider",
                        "outcome",
                        "detail",
                        "target_amount",
                        "fee",
                        "rate",
                        "provider_quote_id",
                        "latency_ms",
                        "chosen",
                    ],
                ),
            },
        }
    ),
    "Providers": _obj(
        {
            "data": {
                "type": "array",
                "items": _obj(
                    {
                        "provider": _STRING,
                        "corridors": {"type": "array", "items": _STRING},
                        "enabled": {"type": "boolean"},
                        "compliance": {"enum": ["approved", "under_review", "suspended"]},
                        "limits": {
                            "type": "object",
                            "additionalProperties": _obj(
                                {"min_amount": _NMONEY, "max_amount": _NMONEY}
                            ),
                        },
                        "circuit": _obj(
                            {
                                "state": {"enum": ["closed", "open", "half_open"]},
                                "failures_in_a_row": {"type": "integer", "minimum": 0},
                                "opened_at": {"type": ["string", "null"], "format": "date-time"},
                                "last_error": _NSTRING,
                                "changed_at": {"type": ["string", "null"], "format": "date-time"},
                            }
                        ),
                        "answers": _COUNTS,
                    }
                ),
            },
            "breaker": _obj(
                {
                    "failures_to_open": {"type": "integer", "minimum": 1},
                    "open_s": {"type": "number"},
                    "probes": {"type": "integer", "minimum": 1},
                    "successes_to_close": {"type": "integer", "minimum": 1},
                }
            ),
            "quote_deadline_s": {"type": "number"},
        }
    ),
    "Liquidity": _obj(
        {
            "data": {
                "type": "array",
                "items": _obj(
                    {
                        "account": _STRING,
                        "currency": _STRING,
                        "balance": _MONEY,
                        "min": _NMONEY,
                        "max": _NMONEY,
                        "state": {"enum": ["within", "below_min", "above_max", "unbounded"]},
                        "since": {"type": ["string", "null"], "format": "date-time"},
                        "alerted": {"type": "boolean"},
                    }
                ),
            },
            "plan": {
                "type": "array",
                "items": _obj(
                    {"from": _STRING, "to": _STRING, "currency": _STRING, "amount": _MONEY}
                ),
            },
        }
    ),
    "HistoryEntry": _obj(
        {
            "seq": {"type": "integer"},
            "type": _STRING,
            "at": _TIME,
            "actor": _obj({"type": _STRING, "id": _STRING}),
            "from_status": _NSTRING,
            "to_status": _STRING,
            "data": {"type": "object"},
            "request_id": _NSTRING,
        }
    ),
    "History": _obj({"data": {"type": "array", "items": _ref("HistoryEntry")}}),
    "Balance": _obj({"currency": _STRING, "available": _MONEY, "held": _MONEY}),
    "Balances": _obj({"data": {"type": "array", "items": _ref("Balance")}}),
    "LedgerLine": _obj(
        {
            "id": _STRING,
            "transfer_id": _NSTRING,
            "account": _STRING,
            "currency": _STRING,
            "debit": _MONEY,
            "credit": _MONEY,
            "entry_type": _STRING,
            "effective_at": _TIME,
        }
    ),
    "LedgerPage": _page("LedgerLine"),
    "Endpoint": _obj(ENDPOINT),
    "EndpointCreated": _obj({**ENDPOINT, "secret": {"type": "string", "pattern": "^whsec_"}}),
    "Endpoints": _obj({"data": {"type": "array", "items": _ref("Endpoint")}}),
    "Attempt": _obj(
        {
            "event_id": _STRING,
            "event_type": _STRING,
            "attempt": {"type": "integer"},
            "attempted_at": _TIME,
            "http_status": {"type": ["integer", "null"]},
            "error": _NSTRING,
            "duration_ms": {"type": "integer"},
            "status": {"enum": ["pending", "delivered", "failed"]},
        }
    ),
    "AttemptPage": _page("Attempt"),
    "Event": _obj(
        {
            "id": _STRING,
            "type": _STRING,
            "created_at": _TIME,
            "request_id": _NSTRING,
            "data": _obj({"transfer": {"oneOf": [{"type": "null"}, _ref("Transfer")]}}),
        }
    ),
    "Events": _obj({"data": {"type": "array", "items": _ref("Event")}}),
    "Deposit": _obj({"client_id": _STRING, "currency": _STRING, "amount": _MONEY}),
    "Received": _obj({"received": {"const": True}, "provider": _STRING}),
    "ApiKey": _obj(API_KEY),
    "ApiKeyCreated": _obj({**API_KEY, "key": {"type": "string", "pattern": "^sk_"}}),
    "ApiKeyPage": _page("ApiKey"),
    "Discrepancy": _obj(
        {
            "id": _STRING,
            "type": {"enum": [k.value for k in Kind]},
            "severity": {"enum": [v.value for v in Severity]},
            "confidence": {"type": "string", "pattern": r"^[01]\.[0-9]{2}$"},
            "source": {"enum": [v.value for v in Source]},
            "status": {"enum": [v.value for v in dc.Status]},
            "transfer_id": _NSTRING,
            "evidence_ids": {"type": "array", "items": _STRING},
            "expected": _STRINGS,
            "observed": _STRINGS,
            "owner": _NSTRING,
            "notes": {
                "type": "array",
                "items": _obj({"at": _TIME, "by": _STRING, "text": _STRING}),
            },
            "proposal": {
                "anyOf": [
                    _obj(
                        {
                            "resolution": {"enum": list(RESOLUTIONS)},
                            "notes": _STRING,
                            "by": _STRING,
                            "at": _TIME,
                            "correction": {"type": "array", "items": _CORRECTION},
                        }
                    ),
                    {"type": "null"},
                ]
            },
            "resolution": {"anyOf": [{"enum": list(RESOLUTIONS)}, {"type": "null"}]},
            "resolution_notes": _NSTRING,
            "resolved_by": _NSTRING,
            "approved_by": _NSTRING,
            "correction": {"type": "array", "items": _CORRECTION},
            "sla_deadline": _TIME,
            "sla_breached": {"type": "boolean"},
            "age_bucket": {"anyOf": [{"enum": [b.value for b in dc.Bucket]}, {"type": "null"}]},
            "created_at": _TIME,
            "updated_at": _TIME,
            "resolved_at": {"type": ["string", "null"], "format": "date-time"},
        }
    ),
    "DiscrepancyPage": _page("Discrepancy"),
    "Control": _obj(
        {
            "scope": {"enum": ["client", "corridor", "system"]},
            "id": _NSTRING,
            "state": {"enum": ["frozen", "active", "halted"]},
            "reason": _STRING,
            "by": _STRING,
            "at": _TIME,
            "cancelled": {"type": "integer", "minimum": 0},
        }
    ),
    "SanctionsList": _obj(SANCTIONS_LIST),
    "SanctionsReload": _obj(
        {
            **SANCTIONS_LIST,
            "rescreened": _obj(
                {
                    "screened": {"type": "integer", "minimum": 0},
                    "failed": {"type": "array", "items": _STRING},
                }
            ),
        }
    ),
    "AuditEntry": _obj(
        {
            "id": _STRING,
            "seq": {"type": "integer"},
            "timestamp": _TIME,
            "actor_type": {"enum": ["user", "admin", "system", "service", "anonymous"]},
            "actor_id": _STRING,
            "action_type": _STRING,
            "resource_type": _STRING,
            "resource_id": _NSTRING,
            "request_id": _NSTRING,
            "outcome": _STRING,
            "diff_summary": {"type": "object", "additionalProperties": _STRING},
            "metadata": {"type": "object", "additionalProperties": _STRING},
            "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        }
    ),
    "AuditPage": _page("AuditEntry"),
    "TrialBalance": _obj(
        {
            "as_of": _TIME,
            "accounts": {
                "type": "array",
                "items": _obj(
                    {"account": _STRING, "currency": _STRING, "debits": _MONEY, "credits": _MONEY}
                ),
            },
            "totals": {
                "type": "array",
                "items": _obj(
                    {
                        "currency": _STRING,
                        "debits": _MONEY,
                        "credits": _MONEY,
                        "balanced": {"type": "boolean"},
                    }
                ),
            },
            "balanced": {"type": "boolean"},
        }
    ),
    "ReconciliationSummary": _obj(
        {
            "as_of": _TIME,
            "transfers_by_status": _COUNTS,
            "reconciled": {"type": "integer"},
            "awaiting_reconciliation": {"type": "integer"},
            "open_discrepancies": {"type": "integer"},
            "sources": {
                "type": "array",
                "items": _obj(
                    {
                        "source": {"enum": [v.value for v in Source]},
                        "matched": _obj({"count": {"type": "integer"}, "amounts": _AMOUNTS}),
                        "unmatched": _obj(
                            {"count": {"type": "integer"}, "amounts": _AMOUNTS, "by_age": _COUNTS}
                        ),
                    }
                ),
            },
            "balances": {
                "type": "array",
                "items": _obj(
                    {
                        "source": {"enum": [v.value for v in Source]},
                        "holder": _STRING,
                        "account": _STRING,
                        "currency": _STRING,
                        "ledger": _MONEY,
                        "holder_reports": _MONEY,
                        "drift": _MONEY,
                        "in_flight": _obj({"low": _MONEY, "high": _MONEY}),
                        "explained": {"type": "boolean"},
                        "read_at": _TIME,
                    }
                ),
            },
            "awaiting_by_age": _COUNTS,
            "discrepancies": _obj(
                {
                    "by_status": _COUNTS,
                    "by_type": _COUNTS,
                    "open_by_age": _COUNTS,
                    "open_by_severity": _COUNTS,
                    "sla_breached": {"type": "integer"},
                }
            ),
        }
    ),
}


# What the API checks, stated in the document so clients (and schemathesis) generate what it
# accepts: applied to every request-body property and parameter of that name.
_ULID = "[0-9A-HJKMNP-TV-Z]{26}"
_AMOUNT = {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,6})?$"}
_CURRENCY = {"enum": sorted(money.ASSETS)}
_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"^\S(.*\S)?$"}
FIELDS: JSON = {
    "amount": _AMOUNT,
    "source_amount": _AMOUNT,
    "source_currency": _CURRENCY,
    "target_currency": _CURRENCY,
    "currency": _CURRENCY,
    "client_id": _NAME,
    "user": {**_TEXT, "maxLength": limits.user_name_length_max},
    "reason": _TEXT,
    "role": {"enum": [r.value for r in Role]},
    "destination_kind": {"enum": ["wallet", "bank"]},
    "chain": {"enum": ["ethereum"]},
    "address": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
    "clabe": {"type": "string", "pattern": "^[0-9]{18}$"},
    "country": {"enum": ["MX"]},
    "name": {**_TEXT, "maxLength": 140},
    "reference": {"type": ["string", "null"], "maxLength": limits.reference_length_max},
    "quote_id": {"type": ["string", "null"], "pattern": f"^qt_{_ULID}$"},
    "url": {"type": "string", "format": "uri", "pattern": "^https?://"},
    "events": {
        "type": "array",
        "minItems": 1,
        "items": {"enum": ["*", *sorted(EVENT_TYPES)]},
    },
    "resolution": {"enum": ["matched", "written_off", "refunded", "false_positive"]},
    "seconds": {"type": "integer", "minimum": 1},
}
PARAMETERS: JSON = {
    "limit": {"type": "integer", "minimum": 1, "maximum": limits.page_limit_max},
    "client_id": _NAME,
    "status": {"enum": [s.value for s in Status]},
    "created_after": _TIME,
    "created_before": _TIME,
    "from": _TIME,
    "to": _TIME,
    "after": {"type": "string", "pattern": f"^ev_{_ULID}$"},
    "stuck": {"enum": ["true"]},
}
_ID_PREFIX = {
    "transfers": "tr",
    "webhook-endpoints": "we",
    "api-keys": "ak",
    "discrepancies": "dc",
    "overrides": "ov",
    "rebalances": "rb",
}


def _constrain(schemas: JSON) -> None:
    for schema in schemas.values():
        for name, prop in schema.get("properties", {}).items():
            if name in FIELDS and "$ref" not in prop and "anyOf" not in prop:
                prop.clear()
                prop.update(FIELDS[name])
            elif name in FIELDS and "anyOf" in prop:  # optional: the constraint, or null
                prop.pop("anyOf")
                prop.update({"anyOf": [FIELDS[name], {"type": "null"}]})


def _path_schema(route: Route, name: str) -> JSON:
    if name == "id":
        kind = route.path.split("/")[-2 if route.path.endswith("{id}") else -3]
        if kind == "corridors":
            return {"enum": list(CORRIDOR_IDS)}
        prefix = _ID_PREFIX.get(kind)
        if prefix is not None:
            return {"type": "string", "pattern": f"^{prefix}_{_ULID}$"}
        return _NAME
    return _NAME


def _errors(route: Route) -> dict[int, str]:
    """The error statuses a route can answer, with what they mean."""
    found = {
        400: "Bad cursor or Idempotency-Key",
        404: "Not found (also: another client's object)",
        422: "Invalid input (problem+json with a stable code)",
        500: "Internal error (never for client input)",
        503: "Not ready, shutting down, or a rail unavailable",
    }
    if route.permission is not None:
        found[401] = "Missing, invalid or revoked API key"
        found[403] = "The key's role lacks this permission"
    if route.signed:
        found[401] = "Bad or stale webhook signature"
    if route.body is not None:
        found[413] = "Body over 64 KiB"
        found[415] = "Body is not application/json"
    if route.method in ("POST", "DELETE"):
        found[409] = "Conflict with the object's state, or the same request still in flight"
    return found


def document() -> JSON:
    body_types = [r.body for r in ROUTES if r.body is not None]
    _, components = msgspec.json.schema_components(
        body_types, ref_template="#/components/schemas/{name}"
    )
    schemas = msgspec.json.decode(msgspec.json.encode(components))
    _constrain(schemas)
    schemas.update(SCHEMAS)
    paths: JSON = {}
    for route in ROUTES:
        operation: JSON = {
            "operationId": _operation_id(route),
            "summary": route.summary,
            "parameters": [],
            "responses": {},
        }
        for name in re.findall(r"{(\w+)}", route.path):
            operation["parameters"].append(
                {"name": name, "in": "path", "required": True, "schema": _path_schema(route, name)}
            )
        for name, kind in route.query:
            schema = PARAMETERS.get(name, {"type": kind})
            operation["parameters"].append(
                {"name": name, "in": "query", "required": False, "schema": schema}
            )
        operation["parameters"].append(
            {"name": "X-Request-Id", "in": "header", "required": False, "schema": _STRING}
        )
        if route.idempotent_key:
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
        if route.body is not None:
            operation["requestBody"] = {
                "required": route.method == "POST" and route.body.__name__ not in OPTIONAL_BODIES,
                "content": {"application/json": {"schema": _ref(route.body.__name__)}},
            }
        if route.signed:
            for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                operation["parameters"].append(
                    {"name": header, "in": "header", "required": True, "schema": _STRING}
                )
        if route.permission is not None:
            operation["security"] = [{"apiKey": []}]
            operation["x-permission"] = route.permission.value
        success: JSON = {"description": route.summary}
        if route.response is not None:
            success["content"] = {"application/json": {"schema": _ref(route.response)}}
        operation["responses"][str(route.status)] = success
        for status in route.also:
            operation["responses"][str(status)] = success
        if route.idempotent_key:
            operation["responses"]["422"] = _problem("Refused (stored) or invalid input")
        for status, meaning in sorted(_errors(route).items()):
            operation["responses"].setdefault(str(status), _problem(meaning))
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    for path, summary, media in (
        ("/healthz", "The process is up", "application/json"),
        ("/readyz", "The store is open and every transfer recovered", "application/json"),
        ("/metrics", "Prometheus metrics", "text/plain"),
        ("/v1/openapi.json", "This document", "application/json"),
    ):
        responses: JSON = {"200": {"description": summary, "content": {media: {"schema": {}}}}}
        if path == "/readyz":
            responses["503"] = _problem("Not ready yet, or shutting down")
        paths[path] = {"get": {"operationId": "get" + path.replace("/", "_").replace(".", "_"),
                               "summary": summary, "responses": responses}}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "stablerail API", "version": VERSION},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation_id(route: Route) -> str:
    """The handler's name, unless it serves several routes: then the path names it."""
    shared = sum(1 for r in ROUTES if r.handler is route.handler) > 1
    if not shared:
        return f"{route.method.lower()}_{route.handler.__name__}"
    words = [w for w in route.path.split("/")[2:] if w != "{id}"]
    return f"{route.method.lower()}_" + "_".join(w.replace("-", "_") for w in words)


def _problem(meaning: str) -> JSON:
    return {
        "description": meaning,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
