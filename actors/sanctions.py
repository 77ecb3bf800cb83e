"""The sanctions list in force: brought into force whole, audited, and re-screening what it must.

A list comes into force at start and again whenever an operator reloads it. Each time the audit
log records what it holds (its digest, entries, names, addresses, file date), and every
transfer not yet on chain is screened against the new list at once (at start, as soon as the
transfers are running again): one whose party the new list names fails with `sanctions_hit`
(its hold released) and raises an alert, without waiting for the screening before broadcast
(which still happens). A list older than its configured age raises one `sanctions_list_stale`
alert for that list (the timer supervisor asks every poll).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.alerts import raise_alert
from actors.screening import ListScreener
from engine import commands as c
from engine import limits, sanctions
from engine.audit import ActorType, AuditRecord
from engine.records import Committed
from engine.results import Result
from engine.sanctions import ListInForce, Rescreened, SanctionsList
from engine.timefmt import rfc3339

if TYPE_CHECKING:
    from actors.context import Context
    from actors.registry import Registry

ALERT_SANCTIONS_HIT = "sanctions_hit"
ALERT_LIST_STALE = "sanctions_list_stale"


async def bring_into_force(
    ctx: Context,
    registry: Registry,
    listed: SanctionsList,
    in_force: ListInForce,
    *,
    by: str,
    actor_type: ActorType,
    reason: str,
    rescreen: bool,
) -> Rescreened:
    """Screen against `listed` from now on; audit it; with `rescreen`, screen every transfer not
    yet on chain again."""
    screener = ListScreener(listed)
    ctx.sanctions.screener = screener
    ctx.sanctions.in_force = in_force
    h = in_force.holdings
    record = AuditRecord(
        at=ctx.clock.now_us(),
        actor_id=by,
        actor_type=actor_type,
        action_type="load_sanctions_list",
        resource_type="sanctions",
        resource_id=h.digest[:16],
        outcome="ok",
        diff_summary={
            "digest": h.digest,
            "entries": str(h.entries),
            "names": str(h.names),
            "aliases": str(h.aliases),
            "addresses": str(h.addresses),
            "file_date": rfc3339(in_force.file_date),
        },
        metadata={"reason": reason, "sources": ", ".join(in_force.sources)[:400]},
    )
    assert isinstance(await ctx.journal.audit([record]), Committed)
    if not rescreen:
        return Rescreened(screened=0, failed=())
    return await rescreen_pending(ctx, registry)


async def rescreen_pending(ctx: Context, registry: Registry) -> Rescreened:
    """Screen every transfer not yet on chain against the list in force; fail those it names."""
    screener = ctx.sanctions.screener
    screened = 0
    failed: list[str] = []
    after = ""
    while True:
        page = await ctx.journal.before_chain(None, None, after, limits.recovery_page_max)
        for transfer_id in page:
            state = await ctx.journal.transfer(transfer_id)
            if state is None:
                continue
            screened += 1
            found = await screener.screen(
                sanctions.Stage.RELOAD, state.client_id, state.destination
            )
            if not found.hits:
                continue
            detail = sanctions.describe(found)
            message = f"sanctions list match on reload: {detail}"
            command = c.FailTransfer(
                code=Result.sanctions_hit.code,
                message=message[: limits.failure_message_length_max],
                screening=found,
            )
            # On chain by now: refused, and the screening before broadcast has had its say.
            if await registry.ask(transfer_id, command) is not Result.ok:
                continue
            failed.append(transfer_id)
            await raise_alert(
                ctx,
                kind=ALERT_SANCTIONS_HIT,
                transfer_id=transfer_id,
                status=state.status.value,
                cause_at_us=ctx.clock.now_us(),
                detail=detail,
            )
        if len(page) < limits.recovery_page_max:
            return Rescreened(screened=screened, failed=tuple(failed))
        after = page[-1]


async def check_age(ctx: Context, now: int) -> None:
    """One alert per list whose files are older than its configured age."""
    in_force = ctx.sanctions.in_force
    digest = in_force.holdings.digest
    if not in_force.stale(now) or ctx.sanctions.stale_alerted == digest:
        return
    days = (now - in_force.file_date) // 86_400_000_000
    await raise_alert(
        ctx,
        kind=ALERT_LIST_STALE,
        transfer_id=None,
        status=None,
        cause_at_us=in_force.stale_after,
        detail=(
            f"the sanctions list in force ({digest[:16]}, {in_force.holdings.entries} entries)"
            f" dates from {rfc3339(in_force.file_date)}, {days} days ago: load a current one"
        ),
    )
    ctx.sanctions.stale_alerted = digest
