"""The committed artifact of our test stablecoin is what its committed source compiles to: the
source is compiled again with solc-js (installed from npm by the Makefile) and the ABI, the
creation bytecode and the compiler settings must equal the committed ones. A source edited
without `python -m adapters.chain.artifact` fails here."""

from __future__ import annotations

from adapters.chain import artifact


def test_the_artifact_matches_its_source() -> None:
    committed = artifact.load()
    compiled = artifact.compile_source()
    assert compiled["compiler"] == committed["compiler"]
    assert compiled["settings"] == committed["settings"]
    assert compiled["abi"] == committed["abi"]
    assert compiled["bytecode"] == committed["bytecode"]


def test_the_token_speaks_erc20_with_six_decimals() -> None:
    names = {item.get("name") for item in artifact.load()["abi"]}
    assert {"transfer", "transferFrom", "approve", "allowance", "balanceOf"} <= names
    assert {"totalSupply", "decimals", "Transfer", "Approval", "mint"} <= names
    assert "uint8 public constant decimals = 6;" in artifact.SOURCE.read_text()
