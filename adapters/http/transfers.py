"""Quotes, transfers, balances and the ledger (API.md "Transfers", "Balances and ledger")."""

from __future__ import annotations

from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import (
    AUDIT,
    AUDITED,
    IDS,
    authorize,
    client_scope,
    decode_cursor,
    instant_param,
    json,
    page_limit,
    page_of,
    raw_json,
    request_id,
    service,
    visible,
)
from adapters.http.problems import Problem
from engine import commands as c
from engine import money
from engine.access import Permission, Principal
from engine.hashing import request_hash
from engine.records import IdempotencyRecord, IdempotencyStatus
from engine.results import Result
from engine.service import LedgerQuery, TransferQuery
from engine.states import Status
from engine.transfer import TransferState, check_create, check_idempotency_key

REFUSED = frozenset({Status.FAILED, Status.CANCELLED, Status.EXPIRED})


def create_answer(state: TransferState) -> tuple[int, bytes]:
    """A create's answer once its synchronous steps are decided: 201 with the transfer, or, if
    policy or the ledger refused it, 422 naming why and which transfer keeps the record."""
    if state.status in REFUSED and state.failure_code is not None:
        problem = Problem(
            422,
            state.failure_code,
            state.failure_message or "",
            transfer_id=state.transfer_id,
        )
        return 422, render.encode(problem.body(state.request_id or ""))
    return 201, render.encode(render.transfer(state))


async def _visible(request: web.Request, principal: Principal) -> TransferState:
    return await visible(
        request, principal, "transfer", "tr", service(request).transfer, lambda s: s.client_id
    )


# --- quotes ---------------------------------------------------------------------------------------


async def create_quote(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.INITIATE)
    assert principal.client_id is not None
    body = bodies.decode(await request.read(), bodies.QuoteBody)
    source, target = money.asset(body.source_currency), money.asset(body.target_currency)
    if source is None or target is None:
        raise Problem.of(Result.currency_unknown)
    if body.destination_kind not in ("wallet", "bank"):
        raise Problem.http("field_invalid", "destination_kind is wallet or bank")
    amount = money.parse_amount(body.source_amount, source)
    if isinstance(amount, Result):
        raise Problem.of(amount)
    if amount == 0:
        raise Problem.of(Result.amount_must_be_positive)
    bank = body.destination_kind == "bank"
    if bank != (target.kind is money.AssetKind.FIAT):
        raise Problem.of(Result.currency_pair_unsupported)
    quote = await service(request).issue_quote(
        principal.client_id, source.code, target.code, amount, bank
    )
    if isinstance(quote, Result):
        raise Problem.of(quote)
    return json(render.quote(quote), status=201)


async def get_quote(request: web.Request) -> web.Response:
    """A quote as it was made, with every provider's answer (staff also see each raw
    response)."""
    principal = await authorize(request, Permission.READ)
    found = await visible(request, principal, "quote", "qt", service(request).quote, lambda f: f[0])
    return json(render.quote_detail(found[1], raw=principal.client_id is None))


# --- transfers ------------------------------------------------------------------------------------


def _replay(record: IdempotencyRecord, digest: str) -> web.Response:
    if record.request_hash != digest:
        raise Problem.of(
            Result.idempotency_key_reused, "this key was used with a different request body"
        )
    if record.status is IdempotencyStatus.IN_PROGRESS or record.response_body is None:
        raise Problem.of(
            Result.idempotency_request_in_progress, "the first request with this key is running"
        )
    assert record.response_status is not None
    return raw_json(
        record.response_body, record.response_status, headers={"Idempotent-Replayed": "true"}
    )


async def create_transfer(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.INITIATE)
    assert principal.client_id is not None
    key = request.headers.get("Idempotency-Key")
    if not key:
        raise Problem.http("idempotency_key_missing")
    if check_idempotency_key(key) is not Result.ok:
        raise Problem.http("idempotency_key_invalid")
    body = bodies.decode(await request.read(), bodies.TransferBody)
    digest = request_hash("POST /v1/transfers", body)
    command = c.CreateTransfer(
        transfer_id=request.app[IDS].new("tr"),
        client_id=principal.client_id,
        initiator=principal.user,
        idempotency_key=key,
        request_hash=digest,
        source_currency=body.source_currency,
        target_currency=body.target_currency,
        amount=body.amount,
        destination=bodies.destination(body.destination),
        reference=body.reference,
        metadata=body.metadata,
        quote_id=body.quote_id,
        request_id=request_id(request),
    )
    # The engine's validation ladder, run before anything is stored or any actor starts: a
    # malformed request leaves no trace and does not use up its idempotency key.
    checked = check_create(command)
    if checked is not Result.ok:
        raise Problem.of(checked)
    svc = service(request)
    record = await svc.idempotency_record(principal.client_id, key)
    if record is not None:
        return _replay(record, digest)
    created = await svc.create_transfer(command, request[AUDIT])
    request[AUDITED] = created.audited
    if created.result is not Result.ok:
        raise Problem.of(created.result)
    if created.holder == command.transfer_id and created.state is not None:
        # This request created the transfer and stored the answer rendered from this state.
        answer_status, answer_body = create_answer(created.state)
        return raw_json(answer_body, answer_status)
    record = await svc.idempotency_record(principal.client_id, key)
    if record is None:
        raise Problem.of(Result.outcome_unknown, "retry with the same Idempotency-Key")
    if created.holder != command.transfer_id:
        return _replay(record, digest)
    if record.response_body is None or record.response_status is None:
        raise Problem.of(Result.idempotency_request_in_progress)
    return raw_json(record.response_body, record.response_status)


async def get_transfer(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    return json(render.transfer(await _visible(request, principal)))


async def list_transfers(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    status = request.query.get("status")
    if status is not None and status not in Status.__members__:
        raise Problem.http("parameter_invalid", f"status is one of {', '.join(Status)}")
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, tuple[int, str]) if cursor else None
    query = TransferQuery(
        client_id=client_scope(request, principal),
        status=status,
        created_after=instant_param(request, "created_after"),
        created_before=instant_param(request, "created_before"),
        before=before,
        limit=limit + 1,
    )
    found = await service(request).transfers(query)
    return page_of(found, limit, render.transfer, lambda s: (s.created_at, s.transfer_id))


async def transfer_events(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    state = await _visible(request, principal)
    records = await service(request).history(state.transfer_id)
    return json({"data": render.history(records)})


async def _reason(request: web.Request) -> str:
    raw = await request.read()
    if not raw.strip():
        return ""
    return bodies.decode(raw, bodies.ReasonBody).reason


async def _command(
    request: web.Request, state: TransferState, command: c.TransferCommand
) -> web.Response:
    svc = service(request)
    result = await svc.command(state.transfer_id, command, request_id(request))
    if result is not Result.ok:
        raise Problem.of(result)
    after = await svc.transfer(state.transfer_id)
    assert after is not None
    return json(render.transfer(after))


async def cancel_transfer(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.INITIATE)
    state = await _visible(request, principal)
    reason = await _reason(request)
    return await _command(request, state, c.CancelTransfer(by=principal.user, reason=reason))


async def approve_transfer(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.APPROVE)
    state = await _visible(request, principal)
    raw = await request.read()
    body = bodies.decode(raw, bodies.ApproveBody) if raw.strip() else bodies.ApproveBody()
    approve = c.ApproveTransfer(by=principal.user, terms_hash=body.terms_hash)
    return await _command(request, state, approve)


async def reject_transfer(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.APPROVE)
    state = await _visible(request, principal)
    reason = await _reason(request)
    return await _command(request, state, c.RejectTransfer(by=principal.user, reason=reason))


# --- balances and the ledger ----------------------------------------------------------------------


def _client_required(request: web.Request, principal: Principal) -> str:
    client = client_scope(request, principal)
    if client is None:
        raise Problem.http("parameter_invalid", "a staff key names the client: ?client_id=")
    return client


async def balances(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    found = await service(request).balances(_client_required(request, principal))
    return json({"data": [render.balance(b) for b in found]})


async def ledger_entries(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    after = decode_cursor(cursor, tuple[int, int]) if cursor else None
    query = LedgerQuery(
        client_id=client_scope(request, principal),
        transfer_id=request.query.get("transfer_id"),
        account=request.query.get("account"),
        after=after,
        limit=limit + 1,
    )
    found = await service(request).ledger(query)
    return page_of(found, limit, render.ledger_line, lambda line: (line.journal_seq, line.leg))
