"""Where a transfer pays out: an external wallet, or a bank account reached through an off-ramp.

Destinations are tagged msgspec Structs (`kind`), validated here purely: an Ethereum address is
0x + 40 hex digits (compared case-insensitively; EIP-55 checksums need keccak and are checked at the
API edge), a Mexican CLABE is 18 digits with its weighted check digit.
"""

from __future__ import annotations

import re

import msgspec

from engine.results import Result
from engine.states import Route

CHAINS = frozenset({"ethereum"})
# Country -> the currency its bank accounts are paid in, for the corridors the engine knows.
BANK_COUNTRIES = {"MX": "MXN"}

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_CLABE = re.compile(r"[0-9]{18}")
_CLABE_WEIGHTS = (3, 7, 1)
name_length_max = 100


class WalletDestination(msgspec.Struct, frozen=True, kw_only=True, tag="wallet", tag_field="kind"):
    chain: str
    address: str


class BankDestination(msgspec.Struct, frozen=True, kw_only=True, tag="bank", tag_field="kind"):
    country: str
    clabe: str
    name: str


Destination = WalletDestination | BankDestination


def is_address(text: str) -> bool:
    return isinstance(text, str) and _ADDRESS.fullmatch(text) is not None


def normalize_address(text: str) -> str:
    return text.lower()


def clabe_valid(clabe: str) -> bool:
    if not isinstance(clabe, str) or _CLABE.fullmatch(clabe) is None:
        return False
    digits = [int(c) for c in clabe]
    total = sum((d * _CLABE_WEIGHTS[i % 3]) % 10 for i, d in enumerate(digits[:17]))
    return (10 - total % 10) % 10 == digits[17]


def route_of(destination: Destination) -> Route:
    match destination:
        case WalletDestination():
            return Route.WALLET
        case BankDestination():
            return Route.BANK


def check_destination(destination: Destination) -> Result:
    match destination:
        case WalletDestination(chain=chain, address=address):
            if chain not in CHAINS:
                return Result.destination_invalid
            if not is_address(address) or int(address, 16) == 0:
                return Result.destination_invalid
            return Result.ok
        case BankDestination(country=country, clabe=clabe, name=name):
            if country not in BANK_COUNTRIES:
                return Result.destination_invalid
            if not clabe_valid(clabe):
                return Result.destination_invalid
            if not name.strip() or len(name) > name_length_max or not name.isprintable():
                return Result.destination_invalid
            return Result.ok
