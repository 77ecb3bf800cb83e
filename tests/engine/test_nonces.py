"""The nonce book keeps a treasury wallet's nonces gap-free: a transfer re-signing after a crash
gets its own nonce back, a reservation that never reached the journal is handed to the next
signer, and a book rebuilt from the journal finds the holes a crash left."""

from __future__ import annotations

from engine.chain import SignedTx
from engine.nonces import NonceBook

WALLET = ("ethereum", "0x" + "7e" * 20)


def tx(nonce: int) -> SignedTx:
    return SignedTx(
        chain="ethereum",
        tx_hash="0x" + f"{nonce:064x}",
        raw="0x00",
        nonce=nonce,
        from_address=WALLET[1],
        to_address="0x" + "0f" * 20,
        currency="USDC",
        amount=1,
        max_fee_per_gas=1,
    )


def test_a_transfer_reserving_again_gets_the_same_nonce() -> None:
    book = NonceBook()
    book.open(WALLET, 5)
    assert book.reserve(WALLET, "tr_a") == 5
    assert book.reserve(WALLET, "tr_b") == 6
    assert book.reserve(WALLET, "tr_a") == 5


def test_a_released_reservation_is_the_next_signers_nonce() -> None:
    book = NonceBook()
    book.open(WALLET, 0)
    assert book.reserve(WALLET, "tr_a") == 0
    assert book.reserve(WALLET, "tr_b") == 1
    book.settle(WALLET, "tr_b", tx(1))
    book.settle(WALLET, "tr_a", None)  # tr_a was cancelled before its transaction was journaled
    assert book.holes(WALLET) == [0]
    assert book.reserve(WALLET, "tr_c") == 0
    assert book.reserve(WALLET, "tr_d") == 2


def test_a_book_rebuilt_from_the_journal_fills_the_holes_first() -> None:
    book = NonceBook()
    book.open(WALLET, 3, [tx(3), tx(5), tx(5), tx(7)])  # 5 twice: a replacement
    assert book.holes(WALLET) == [4, 6]
    assert [book.reserve(WALLET, t) for t in ("tr_a", "tr_b", "tr_c")] == [4, 6, 8]


def test_the_book_stays_small_however_long_the_wallets_history() -> None:
    book = NonceBook()
    book.open(WALLET, 0, [tx(n) for n in range(1_000)])
    assert book.tracked(WALLET) == 0 and book.holes(WALLET) == []
    for n in range(1_000, 11_000):
        transfer = f"tr_{n}"
        assert book.reserve(WALLET, transfer) == n
        book.settle(WALLET, transfer, tx(n))
    assert book.tracked(WALLET) == 0
    # A transaction journaled out of order is held above the floor until the gap below it fills.
    assert book.reserve(WALLET, "tr_x") == 11_000
    assert book.reserve(WALLET, "tr_y") == 11_001
    book.settle(WALLET, "tr_y", tx(11_001))
    assert book.tracked(WALLET) == 2  # 11,000 reserved, 11,001 used above the floor
    book.settle(WALLET, "tr_x", None)
    assert book.holes(WALLET) == [11_000]
    assert book.reserve(WALLET, "tr_z") == 11_000
    book.settle(WALLET, "tr_z", tx(11_000))
    assert book.tracked(WALLET) == 0 and book.reserve(WALLET, "tr_next") == 11_002
