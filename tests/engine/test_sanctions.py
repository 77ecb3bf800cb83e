"""Sanctions screening matches what it should and only that: addresses without their checksum
case, names without case, diacritics, punctuation or word order, aliases and bank accounts from
the remarks; a malformed list is refused naming its lines."""

from __future__ import annotations

import pytest

from engine import sanctions
from engine.destinations import BankDestination, WalletDestination
from engine.sanctions import Party, Stage

LISTED = "0x5A1C7eD0DDBa11000000000000000000000000aB"
CLEAN = "0x" + "12" * 20


def wallet(address: str) -> WalletDestination:
    return WalletDestination(chain="ethereum", address=address)


def bank(name: str, clabe: str = "032180000118359719") -> BankDestination:
    return BankDestination(country="MX", clabe=clabe, name=name)


@pytest.mark.parametrize(
    ("sender", "beneficiary", "expected"),
    [
        ("acme", wallet(CLEAN), []),
        ("acme", wallet(LISTED), [(Party.BENEFICIARY, "address", "90001")]),
        ("acme", wallet(LISTED.lower()), [(Party.BENEFICIARY, "address", "90001")]),
        ("acme", wallet("0x" + LISTED[2:].upper()), [(Party.BENEFICIARY, "address", "90001")]),
        ("acme", bank("Jose Muller Ozturk"), [(Party.BENEFICIARY, "name", "90003")]),
        ("acme", bank("ÖZTÜRK josé  müller"), [(Party.BENEFICIARY, "name", "90003")]),
        ("acme", bank("Pepe Müller"), [(Party.BENEFICIARY, "name", "90003")]),
        ("acme", bank("Jose Muller"), []),
        ("acme", bank("Ana", "646180157000000004"), [(Party.BENEFICIARY, "account", "90004")]),
        ("Blocked-Co", wallet(CLEAN), [(Party.SENDER, "name", "90005")]),
        ("northwind.mixer", wallet(LISTED), [(Party.SENDER, "name", "90002"),
                                             (Party.BENEFICIARY, "address", "90001")]),
    ],
)  # fmt: skip
def test_screening(sender: str, beneficiary: WalletDestination | BankDestination,
                   expected: list[tuple[Party, str, str]]) -> None:  # fmt: skip
    found = sanctions.screen(sanctions.sample(), Stage.CREATION, sender, beneficiary)
    assert [(h.party, h.kind, h.entry) for h in found.hits] == expected
    assert found.entries == 5 and len(found.list_digest) == 64


def test_a_malformed_list_names_its_lines() -> None:
    problems = sanctions.parse_list('# header\n90001,"ONLY A NAME"\nabc,x,y,z,w\n')
    assert problems == [
        "line 2: entry number, name, type, program, remarks",
        "line 3: entry number, name, type, program, remarks",
    ]


def test_a_new_list_has_a_new_digest() -> None:
    more = sanctions.SAMPLE_LIST + '90006,"NEW PERSON",individual,SDGT,""\n'
    parsed = sanctions.parse_list(more)
    assert isinstance(parsed, sanctions.SanctionsList)
    assert parsed.entries == 6 and parsed.digest != sanctions.sample().digest
