"""Sanctions screening reads OFAC's CSV distribution as OFAC publishes it and matches what it
should and only that.

The rows here are written from OFAC's data specification (SDN.CSV: 12 columns and no header,
text quoted, nulls `-0- `, CRLF line ends, a Ctrl-Z after the last line; ALT.CSV: 5 columns;
ADD.CSV: 6; SDN_COMMENTS.CSV: 2, the remarks past their 1,000 characters); the ETH addresses of
the Lazarus Group row are the ones OFAC designated in April 2022 (public facts). The tests prove
that addresses of every EVM asset tag are read from Remarks (column 12), aliases from ALT.CSV and
the remarks, spillover remarks from SDN_COMMENTS.CSV, the consolidated list beside the SDN list;
that screening is case-, checksum-, diacritic- and word-order-insensitive; and that a list of
the wrong shape, or one that would screen nothing while holding cyber designations, is refused.
"""

from __future__ import annotations

import csv
import io

import pytest

from engine import sanctions
from engine.destinations import BankDestination, WalletDestination
from engine.sanctions import ListFile, Party, Role, SanctionsList, Stage

LISTED = "0x5A1C7eD0DDBa11000000000000000000000000aB"
CLEAN = "0x" + "12" * 20
LAZARUS_ETH = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
LAZARUS_ETH_ALT = "0xa0e1c89Ef1a489c9C7dE96311eD5Ce5D32c20E4B"
NULLS = ",-0- " * 7

# SDN.CSV rows, byte for byte in the published layout.
SDN_ROWS = [
    '306,"BANCO NACIONAL DE CUBA",-0- ,"CUBA"' + NULLS + ",\"a.k.a. 'BNC'.\"",
    '2674,"ABASTECEDORA NAVAL Y INDUSTRIAL, S.A.",-0- ,"CUBA"' + NULLS + ',"Panama."',
    '27307,"LAZARUS GROUP",-0- ,"DPRK3"' + NULLS + ",\"a.k.a. 'APPLEWORM'; a.k.a. 'HIDDEN"
    " COBRA'; Potonggang District, Pyongyang, Korea, North; Digital Currency Address - ETH "
    + LAZARUS_ETH
    + "; alt. Digital Currency Address - ETH "
    + LAZARUS_ETH_ALT
    + "; Secondary sanctions risk: North Korea Sanctions Regulations, sections 510.201 and"
    ' 510.210."',
    '36235,"IVANOV, Petr Sergeyevich","individual","CYBER2] [RUSSIA-EO14024",-0- ,-0- ,-0- ,-0-'
    ' ,-0- ,-0- ,-0- ,"DOB 01 Jan 1980; nationality Russia; Digital Currency Address - USDT'
    " 0x7F367cC41522cE07553e823bf3be79A889DEbe1B; alt. Digital Currency Address - XBT"
    " bc1qsn6nh6e4fpq3sq8v4yx6v2t9pm3xp2hmayxn7r; alt. Digital Currency Address - ETC"
    ' 0x901bb9583b24D97e995513C6778dc6888AB6870e; Gender Male."',
    '45001,"SEA DRAGON",-0- ,"IRAN-EO13846",-0- ,"9HA1234","Crude Oil Tanker","150000",'
    '"81000","Panama",-0- ,"Vessel Registration Identification IMO 9123456."',
]
ALT_ROWS = [
    '306,1001,"aka","NATIONAL BANK OF CUBA",-0- ',
    '36235,1002,"aka","IVANOV, Pyotr",-0- ',
    '36235,1003,"fka","P. S. IVANOV",'
    '"Digital Currency Address - USDC 0x1da5821544e25c636c1417Ba96Ade4Cf6D2f9B5A"',
]
ADD_ROWS = [
    '306,201,"Calle E No. 7, Vedado","Havana","Cuba",-0- ',
    '27307,202,-0- ,"Pyongyang","Korea, North",-0- ',
]


def csv_file(name: str, rows: list[str]) -> ListFile:
    return ListFile(name=name, text="".join(r + "\r\n" for r in rows) + "\x1a")


def distribution(*extra: ListFile) -> SanctionsList:
    found = sanctions.parse_files(
        [csv_file("SDN.CSV", SDN_ROWS), csv_file("ALT.CSV", ALT_ROWS),
         csv_file("ADD.CSV", ADD_ROWS), *extra]
    )  # fmt: skip
    assert isinstance(found, SanctionsList), found
    return found


def wallet(address: str) -> WalletDestination:
    return WalletDestination(chain="ethereum", address=address)


def bank(name: str, clabe: str = "032180000118359719") -> BankDestination:
    return BankDestination(country="MX", clabe=clabe, name=name)


def hits(
    listed: SanctionsList, sender: str, beneficiary: WalletDestination | BankDestination
) -> list[tuple[Party, str, str, str]]:
    found = sanctions.screen(listed, Stage.CREATION, sender, beneficiary)
    return [(h.party, h.kind, h.list, h.entry) for h in found.hits]


@pytest.mark.parametrize(
    ("address", "entry"),
    [
        (LAZARUS_ETH, "27307"),
        (LAZARUS_ETH.lower(), "27307"),
        ("0x" + LAZARUS_ETH[2:].upper(), "27307"),
        (LAZARUS_ETH_ALT, "27307"),
        ("0x7f367cc41522ce07553e823bf3be79a889debe1b", "36235"),  # tagged USDT
        ("0x901bb9583b24d97e995513c6778dc6888ab6870e", "36235"),  # tagged ETC
        ("0x1da5821544e25c636c1417ba96ade4cf6d2f9b5a", "36235"),  # in an alias's remarks
    ],
)
def test_every_evm_address_in_the_remarks_column_is_screened(address: str, entry: str) -> None:
    listed = distribution()
    assert hits(listed, "acme", wallet(address)) == [(Party.BENEFICIARY, "address", "SDN", entry)]
    assert hits(listed, "acme", wallet(CLEAN)) == []


def test_names_and_aliases_from_alt_csv_and_the_remarks() -> None:
    listed = distribution()
    assert hits(listed, "acme", bank("Lazarus Group")) == [
        (Party.BENEFICIARY, "name", "SDN", "27307")
    ]
    assert hits(listed, "acme", bank("hidden cobra")) == [
        (Party.BENEFICIARY, "name", "SDN", "27307")
    ]
    assert hits(listed, "National Bank of Cuba", wallet(CLEAN)) == [
        (Party.SENDER, "name", "SDN", "306")
    ]
    assert hits(listed, "acme", bank("Pyotr Ivanov")) == [
        (Party.BENEFICIARY, "name", "SDN", "36235")
    ]
    assert hits(listed, "acme", bank("Petr Ivanov")) == []  # not a name the list holds


def test_what_a_loaded_list_holds() -> None:
    h = distribution().holdings
    assert h.entries == 5 and h.lists == {"SDN": 5}
    assert h.addresses == 5
    assert h.address_assets == {"ETC": 1, "ETH": 2, "USDC": 1, "USDT": 1}
    assert h.other_addresses == 1  # the XBT address: not an EVM wallet
    assert h.truncated_addresses == 0
    assert h.aliases == 6  # APPLEWORM, HIDDEN COBRA, BNC (remarks) and the three of ALT.CSV
    assert h.postal_addresses == 2
    assert h.wallet_program_entries == 2  # DPRK3, CYBER2
    assert [(f.name, f.role, f.rows) for f in h.files] == [
        ("SDN.CSV", Role.PRIMARY, 5), ("ALT.CSV", Role.ALIASES, 3),
        ("ADD.CSV", Role.ADDRESSES, 2),
    ]  # fmt: skip
    assert len(h.digest) == 64


def test_remarks_past_their_limit_continue_in_sdn_comments() -> None:
    """OFAC cuts Remarks at 1,000 characters and publishes the rest in SDN_COMMENTS.CSV: an
    address cut in two is read whole only with that file."""
    remarks = "x" * 950 + "; Digital Currency Address - ETH " + LAZARUS_ETH
    head, tail = remarks[:1000], remarks[1000:]
    row = '50001,"CUT SHORT LTD",-0- ,"CYBER2"' + NULLS + f',"{head}"'
    alone = sanctions.parse_files([csv_file("SDN.CSV", [row])])
    assert isinstance(alone, SanctionsList)
    assert alone.holdings.truncated_addresses == 1
    assert hits(alone, "acme", wallet(LAZARUS_ETH)) == []
    joined = sanctions.parse_files(
        [csv_file("SDN.CSV", [row]), csv_file("SDN_COMMENTS.CSV", [f'50001,"{tail}"'])]
    )
    assert isinstance(joined, SanctionsList)
    assert joined.holdings.truncated_addresses == 0
    assert hits(joined, "acme", wallet(LAZARUS_ETH)) == [
        (Party.BENEFICIARY, "address", "SDN", "50001")
    ]


def test_a_longer_hex_run_is_neither_an_address_nor_cut_short() -> None:
    """Only 0x and exactly 40 hex digits is an EVM wallet; 64 hex digits (a hash written where
    an address goes) is counted among other chains' addresses, not as a truncated one."""
    row = '50002,"HASH WRITER",-0- ,"CYBER2"' + NULLS + ',"Digital Currency Address - ETH 0x'
    row += "ab" * 32 + '."'
    found = sanctions.parse_files([csv_file("SDN.CSV", [row])])
    assert isinstance(found, SanctionsList)
    h = found.holdings
    assert (h.addresses, h.truncated_addresses, h.other_addresses) == (0, 0, 1)


def test_the_consolidated_list_beside_the_sdn_list() -> None:
    cons = csv_file(
        "CONS_PRIM.CSV",
        ['17001,"EXAMPLE TRADING FZE",-0- ,"SSI"' + NULLS + ',"Digital Currency Address - ETH'
         ' 0x2f389cE8bD8ff92De3402FFCe4691d17fC4f6535."'],
    )  # fmt: skip
    cons_alt = csv_file("CONS_ALT.CSV", ['17001,501,"aka","EXAMPLE TRADE",-0- '])
    listed = distribution(cons, cons_alt)
    assert listed.holdings.lists == {"CONS": 1, "SDN": 5}
    assert hits(listed, "acme", wallet("0x2f389ce8bd8ff92de3402ffce4691d17fc4f6535")) == [
        (Party.BENEFICIARY, "address", "CONS", "17001")
    ]
    assert hits(listed, "example trade", wallet(CLEAN)) == [(Party.SENDER, "name", "CONS", "17001")]


def test_a_header_row_and_lf_line_ends_are_read_too() -> None:
    header = "ent_num,SDN_Name,SDN_Type,Program,Title,Call_Sign,Vess_type,Tonnage,GRT,Vess_flag"
    text = header + ",Vess_owner,Remarks\n" + "\n".join(SDN_ROWS) + "\n"
    found = sanctions.parse_list(text)
    assert isinstance(found, SanctionsList) and found.entries == 5
    assert found.holdings.addresses == 4


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        # The layout this reader used to expect (remarks in column 5): refused, not read as a
        # list of names with no addresses.
        ([("SDN.CSV", ['90001,"KOVAL",individual,CYBER2,"Digital Currency Address - ETH '
                       + LAZARUS_ETH + '"'])],
         "SDN.CSV line 1: 5 columns where OFAC's primary file has 12"),
        # Twelve columns, but the addresses are not in Remarks: a list of cyber designations that
        # would screen no wallet.
        ([("SDN.CSV", ['27307,"LAZARUS GROUP",-0- ,"DPRK3","Digital Currency Address - ETH '
                       + LAZARUS_ETH + '"' + ",-0- " * 7])],
         "1 entries under cyber or North Korea programs but not one digital currency address"),
        ([("SDN.CSV", ['abc,"X",-0- ,"CUBA"' + NULLS + ",-0- "])],
         "SDN.CSV line 1: ent_num 'abc' is not a number"),
        ([("ALT.CSV", ALT_ROWS)], "no list among the files: SDN.CSV or CONS_PRIM.CSV is needed"),
        ([("SDN.CSV", [SDN_ROWS[0], SDN_ROWS[0]])], "SDN.CSV line 2: entry 306 appears twice"),
        ([("SDN.CSV", [])], "the list holds no entries"),
        ([("list.txt", ["a,b,c"])], "list.txt: not a file of OFAC's CSV distribution"),
    ],
)  # fmt: skip
def test_a_list_that_cannot_be_what_it_claims_is_refused(
    files: list[tuple[str, list[str]]], problem: str
) -> None:
    found = sanctions.parse_files([csv_file(name, rows) for name, rows in files])
    assert isinstance(found, list), found
    assert any(p.startswith(problem) for p in found), found


def test_rows_of_entries_no_file_holds_are_screened_and_counted() -> None:
    """ALT.CSV and SDN_COMMENTS.CSV of another publication than SDN.CSV: their rows still
    screen (missing a name is the worse mistake), and the list says how many there are."""
    comments = csv_file(
        "SDN_COMMENTS.CSV", ['60001,"; alt. Digital Currency Address - ETH ' + LAZARUS_ETH + '"']
    )
    found = sanctions.parse_files(
        [csv_file("SDN.CSV", SDN_ROWS[:2]), csv_file("ALT.CSV", ALT_ROWS), comments]
    )
    assert isinstance(found, SanctionsList)
    assert found.holdings.orphan_rows == 3  # two aliases of 36235, the comment of 60001
    assert hits(found, "acme", bank("Pyotr Ivanov")) == [
        (Party.BENEFICIARY, "name", "SDN", "36235")
    ]
    assert hits(found, "acme", wallet(LAZARUS_ETH)) == [
        (Party.BENEFICIARY, "address", "SDN", "60001")
    ]
    assert distribution().holdings.orphan_rows == 0


def test_the_digest_is_the_content_not_the_file_names() -> None:
    one = distribution()
    renamed = sanctions.parse_files(
        [csv_file("sdn.csv", SDN_ROWS), csv_file("alt.csv", ALT_ROWS),
         csv_file("add.csv", ADD_ROWS)]
    )  # fmt: skip
    assert isinstance(renamed, SanctionsList) and renamed.digest == one.digest
    more = distribution(csv_file("SDN_COMMENTS.CSV", ['306,"more."']))
    assert more.digest != one.digest


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
def test_the_shipped_sample(sender: str, beneficiary: WalletDestination | BankDestination,
                            expected: list[tuple[Party, str, str]]) -> None:  # fmt: skip
    found = sanctions.screen(sanctions.sample(), Stage.CREATION, sender, beneficiary)
    assert [(h.party, h.kind, h.entry) for h in found.hits] == expected
    assert found.entries == 5 and len(found.list_digest) == 64


def test_the_shipped_sample_is_in_the_published_layout() -> None:
    """The sample's SDN.CSV has OFAC's 12 columns and nulls, its ALT.CSV five; both end as
    OFAC's files do."""
    files = sanctions.SAMPLE_FILES
    assert all(f.text.endswith("\r\n\x1a") for f in files)
    rows = list(csv.reader(io.StringIO(files[0].text.rstrip("\x1a"))))
    assert {len(r) for r in rows} == {12} and rows[0][4] == "-0- "
    assert {len(r) for r in csv.reader(io.StringIO(files[1].text.rstrip("\x1a")))} == {5}
    assert [(f.name, f.role, f.rows) for f in sanctions.sample().holdings.files] == [
        ("SDN.CSV", Role.PRIMARY, 5), ("ALT.CSV", Role.ALIASES, 4)
    ]  # fmt: skip
