"""The real chain's commands: the treasury's keystore (adapters.chain.keystore), and a local
development node made ready to pay on (adapters.chain.devnet).

    stablerail wallet new --keystore treasury.json [--passphrase-file F]
    stablerail wallet address --keystore treasury.json
    stablerail devnet fund [--rpc-url URL] (--keystore FILE | --address 0x...) [--usdc N]

`new` creates a key from the operating system's entropy and writes it encrypted (scrypt, the
standard v3 JSON, readable by its owner only, never over an existing file); the passphrase comes
from the file's first line or STABLERAIL_KEYSTORE_PASSPHRASE. Both print the wallet's address,
never the key: fund that address with gas money and tokens, and name the file in `[evm] keystore`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aiohttp
from eth_utils.address import is_address

from adapters.chain import keystore
from adapters.chain.devnet import Devnet
from adapters.chain.rpc import JsonRpc, RpcError, RpcUnreachable

EXIT_OK = 0
EXIT_UNUSABLE = 2


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wallet = commands.add_parser("wallet", help="the treasury wallet's encrypted keystore")
    actions = wallet.add_subparsers(dest="wallet_command", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="create a key, written encrypted; print its address")
    new.add_argument("--keystore", type=Path, required=True, help="the file to write")
    new.add_argument(
        "--passphrase-file",
        type=Path,
        help=f"its first line is the passphrase (else ${keystore.PASSPHRASE_ENV})",
    )
    address = actions.add_parser("address", help="print a keystore's address")
    address.add_argument("--keystore", type=Path, required=True)

    devnet = commands.add_parser(
        "devnet", help="a local development node (anvil) made ready to pay on"
    )
    devnet_actions = devnet.add_subparsers(dest="devnet_command", required=True, metavar="ACTION")
    fund = devnet_actions.add_parser(
        "fund",
        help="deploy the test stablecoin, give the address gas money and mint it USDC;"
        " print the [evm] settings",
    )
    fund.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    wallet_of = fund.add_mutually_exclusive_group(required=True)
    wallet_of.add_argument("--keystore", type=Path, help="the treasury's keystore")
    wallet_of.add_argument("--address", help="the treasury wallet's address")
    fund.add_argument("--usdc", type=int, default=1_000_000, help="whole USDC to mint")


def run(args: argparse.Namespace) -> int:
    if args.command == "devnet":
        return _devnet_fund(args)
    try:
        if args.wallet_command == "new":
            secret = keystore.passphrase(args.passphrase_file)
            found = keystore.create(args.keystore, secret)
            print(f"address: {found}")
            print(f"keystore: {args.keystore} (scrypt v3; keep the passphrase apart from it)")
        else:
            print(keystore.address_of(args.keystore))
    except keystore.KeystoreError as e:
        print(f"stablerail: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    return EXIT_OK


async def _fund(url: str, address: str, usdc: int) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        devnet = await Devnet.open(JsonRpc(url, session))
        token = await devnet.deploy_token()
        await devnet.give_gas_money(address, 100 * 10**18)
        await devnet.mint(token, address, usdc * 10**6)
        return devnet.chain_id, token


def _devnet_fund(args: argparse.Namespace) -> int:
    try:
        address = args.address or keystore.address_of(args.keystore)
    except keystore.KeystoreError as e:
        print(f"stablerail: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    if not is_address(address):
        print(f"stablerail: {address!r} is not an address", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        chain_id, token = asyncio.run(_fund(args.rpc_url, address, args.usdc))
    except (RpcError, RpcUnreachable, RuntimeError) as e:
        print(f"stablerail: {e} (is it a development node such as anvil?)", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"# minted {args.usdc} USDC and 100 ETH of gas money to {address}")
    print("# a config file for `stablerail serve --config FILE`:")
    print('[rails]\nkind = "evm"\n\n[evm]')
    print(f'rpc_url = "{args.rpc_url}"')
    print(f"chain_id = {chain_id}")
    if args.keystore is not None:
        print(f'keystore = "{args.keystore}"')
    else:
        print('keystore = "treasury.json"  # the keystore of ' + address)
    print("[evm.tokens]")
    print(f'USDC = "{token}"')
    return EXIT_OK
