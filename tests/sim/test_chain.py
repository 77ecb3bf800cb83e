"""The simulated chain behaves like an EVM node where it matters for money: it takes only what the
custody key really signed (the signature is checked here with coincurve, independently of
eth-account), mines per sender in nonce order, lets a same-nonce replacement in only with a
higher fee and never mines both, a reorg undoes balances and re-mines the same transaction in
another block, and its indexer reports the Transfer logs of watched addresses once they are deep
enough, final blocks included, with a duplicated delivery under its own id."""

from __future__ import annotations

import random

import msgspec
import pytest
from coincurve import PublicKey
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from engine.chain import SignedTx
from engine.rails import IndexedBlocks, RailError, SignRequest, TxPresence
from sim.chain import SimChain
from sim.clock import VirtualClock, run_virtual
from sim.custody import SimCustody
from sim.faults import FaultLog, FaultPlan

TO = "0x" + "0f" * 20
FEE = 100 * 10**9


def world() -> tuple[SimChain, SimCustody]:
    chain = SimChain(random.Random(1), FaultLog(FaultPlan.none(), random.Random(2)))
    custody = SimCustody(seed=1)
    chain.mint("USDC", custody.address("ethereum"), 1_000_000)
    return chain, custody


def sign(custody: SimCustody, nonce: int, amount: int = 100, fee: int = FEE) -> SignedTx:
    request = SignRequest(
        chain="ethereum",
        to_address=TO,
        currency="USDC",
        amount=amount,
        nonce=nonce,
        max_fee_per_gas=fee,
    )
    return run_virtual(lambda: custody.sign(request), VirtualClock())


def broadcast(chain: SimChain, tx: SignedTx) -> str:
    return run_virtual(lambda: chain.broadcast("ethereum", tx.raw), VirtualClock())


def test_the_custody_signature_recovers_to_the_treasury_address_independently() -> None:
    _, custody = world()
    tx = sign(custody, 0)
    raw = HexBytes(tx.raw)
    fields = TypedTransaction.from_bytes(raw).as_dict()
    signature = fields["r"].to_bytes(32, "big") + fields["s"].to_bytes(32, "big")
    signature += bytes([fields["v"]])
    signing_hash = TypedTransaction.from_bytes(raw).hash()
    public = PublicKey.from_signature_and_message(signature, bytes(signing_hash), hasher=None)
    address = "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()
    assert address == custody.address("ethereum") == tx.from_address
    assert tx.tx_hash == "0x" + keccak(raw).hex()


def test_a_nonce_gap_holds_later_transactions_until_it_is_filled() -> None:
    chain, custody = world()
    later, first = sign(custody, 1), sign(custody, 0)
    broadcast(chain, later)
    chain.produce()
    assert later.tx_hash in chain.mempool and chain.nonces.get(first.from_address, 0) == 0
    broadcast(chain, first)
    chain.produce()
    assert [t.tx_hash for t in chain.mined_transfers()] == [first.tx_hash, later.tx_hash]
    assert chain.balance("USDC", TO) == 200


def test_a_replacement_needs_a_higher_fee_and_only_one_of_the_pair_mines() -> None:
    chain, custody = world()
    original = sign(custody, 0, fee=FEE)
    broadcast(chain, original)
    with pytest.raises(RailError, match="underpriced"):
        broadcast(chain, sign(custody, 0, fee=FEE + 1))
    replacement = sign(custody, 0, fee=FEE * 9 // 8 + 1)
    broadcast(chain, replacement)
    for _ in range(3):
        chain.produce()
    assert [t.tx_hash for t in chain.mined_transfers()] == [replacement.tx_hash]
    status = run_virtual(lambda: chain.presence("ethereum", original.tx_hash), VirtualClock())
    assert status is TxPresence.UNKNOWN
    with pytest.raises(RailError, match="nonce too low"):
        broadcast(chain, original)


def test_a_reorg_undoes_the_block_and_the_same_transaction_mines_again_elsewhere() -> None:
    chain, custody = world()
    tx = sign(custody, 0, amount=500)
    broadcast(chain, tx)
    chain.produce()
    first = run_virtual(lambda: chain.receipt("ethereum", tx.tx_hash), VirtualClock())
    assert first is not None and chain.balance("USDC", TO) == 500
    chain.reorg(1)
    again = run_virtual(lambda: chain.receipt("ethereum", tx.tx_hash), VirtualClock())
    assert again is not None and again.block_hash != first.block_hash
    assert chain.balance("USDC", TO) == 500  # undone, then re-applied once
    assert len(chain.mined_transfers()) == 1
    assert chain.balance("USDC", tx.from_address) == 1_000_000 - 500


def indexed(
    chain: SimChain, first: int, addresses: frozenset[str], confirmations: int = 3
) -> IndexedBlocks:
    return run_virtual(
        lambda: chain.transfers(
            "ethereum", first, addresses, confirmations=confirmations, blocks_max=1_000
        ),
        VirtualClock(),
    )


def test_the_indexer_reports_each_log_of_a_watched_address_once_it_is_deep_enough() -> None:
    chain, custody = world()
    treasury = custody.address("ethereum")
    tx = sign(custody, 0, amount=700)
    broadcast(chain, tx)
    chain.produce()  # mined in block 1
    assert indexed(chain, 0, frozenset({treasury})).logs == ()  # 1 confirmation of 3
    for _ in range(2):
        chain.produce()
    answer = indexed(chain, 0, frozenset({treasury}))
    assert [b[0] for b in answer.blocks] == [0, 1]
    assert answer.blocks[1][2] == answer.blocks[0][1]  # each block names its parent
    [log] = answer.logs
    receipt = run_virtual(lambda: chain.receipt("ethereum", tx.tx_hash), VirtualClock())
    assert receipt is not None
    assert (log.tx_hash, log.block_number, log.block_hash, log.amount) == (
        tx.tx_hash, 1, receipt.block_hash, 700,
    )  # fmt: skip
    assert (log.from_address, log.to_address, log.currency) == (treasury, TO, "USDC")
    assert indexed(chain, 0, frozenset({"0x" + "aa" * 20})).logs == ()  # not watched
    assert indexed(chain, 0, frozenset({treasury})) == answer  # the same ids when asked again


def test_final_blocks_stay_readable_and_a_duplicated_delivery_has_a_second_id() -> None:
    chain, custody = world()
    chain.faults = FaultLog(FaultPlan(rates={"indexer_duplicate": 1.0}), random.Random(2))
    tx = sign(custody, 0, amount=700)
    broadcast(chain, tx)
    for _ in range(80):  # block 1 is final (pruned from the reorg tail) long before the end
        chain.produce()
    assert tx.tx_hash in chain.finalized
    chain.forget_final()  # the node prunes receipts, but not blocks the indexer has not read
    answer = indexed(chain, 1, frozenset({custody.address("ethereum")}), confirmations=12)
    # Blocks 1 to the one with 12 confirmations (head - 11), none skipped.
    assert [b[0] for b in answer.blocks] == list(range(1, chain.head - 10))
    first, again = answer.logs
    assert first.event_id != again.event_id
    assert msgspec.structs.replace(again, event_id=first.event_id) == first


def test_blocks_the_indexer_read_are_pruned_and_a_restart_resumes_where_history_starts() -> None:
    chain, custody = world()
    treasury = frozenset({custody.address("ethereum")})
    for _ in range(200):
        chain.produce()
    indexed(chain, 0, treasury, confirmations=12)
    indexed(chain, 189, treasury, confirmations=12)  # read up to 188 before: prunes below 125
    assert min(chain.final_blocks) == 125
    again = indexed(chain, 0, treasury, confirmations=12)  # a feed restarted from far back
    assert again.blocks[0][0] == 125
