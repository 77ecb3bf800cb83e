"""Sanctions screening (Series 10): the sender and the beneficiary of every transfer are checked
against a sanctions list at creation and again before the payment is signed for broadcast; every
result is stored with the transfer; a hit refuses the transfer (`sanctions_hit`) and raises an
operator alert.

The list is OFAC's own CSV distribution, read as OFAC publishes it (its data specification): no
header row, records separated by line breaks, a missing value written `-0-` (often `-0- `), the
last line sometimes a DOS end-of-file mark (Ctrl-Z). The files, by their published names:

  SDN.CSV           12 columns: ent_num, SDN_Name, SDN_Type, Program, Title, Call_Sign,
  CONS_PRIM.CSV     Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks (the consolidated
                    non-SDN lists in the same layout)
  ALT.CSV           5 columns: ent_num, alt_num, alt_type (aka, fka, nka), alt_name, alt_remarks
  CONS_ALT.CSV
  ADD.CSV           6 columns: ent_num, add_num, address, city/state/postal code, country,
  CONS_ADD.CSV      add_remarks (postal addresses: counted, not screened: no party here has one)
  SDN_COMMENTS.CSV  2 columns: ent_num, the rest of a Remarks field past its 1,000 characters
  CONS_COMMENTS.CSV (OFAC's "spillover" files), joined to the remarks before they are read

A file with another name is placed by its column count. Digital currency addresses sit in the
remarks, `Digital Currency Address - ETH 0x…; alt. Digital Currency Address - USDT 0x…;`; every
asset tag whose address has the EVM form (0x and 40 hex digits: ETH, USDC, USDT, ETC, ARB, BSC,
…) is screened, since every wallet we pay is an EVM address. Names are the SDN_Name and every
alias (ALT.CSV, and `a.k.a. 'NAME'` in the remarks); bank accounts are read from remarks written
`Account 646180157000000004 (CLABE)`.

A list that cannot be what it claims is refused whole, naming why, instead of screening nothing:
a row of the wrong shape, no entries at all, or entries under cyber or North Korea programs
(whose designations carry wallet addresses) with not one address read (the remarks column was
not where this reader looks). An alias or spillover remark of an entry no list file holds (files
from different publications) is screened all the same and counted (`orphan_rows`).

Matching is normalized: addresses compare without their EIP-55 checksum (case-insensitively),
names without case, diacritics, punctuation or word order ("MÜLLER-ÖZTÜRK, José" matches "Jose
Muller Ozturk").

Pure: the caller reads the files and hands their text in.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import re
import unicodedata
from collections.abc import Awaitable, Iterator
from typing import Protocol

import msgspec

from engine import destinations
from engine.destinations import Destination
from engine.problems import Problems

RULE_ID = "sanctions_screening"
# A remark's digital currency address: the asset tag and the address as written.
_ADDRESS = re.compile(r"Digital Currency Address - ([A-Za-z0-9]+) ([A-Za-z0-9:]+)")
_EVM = re.compile(r"0x[0-9a-fA-F]{40}")
_ALIAS = re.compile(r"\b[afn]\.k\.a\. '([^']+)'")
_CLABE = re.compile(r"Account ([0-9]{18}) \(CLABE\)")
_PROGRAM = re.compile(r"[A-Z0-9][A-Z0-9-]*")
# Programs whose designations name wallets (OFAC's cyber-related and North Korea programs).
_WALLET_PROGRAMS = re.compile(r"^(CYBER|DPRK)")
# OFAC's null value.
NULL = "-0-"
ENTRIES_MAX = 200_000


class Stage(enum.StrEnum):
    CREATION = "creation"
    BROADCAST = "broadcast"
    # Screened again because a new list came into force while the transfer was not yet sent.
    RELOAD = "reload"


class Party(enum.StrEnum):
    SENDER = "sender"
    BENEFICIARY = "beneficiary"


class Role(enum.StrEnum):
    """What a file of the distribution holds."""

    PRIMARY = "primary"
    ALIASES = "aliases"
    ADDRESSES = "addresses"
    COMMENTS = "comments"


COLUMNS = {Role.PRIMARY: 12, Role.ALIASES: 5, Role.ADDRESSES: 6, Role.COMMENTS: 2}
_LAYOUT = {
    Role.PRIMARY: "ent_num, SDN_Name, SDN_Type, Program, Title, Call_Sign, Vess_type, Tonnage,"
    " GRT, Vess_flag, Vess_owner, Remarks",
    Role.ALIASES: "ent_num, alt_num, alt_type, alt_name, alt_remarks",
    Role.ADDRESSES: "ent_num, add_num, address, city/state/postal code, country, add_remarks",
    Role.COMMENTS: "ent_num, remarks (continued)",
}
# The SDN list, and OFAC's consolidated (non-SDN) sanctions lists.
SDN = "SDN"
CONSOLIDATED = "CONS"
# OFAC's published file names (case-insensitive) -> (list, role).
OFAC_FILES: dict[str, tuple[str, Role]] = {
    "sdn.csv": (SDN, Role.PRIMARY),
    "alt.csv": (SDN, Role.ALIASES),
    "add.csv": (SDN, Role.ADDRESSES),
    "sdn_comments.csv": (SDN, Role.COMMENTS),
    "cons_prim.csv": (CONSOLIDATED, Role.PRIMARY),
    "cons_alt.csv": (CONSOLIDATED, Role.ALIASES),
    "cons_add.csv": (CONSOLIDATED, Role.ADDRESSES),
    "cons_comments.csv": (CONSOLIDATED, Role.COMMENTS),
}


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    party: Party
    # address | name | account
    kind: str
    value: str
    # The list entry it matched (its ent_num), and the list (SDN or CONS).
    entry: str
    list: str = SDN


class Screening(msgspec.Struct, frozen=True, kw_only=True):
    """One screening's result, stored whether or not it hit."""

    stage: Stage
    list_digest: str
    entries: int
    hits: tuple[Hit, ...] = ()


class ListFile(msgspec.Struct, frozen=True, kw_only=True):
    """One file of the distribution as handed in: its name (which places it) and its text."""

    name: str
    text: str


class FileSummary(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    list: str
    role: Role
    rows: int
    sha256: str


class Holdings(msgspec.Struct, frozen=True, kw_only=True):
    """What a loaded list holds, for operators and the audit log."""

    digest: str
    files: tuple[FileSummary, ...]
    entries: int
    # Entries per list (SDN, CONS).
    lists: dict[str, int]
    # Distinct normalized names: primary names, and aliases (ALT files and remarks).
    names: int
    aliases: int
    # Distinct EVM-form addresses (screened), per asset tag, and addresses of other chains.
    addresses: int
    address_assets: dict[str, int]
    other_addresses: int
    # 0x addresses cut short (a Remarks field past its limit without its comments file).
    truncated_addresses: int
    accounts: int
    postal_addresses: int
    # Entries under cyber-related or North Korea programs.
    wallet_program_entries: int
    # Alias and comment rows of entries no primary file holds (files of different
    # publications): screened all the same, since missing a name is the worse mistake.
    orphan_rows: int = 0


class SanctionsList(msgspec.Struct, frozen=True, kw_only=True):
    holdings: Holdings
    # normalized value -> (list, entry number)
    addresses: dict[str, tuple[str, str]]
    names: dict[str, tuple[str, str]]
    accounts: dict[str, tuple[str, str]]

    @property
    def digest(self) -> str:
        return self.holdings.digest

    @property
    def entries(self) -> int:
        return self.holdings.entries


class ListInForce(msgspec.Struct, frozen=True, kw_only=True):
    """A list as it was brought into force: what it holds, where it came from, the date of its
    files (the publication date when configured, else the newest file's modification time)
    and when it is too old to trust."""

    holdings: Holdings
    sources: tuple[str, ...]
    file_date: int
    loaded_at: int
    max_age_us: int
    # True for the shipped sample of fictional entries.
    sample: bool = False

    @property
    def stale_after(self) -> int:
        return self.file_date + self.max_age_us

    def stale(self, now: int) -> bool:
        return not self.sample and now > self.stale_after


class Rescreened(msgspec.Struct, frozen=True, kw_only=True):
    """What bringing a new list into force found among the transfers not yet on chain: how
    many were screened again, and those that failed on a hit."""

    screened: int
    failed: tuple[str, ...]


def normalize_name(text: str) -> str:
    """Case, diacritics, punctuation and word order removed: 'MÜLLER-ÖZTÜRK, José' ->
    'jose muller ozturk'."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = re.findall(r"[0-9a-z]+", plain)
    return " ".join(sorted(words))


def place(name: str, first_row: list[str] | None) -> tuple[str, Role] | None:
    """The list and role of a file: by OFAC's published name, else by its first row's column
    count (None: neither tells)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if base in OFAC_FILES:
        return OFAC_FILES[base]
    if first_row is None:
        return None
    listed = CONSOLIDATED if base.startswith("cons") else SDN
    for role, columns in COLUMNS.items():
        if len(first_row) == columns:
            return listed, role
    return None


def _cell(text: str) -> str:
    text = text.strip()
    return "" if text == NULL else text


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row; OFAC's nulls read as empty text, a header
    row (some re-publishers add one) and the DOS end-of-file mark skipped."""
    reader = csv.reader(io.StringIO(text.replace("\x1a", ""), newline=None))
    for n, row in enumerate(reader, start=1):
        cells = [_cell(c) for c in row]
        if not any(cells):
            continue
        if n == 1 and cells[0].lower() in ("ent_num", "ent num"):
            continue
        yield n, cells


class _Entry:
    __slots__ = ("name", "programs", "remarks")

    def __init__(self, name: str, programs: str, remarks: str) -> None:
        self.name = name
        self.programs = programs
        self.remarks = remarks


class _Reader:
    """Builds one list from the files of a distribution, collecting every problem."""

    def __init__(self) -> None:
        self.problems = Problems(limit=20)
        self.entries: dict[tuple[str, str], _Entry] = {}
        # (entry, name, remarks, where)
        self.aliases: list[tuple[tuple[str, str], str, str, str]] = []
        self.comments: list[tuple[tuple[str, str], str, str]] = []  # (entry, text, where)
        self.postal = 0
        self.summaries: list[FileSummary] = []

    def problem(self, text: str) -> None:
        self.problems.add(text)

    def read(self, file: ListFile) -> None:
        rows = list(_rows(file.text))
        placed = place(file.name, rows[0][1] if rows else None)
        if placed is None:
            self.problem(
                f"{file.name}: not a file of OFAC's CSV distribution (SDN.CSV: 12 columns,"
                " ALT.CSV: 5, ADD.CSV: 6, SDN_COMMENTS.CSV: 2; no header)"
            )
            return
        listed, role = placed
        expected = COLUMNS[role]
        good = 0
        for n, cells in rows:
            where = f"{file.name} line {n}"
            if len(cells) != expected:
                self.problem(
                    f"{where}: {len(cells)} columns where OFAC's {role.value} file has"
                    f" {expected} ({_LAYOUT[role]})"
                )
                continue
            if not cells[0].isdigit() or len(cells[0]) > 12:
                self.problem(f"{where}: ent_num {cells[0][:20]!r} is not a number")
                continue
            key = (listed, cells[0])
            good += 1
            match role:
                case Role.PRIMARY:
                    if key in self.entries:
                        self.problem(f"{where}: entry {cells[0]} appears twice")
                        continue
                    self.entries[key] = _Entry(cells[1], cells[3], cells[11])
                case Role.ALIASES:
                    self.aliases.append((key, cells[3], cells[4], where))
                case Role.ADDRESSES:
                    self.postal += 1
                case Role.COMMENTS:
                    self.comments.append((key, cells[1], where))
        if len(self.entries) > ENTRIES_MAX:
            self.problem(f"more than {ENTRIES_MAX} entries")
        digest = hashlib.sha256(file.text.encode()).hexdigest()
        self.summaries.append(
            FileSummary(name=file.name, list=listed, role=role, rows=good, sha256=digest)
        )

    def build(self) -> SanctionsList | list[str]:
        if not any(s.role is Role.PRIMARY for s in self.summaries):
            self.problem("no list among the files: SDN.CSV or CONS_PRIM.CSV is needed")
            return self.problems.listed()
        orphans = 0
        orphan_remarks: list[tuple[tuple[str, str], str]] = []
        for key, text, _ in self.comments:
            entry = self.entries.get(key)
            if entry is not None:
                entry.remarks += text
            else:
                orphans += 1
                orphan_remarks.append((key, text))
        names: dict[str, tuple[str, str]] = {}
        aliases: set[str] = set()
        addresses: dict[str, tuple[str, str]] = {}
        assets: dict[str, set[str]] = {}
        other: set[str] = set()
        truncated: set[str] = set()
        accounts: dict[str, tuple[str, str]] = {}
        wallet_programs = 0

        def remarks(key: tuple[str, str], text: str) -> None:
            for alias in _ALIAS.findall(text):
                if normalized := normalize_name(alias):
                    names.setdefault(normalized, key)
                    aliases.add(normalized)
            for tag, address in _ADDRESS.findall(text):
                if _EVM.fullmatch(address):
                    addresses.setdefault(destinations.normalize_address(address), key)
                    assets.setdefault(tag.upper(), set()).add(address.lower())
                elif address.lower().startswith("0x") and len(address) < 42:
                    truncated.add(address.lower())
                else:
                    other.add(address)
            for clabe in _CLABE.findall(text):
                accounts.setdefault(clabe, key)

        for key, entry in self.entries.items():
            if normalized := normalize_name(entry.name):
                names.setdefault(normalized, key)
            if any(_WALLET_PROGRAMS.match(p) for p in _PROGRAM.findall(entry.programs)):
                wallet_programs += 1
            remarks(key, entry.remarks)
        for key, text in orphan_remarks:
            remarks(key, text)
        for key, alias, alias_remarks, _ in self.aliases:
            orphans += key not in self.entries
            if normalized := normalize_name(alias):
                names.setdefault(normalized, key)
                aliases.add(normalized)
            remarks(key, alias_remarks)
        if not self.problems:
            if not self.entries:
                self.problem("the list holds no entries")
            elif wallet_programs and not (addresses or other or truncated):
                self.problem(
                    f"{wallet_programs} entries under cyber or North Korea programs but not one"
                    " digital currency address: the remarks were not read (is this OFAC's"
                    " 12-column SDN.CSV?)"
                )
        if self.problems:
            return self.problems.listed()
        return SanctionsList(
            holdings=Holdings(
                digest=_digest(self.summaries),
                files=tuple(self.summaries),
                entries=len(self.entries),
                lists={
                    name: sum(1 for listed, _ in self.entries if listed == name)
                    for name in sorted({listed for listed, _ in self.entries})
                },
                names=len(names),
                aliases=len(aliases),
                addresses=len(addresses),
                address_assets={tag: len(found) for tag, found in sorted(assets.items())},
                other_addresses=len(other),
                truncated_addresses=len(truncated),
                accounts=len(accounts),
                postal_addresses=self.postal,
                wallet_program_entries=wallet_programs,
                orphan_rows=orphans,
            ),
            addresses=addresses,
            names=names,
            accounts=accounts,
        )


def _digest(summaries: list[FileSummary]) -> str:
    """The list's identity: its files' contents by list and role (not by their names)."""
    parts = sorted(f"{s.list}/{s.role.value}/{s.sha256}" for s in summaries)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def parse_files(files: list[ListFile]) -> SanctionsList | list[str]:
    """A list from the files of OFAC's CSV distribution (at least its SDN.CSV or CONS_PRIM.CSV),
    or every problem found (then nothing is in force from these files)."""
    reader = _Reader()
    for file in files:
        reader.read(file)
    return reader.build()


def parse_list(text: str, name: str = "SDN.CSV") -> SanctionsList | list[str]:
    """One file (by default the SDN list itself)."""
    return parse_files([ListFile(name=name, text=text)])


def screen(listed: SanctionsList, stage: Stage, sender: str, beneficiary: Destination) -> Screening:
    """Screen the sender (the client, by name) and the beneficiary (a wallet by address; a bank
    account by account number and holder name)."""
    hits: list[Hit] = []

    def hit(party: Party, kind: str, value: str, found: tuple[str, str] | None) -> None:
        if found is not None:
            hits.append(Hit(party=party, kind=kind, value=value, list=found[0], entry=found[1]))

    hit(Party.SENDER, "name", sender, listed.names.get(normalize_name(sender)))
    match beneficiary:
        case destinations.WalletDestination(address=address):
            found = listed.addresses.get(destinations.normalize_address(address))
            hit(Party.BENEFICIARY, "address", address, found)
        case destinations.BankDestination(clabe=clabe, name=name):
            hit(Party.BENEFICIARY, "account", clabe, listed.accounts.get(clabe))
            hit(Party.BENEFICIARY, "name", name, listed.names.get(normalize_name(name)))
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
        f"{h.party.value} {h.kind} {h.value} ({h.list} entry {h.entry})" for h in screening.hits
    )


# A small sample in OFAC's exact layout (SDN.CSV and ALT.CSV), fictional entries: shipped so
# screening works out of the box in development and tests. Production points `[sanctions]` at
# the real, current files.
_SAMPLE_SDN = (
    ("90001", "KOVALENKO, Dmytro Ivanovych", "individual", "CYBER2",
     "DOB 14 Feb 1985; Digital Currency Address - ETH 0x5A1C7eD0DDBa11000000000000000000000000aB;"
     " alt. Digital Currency Address - XBT 1FfmbHfnpaZjKFvyi1okTjJJusN455paPH."),
    ("90002", "NORTHWIND MIXER", "", "CYBER2",
     "Website northwind.example;"
     " Digital Currency Address - ETH 0x7dB418B5d567a4E0e8C59Ad71bE1fcE48F3E6107;"
     " alt. Digital Currency Address - USDC 0x72A5843cc08275C8171E582972Aa4fDa8C397B2A."),
    ("90003", "MULLER-OZTURK, Jose", "individual", "SDGT", "DOB 02 Mar 1970."),
    ("90004", "BANCO EJEMPLO SANCIONADO, S.A.", "", "VENEZUELA-EO13850",
     "Account 646180157000000004 (CLABE)."),
    ("90005", "BLOCKED TRADING HOUSE", "", "RUSSIA-EO14024", ""),
)  # fmt: skip
_SAMPLE_ALT = (
    ("90001", "9001", "aka", "KOVAL", ""),
    ("90003", "9002", "aka", "MÜLLER-ÖZTÜRK, José", ""),
    ("90003", "9003", "aka", "PEPE MULLER", ""),
    ("90005", "9004", "aka", "BLOCKED-CO", ""),
)  # fmt: skip


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if text else NULL


def sdn_row(number: str, name: str, kind: str, program: str, remarks: str) -> str:
    """One SDN.CSV row as OFAC writes it: text quoted, every null `-0- `."""
    cells = [number, _csv_cell(name), _csv_cell(kind), _csv_cell(program)]
    return ",".join(cells + ["-0- "] * 7 + [_csv_cell(remarks)])


def alt_row(number: str, alt_num: str, kind: str, name: str, remarks: str) -> str:
    cells = [number, alt_num, _csv_cell(kind), _csv_cell(name), _csv_cell(remarks)]
    return ",".join(cells)


SAMPLE_FILES = (
    ListFile(name="SDN.CSV", text="".join(sdn_row(*r) + "\r\n" for r in _SAMPLE_SDN) + "\x1a"),
    ListFile(name="ALT.CSV", text="".join(alt_row(*r) + "\r\n" for r in _SAMPLE_ALT) + "\x1a"),
)


def sample() -> SanctionsList:
    found = parse_files(list(SAMPLE_FILES))
    assert isinstance(found, SanctionsList), found
    return found
