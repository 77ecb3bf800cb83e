"""Sanctions screening (Series 10): the sender and the beneficiary of every transfer are checked
against a sanctions list at creation and again before the payment is signed for broadcast; every
result is stored with the transfer; a hit refuses the transfer (`sanctions_hit`) and raises an
operator alert.

The list is read from a file in the style of OFAC's SDN list (`sdn.csv`: entry number, name, type,
program, remarks), where digital currency addresses sit in the remarks as
`Digital Currency Address - ETH 0x…;`, aliases as `a.k.a. 'NAME'` and bank accounts as
`Account 646180157000000004 (CLABE)`. Matching is normalized: addresses compare without their
EIP-55 checksum (case-insensitively), names without case, diacritics, punctuation or word order
("MÜLLER-ÖZTÜRK, José" matches "Jose Muller Ozturk").

Pure: the caller reads the file and hands its text in.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import re
import unicodedata
from collections.abc import Awaitable
from typing import Protocol

import msgspec

from engine import destinations
from engine.destinations import Destination

RULE_ID = "sanctions_screening"
_ADDRESS = re.compile(r"Digital Currency Address - ([A-Z0-9]+) (0x[0-9a-fA-F]{40})")
_ALIAS = re.compile(r"a\.k\.a\. '([^']+)'")
_CLABE = re.compile(r"Account ([0-9]{18}) \(CLABE\)")


class Stage(enum.StrEnum):
    CREATION = "creation"
    BROADCAST = "broadcast"


class Party(enum.StrEnum):
    SENDER = "sender"
    BENEFICIARY = "beneficiary"


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    party: Party
    # address | name | account
    kind: str
    value: str
    # The list entry it matched (the SDN entry number).
    entry: str


class Screening(msgspec.Struct, frozen=True, kw_only=True):
    """One screening's result, stored whether or not it hit."""

    stage: Stage
    list_digest: str
    entries: int
    hits: tuple[Hit, ...] = ()


class SanctionsList(msgspec.Struct, frozen=True, kw_only=True):
    digest: str
    entries: int
    # normalized value -> entry number
    addresses: dict[str, str]
    names: dict[str, str]
    accounts: dict[str, str]


def normalize_name(text: str) -> str:
    """Case, diacritics, punctuation and word order removed: 'MÜLLER-ÖZTÜRK, José' ->
    'jose muller ozturk'."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = re.findall(r"[0-9a-z]+", plain)
    return " ".join(sorted(words))


def parse_list(text: str) -> SanctionsList | list[str]:
    """An SDN-style CSV list, or its problems."""
    addresses: dict[str, str] = {}
    names: dict[str, str] = {}
    accounts: dict[str, str] = {}
    problems: list[str] = []
    entries = 0
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) < 5 or not row[0].strip().isdigit():
            problems.append(f"line {number}: entry number, name, type, program, remarks")
            continue
        entries += 1
        entry, name, remarks = row[0].strip(), row[1], row[4]
        for value in [name, *_ALIAS.findall(remarks)]:
            if normalize_name(value):
                names[normalize_name(value)] = entry
        for _, address in _ADDRESS.findall(remarks):
            addresses[destinations.normalize_address(address)] = entry
        for clabe in _CLABE.findall(remarks):
            accounts[clabe] = entry
    if problems:
        return problems
    return SanctionsList(
        digest=hashlib.sha256(text.encode()).hexdigest(),
        entries=entries,
        addresses=addresses,
        names=names,
        accounts=accounts,
    )


def screen(listed: SanctionsList, stage: Stage, sender: str, beneficiary: Destination) -> Screening:
    """Screen the sender (the client, by name) and the beneficiary (a wallet by address; a bank
    account by account number and holder name)."""
    hits: list[Hit] = []
    if (entry := listed.names.get(normalize_name(sender))) is not None:
        hits.append(Hit(party=Party.SENDER, kind="name", value=sender, entry=entry))
    match beneficiary:
        case destinations.WalletDestination(address=address):
            found = listed.addresses.get(destinations.normalize_address(address))
            if found is not None:
                hits.append(
                    Hit(party=Party.BENEFICIARY, kind="address", value=address, entry=found)
                )
        case destinations.BankDestination(clabe=clabe, name=name):
            if (found := listed.accounts.get(clabe)) is not None:
                hits.append(Hit(party=Party.BENEFICIARY, kind="account", value=clabe, entry=found))
            if (found := listed.names.get(normalize_name(name))) is not None:
                hits.append(Hit(party=Party.BENEFICIARY, kind="name", value=name, entry=found))
    return Screening(
        stage=stage, list_digest=listed.digest, entries=listed.entries, hits=tuple(hits)
    )


class Screener(Protocol):
    """The screening port: a vendor's API in production can stand where the list does."""

    def screen(
        self, stage: Stage, sender: str, beneficiary: Destination
    ) -> Awaitable[Screening]: ...


def describe(screening: Screening) -> str:
    return "; ".join(
        f"{h.party.value} {h.kind} {h.value} (SDN entry {h.entry})" for h in screening.hits
    )


# A small sample in the SDN list's style, fictional entries: shipped so screening works out of the
# box in development and tests. Production points `[sanctions] file` at the real, current list.
_SAMPLE_ROWS = (
    ("90001", "KOVALENKO, Dmytro Ivanovych", "individual", "CYBER2",
     "DOB 14 Feb 1985; Digital Currency Address - ETH 0x5A1C7eD0DDBa11000000000000000000000000aB;"
     " Digital Currency Address - XBT 1FfmbHfnpaZjKFvyi1okTjJJusN455paPH; a.k.a. 'KOVAL'."),
    ("90002", "NORTHWIND MIXER", "entity", "CYBER2",
     "Website northwind.example;"
     " Digital Currency Address - ETH 0x7dB418B5d567a4E0e8C59Ad71bE1fcE48F3E6107;"
     " Digital Currency Address - USDC 0x72A5843cc08275C8171E582972Aa4fDa8C397B2A."),
    ("90003", "MÜLLER-ÖZTÜRK, José", "individual", "SDGT", "a.k.a. 'PEPE MULLER'."),
    ("90004", "BANCO EJEMPLO SANCIONADO, S.A.", "entity", "VENEZUELA-EO13850",
     "Account 646180157000000004 (CLABE)."),
    ("90005", "Blocked Trading House", "entity", "RUSSIA-EO14024", "a.k.a. 'blocked-co'."),
)  # fmt: skip


def _sample_text() -> str:
    out = io.StringIO()
    out.write("# ent_num,SDN_Name,SDN_Type,Program,Remarks (fictional entries, SDN style)\n")
    csv.writer(out, lineterminator="\n").writerows(_SAMPLE_ROWS)
    return out.getvalue()


SAMPLE_LIST = _sample_text()


def sample() -> SanctionsList:
    found = parse_list(SAMPLE_LIST)
    assert isinstance(found, SanctionsList), found
    return found
