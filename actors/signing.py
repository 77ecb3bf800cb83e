"""Signing a payment from a treasury wallet: the one way every outgoing transaction is made (a
transfer's payment, its fee-bumped replacement, a rebalancing move).

A first payment takes the nonce the nonce book reserves for its owner (a transfer's id, a move's
id: re-signing after a crash takes the same one); a replacement keeps its nonce and raises both
fees past what nodes require. The caller journals the signed transaction before it is broadcast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.retry import call_rail
from engine import limits
from engine.chain import SignedTx
from engine.rails import SignRequest
from engine.results import Result

if TYPE_CHECKING:
    from actors.context import Context


def bumped_fee(previous: int, suggested: int) -> int:
    """At least 12.5% above `previous` (nodes refuse a bump under 10% on either fee field) and
    at least the market."""
    floor = previous * limits.fee_bump_numerator // limits.fee_bump_denominator + 1
    return max(floor, suggested)


async def sign_payment(
    ctx: Context,
    owner: str,
    *,
    chain: str,
    to_address: str,
    currency: str,
    amount: int,
    nonce: int | None = None,
    min_max_fee_per_gas: int | None = None,
    min_priority_fee_per_gas: int | None = None,
) -> SignedTx:
    """`owner`'s payment signed by custody: with a newly reserved nonce, or (`nonce` given) as
    a replacement with both fees raised past the `min_` ones."""
    view = await call_rail(
        lambda: ctx.rails.chain.view(chain),
        key=f"{owner}:view",
        unavailable=Result.chain_unavailable,
    )
    tip = view.suggested_priority_fee_per_gas
    if nonce is None:
        nonce = ctx.nonces.reserve(wallet_of(ctx, chain), owner)
        fee = view.suggested_max_fee_per_gas
    else:
        assert min_max_fee_per_gas is not None
        fee = bumped_fee(min_max_fee_per_gas, view.suggested_max_fee_per_gas)
        if min_priority_fee_per_gas:
            tip = bumped_fee(min_priority_fee_per_gas, tip)
    request = SignRequest(
        chain=chain,
        to_address=to_address,
        currency=currency,
        amount=amount,
        nonce=nonce,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=min(tip, fee),
    )
    tx = await call_rail(lambda: ctx.rails.custody.sign(request), key=f"{owner}:sign:{nonce}:{fee}")
    ctx.drills.failpoint("chain.after_sign")
    return tx


def wallet_of(ctx: Context, chain: str) -> tuple[str, str]:
    """The nonce book's key for our treasury wallet on `chain`."""
    return (chain, ctx.rails.custody.address(chain).lower())
