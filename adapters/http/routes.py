"""The route table: one row per route, read by the app (to register handlers and check roles),
the OpenAPI document and the role-matrix tests. A route names the permission it needs; `None`
is a public route (health, readiness, metrics, the OpenAPI document)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters.http import (
    bodies,
    discrepancies,
    inbound,
    keys,
    ops,
    overrides,
    policy,
    rebalances,
    sanctions,
    transfers,
    webhooks,
)
from engine.access import Permission

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    permission: Permission | None
    summary: str
    # The success status and the response schema's name in the OpenAPI components.
    status: int = 200
    response: str | None = None
    body: type | None = None
    # Query parameters (name -> JSON schema type), for the document.
    query: tuple[tuple[str, str], ...] = ()
    idempotent_key: bool = False
    simulated_only: bool = False
    # Authenticated by a webhook signature instead of an API key.
    signed: bool = False
    # Other success statuses it may answer with.
    also: tuple[int, ...] = ()


# Bodies a POST may leave out (the handler reads an empty body as the defaults).
OPTIONAL_BODIES = frozenset({"ReasonBody", "AssignBody"})


PAGE = (("limit", "integer"), ("cursor", "string"))
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/quotes", transfers.create_quote, Permission.INITIATE,
          "Price a transfer", 201, "Quote", bodies.QuoteBody),
    Route("GET", "/v1/quotes/{id}", transfers.get_quote, Permission.READ,
          "A quote with every provider's answer to the same request", 200, "QuoteDetail"),
    Route("POST", "/v1/transfers", transfers.create_transfer, Permission.INITIATE,
          "Create a transfer", 201, "Transfer", bodies.TransferBody, idempotent_key=True),
    Route("GET", "/v1/transfers", transfers.list_transfers, Permission.READ,
          "List transfers, newest first", 200, "TransferPage",
          query=(("status", "string"), ("created_after", "string"),
                 ("created_before", "string"), ("client_id", "string"), *PAGE)),
    Route("GET", "/v1/transfers/{id}", transfers.get_transfer, Permission.READ,
          "A transfer", 200, "Transfer"),
    Route("GET", "/v1/transfers/{id}/events", transfers.transfer_events, Permission.READ,
          "A transfer's history", 200, "History"),
    Route("POST", "/v1/transfers/{id}/cancel", transfers.cancel_transfer, Permission.INITIATE,
          "Cancel a transfer before it goes on chain", 200, "Transfer", bodies.ReasonBody),
    Route("POST", "/v1/transfers/{id}/approve", transfers.approve_transfer, Permission.APPROVE,
          "Approve a transfer awaiting approval", 200, "Transfer", bodies.ApproveBody),
    Route("POST", "/v1/transfers/{id}/reject", transfers.reject_transfer, Permission.APPROVE,
          "Reject a transfer awaiting approval", 200, "Transfer", bodies.ReasonBody),
    Route("GET", "/v1/balances", transfers.balances, Permission.READ,
          "The client's balances", 200, "Balances", query=(("client_id", "string"),)),
    Route("GET", "/v1/ledger/entries", transfers.ledger_entries, Permission.READ,
          "Ledger lines", 200, "LedgerPage",
          query=(("transfer_id", "string"), ("account", "string"), ("client_id", "string"),
                 *PAGE)),
    Route("POST", "/v1/webhook-endpoints", webhooks.create_endpoint, Permission.MANAGE,
          "Register a webhook endpoint (its secret is shown once)", 201, "EndpointCreated",
          bodies.EndpointBody),
    Route("GET", "/v1/webhook-endpoints", webhooks.list_endpoints, Permission.READ,
          "The client's webhook endpoints", 200, "Endpoints", query=(("client_id", "string"),)),
    Route("GET", "/v1/webhook-endpoints/{id}", webhooks.get_endpoint, Permission.READ,
          "A webhook endpoint", 200, "Endpoint"),
    Route("DELETE", "/v1/webhook-endpoints/{id}", webhooks.delete_endpoint, Permission.MANAGE,
          "Delete a webhook endpoint", 204),
    Route("GET", "/v1/webhook-endpoints/{id}/deliveries", webhooks.deliveries, Permission.READ,
          "An endpoint's delivery attempts, newest first", 200, "AttemptPage", query=PAGE),
    Route("GET", "/v1/events", webhooks.events, Permission.READ,
          "Client-visible events in commit order, for polling", 200, "Events",
          query=(("after", "string"), ("limit", "integer"), ("client_id", "string"))),
    Route("GET", "/v1/ops/providers", ops.providers, Permission.OPERATE,
          "Pricing providers: corridors, terms, circuit breaker, answers", 200, "Providers"),
    Route("GET", "/v1/ops/liquidity", ops.liquidity, Permission.OPERATE,
          "Held balances against their thresholds, and a rebalancing plan", 200, "Liquidity"),
    Route("GET", "/v1/ops/transfers", ops.stuck_transfers, Permission.OPERATE,
          "Transfers past their time-in-state threshold", 200, "TransferList",
          query=(("status", "string"), ("stuck", "string"), ("limit", "integer"))),
    Route("POST", "/v1/ops/transfers/{id}/retry", ops.retry_transfer, Permission.OPERATE,
          "Re-drive a transfer's pending effects", 202, "Transfer"),
    Route("GET", "/v1/ops/discrepancies", discrepancies.list_discrepancies, Permission.OPERATE,
          "Reconciliation cases, newest first", 200, "DiscrepancyPage",
          query=(("status", "string"), ("type", "string"), ("severity", "string"),
                 ("transfer_id", "string"), *PAGE)),
    Route("GET", "/v1/ops/discrepancies/{id}", discrepancies.get_discrepancy,
          Permission.OPERATE, "A reconciliation case", 200, "Discrepancy"),
    Route("POST", "/v1/ops/discrepancies/{id}/assign", discrepancies.assign_discrepancy,
          Permission.OPERATE, "Take a case (INVESTIGATING); owner defaults to the caller", 200,
          "Discrepancy", bodies.AssignBody),
    Route("POST", "/v1/ops/discrepancies/{id}/notes", discrepancies.note_discrepancy,
          Permission.OPERATE, "Add a note to an open case", 200, "Discrepancy", bodies.NoteBody),
    Route("POST", "/v1/ops/discrepancies/{id}/resolve", discrepancies.resolve_discrepancy,
          Permission.OPERATE,
          "Close a case; with correcting entries, propose it for a second operator (202)", 200,
          "Discrepancy", bodies.ResolveBody, also=(202,)),
    Route("POST", "/v1/ops/discrepancies/{id}/approve", discrepancies.approve_correction,
          Permission.OPERATE, "Approve a proposed correction (not its proposer); it is posted",
          200, "Discrepancy", bodies.ReasonBody),
    Route("POST", "/v1/ops/discrepancies/{id}/reject", discrepancies.reject_correction,
          Permission.OPERATE, "Reject a proposed correction, with a reason", 200, "Discrepancy",
          bodies.ControlBody),
    *(
        Route("POST", path, ops.control, Permission.OPERATE, summary, 200, "Control",
              bodies.ControlBody)
        for path, summary in (
            ("/v1/ops/clients/{id}/freeze", "Freeze a client"),
            ("/v1/ops/clients/{id}/unfreeze", "Unfreeze a client"),
            ("/v1/ops/corridors/{id}/halt", "Halt a corridor"),
            ("/v1/ops/corridors/{id}/resume", "Resume a corridor"),
            ("/v1/ops/halt", "Halt the whole system"),
            ("/v1/ops/resume", "Resume the whole system"),
        )
    ),
    Route("GET", "/v1/ops/audit", ops.audit, Permission.AUDIT,
          "The audit trail, newest first", 200, "AuditPage",
          query=(("actor", "string"), ("resource", "string"), ("action", "string"),
                 ("from", "string"), ("to", "string"), *PAGE)),
    Route("POST", "/v1/ops/overrides", overrides.request_override, Permission.OPERATE,
          "Request an admin override (a second operator must approve it)", 201, "Override",
          bodies.OverrideBody),
    Route("GET", "/v1/ops/overrides/{id}", overrides.get_override, Permission.OPERATE,
          "An admin override", 200, "Override"),
    Route("POST", "/v1/ops/overrides/{id}/approve", overrides.approve_override,
          Permission.OPERATE, "Approve an override (not its requester); it is carried out", 200,
          "Override", bodies.ReasonBody),
    Route("POST", "/v1/ops/overrides/{id}/reject", overrides.reject_override, Permission.OPERATE,
          "Reject an override, with a reason", 200, "Override", bodies.ControlBody),
    Route("POST", "/v1/ops/rebalances", rebalances.propose_rebalance, Permission.OPERATE,
          "Propose a rebalancing move (a second operator must approve it)", 201, "Rebalance",
          bodies.RebalanceBody),
    Route("GET", "/v1/ops/rebalances", rebalances.list_rebalances, Permission.OPERATE,
          "Rebalancing moves, newest first", 200, "RebalancePage"),
    Route("GET", "/v1/ops/rebalances/{id}", rebalances.get_rebalance, Permission.OPERATE,
          "A rebalancing move and its payment", 200, "Rebalance"),
    Route("POST", "/v1/ops/rebalances/{id}/approve", rebalances.approve_rebalance,
          Permission.OPERATE, "Approve a move (not its proposer); it is paid on chain", 200,
          "Rebalance", bodies.ReasonBody),
    Route("POST", "/v1/ops/rebalances/{id}/reject", rebalances.reject_rebalance, Permission.OPERATE,
          "Reject a move, with a reason", 200, "Rebalance", bodies.ControlBody),
    Route("GET", "/v1/ops/policy", policy.get_policy, Permission.POLICY,
          "The policy rule set in force (or ?version=N)", 200, "RuleSet",
          query=(("version", "integer"),)),
    Route("POST", "/v1/ops/policy", policy.load_policy, Permission.OPERATE,
          "Bring a new policy rule set into force (journaled, the next version)", 200, "RuleSet",
          bodies.PolicyBody),
    Route("POST", "/v1/ops/policy/dry-run", policy.dry_run, Permission.POLICY,
          "Which policy rule a transfer with these terms would match (nothing stored)", 200,
          "PolicyDryRun", bodies.DryRunBody),
    Route("GET", "/v1/ops/sanctions", sanctions.get_sanctions, Permission.POLICY,
          "The sanctions list in force: its files, date, age and what it holds", 200,
          "SanctionsList"),
    Route("POST", "/v1/ops/sanctions/reload", sanctions.reload_sanctions, Permission.OPERATE,
          "Read the configured sanctions list again; re-screen transfers not yet on chain", 200,
          "SanctionsReload", bodies.ControlBody),
    Route("GET", "/v1/ops/ledger/trial-balance", ops.trial_balance, Permission.OPERATE,
          "Every ledger account's debits and credits", 200, "TrialBalance"),
    Route("GET", "/v1/ops/reconciliation/summary", discrepancies.summary,
          Permission.OPERATE, "Reconciliation at a glance", 200, "ReconciliationSummary"),
    Route("POST", "/v1/api-keys", keys.create_key, Permission.KEYS,
          "Create a client API key (shown once)", 201, "ApiKeyCreated", bodies.ApiKeyBody),
    Route("GET", "/v1/api-keys", keys.list_keys, Permission.KEYS,
          "API keys, newest first", 200, "ApiKeyPage", query=(("client_id", "string"), *PAGE)),
    Route("DELETE", "/v1/api-keys/{id}", keys.revoke_key, Permission.KEYS,
          "Revoke an API key (from its next request)", 200, "ApiKey"),
    Route("POST", "/v1/api-keys/{id}/rotate", keys.rotate_key, Permission.KEYS,
          "Replace an API key: a new key, the old one revoked", 201, "ApiKeyCreated"),
    Route("POST", "/v1/inbound/{provider}", inbound.inbound, None,
          "A provider's or the bank's webhook (Standard Webhooks signature)", 202, "Received",
          bodies.InboundBody, signed=True),
    Route("POST", "/v1/sim/deposits", ops.sim_deposit, Permission.OPERATE,
          "A deposit from the simulated bank", 202, "Deposit", bodies.DepositBody,
          simulated_only=True),
    Route("POST", "/v1/sim/advance", ops.sim_advance, Permission.OPERATE,
          "Advance a virtual clock", 200, None, bodies.AdvanceBody, simulated_only=True),
)  # fmt: skip
