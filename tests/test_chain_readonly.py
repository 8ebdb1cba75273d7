"""``Chain.connect`` to a node without unlocked accounts: a read-only connection (views, events,
transactions the party signs itself), and a typed error naming the account for anything the node
would have to sign. The node is anvil behind a JSON-RPC proxy that answers ``eth_accounts`` with
``[]`` (what a consortium's public node does); everything else reaches anvil unchanged."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eth_account import Account

from ppbfl.chain import Chain, MissingAccountError
from ppbfl.chain.attest import ChainKey
from ppbfl.chain.rounds import ROLE_DEVICE, RoundsContract, load_artifact
from ppbfl.cli import main
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.registry import Identity


@contextmanager
def without_accounts(upstream: str) -> Iterator[str]:
    """A JSON-RPC endpoint in front of ``upstream`` whose node holds no unlocked account."""

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = json.loads(body)
            if request.get("method") == "eth_accounts":
                answer = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": []}).encode()
            else:
                forwarded = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(forwarded, timeout=10) as response:
                    answer = response.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_node_without_unlocked_accounts_serves_reads_and_self_signed_transactions(capsys):
    Account.enable_unaudited_hdwallet_features()
    admin_key = ChainKey(bytes(Account.from_mnemonic("test test test test test test test test test test test junk").key))
    device, other = os.urandom(32), os.urandom(32)
    with Chain.anvil(accounts=2) as chain:
        assert chain.node is not None
        deployed = chain.deploy(1, 1)
        assert deployed.admin == admin_key.address  # anvil's first dev account deploys
        deployed.register_parties([(device, ROLE_DEVICE, 0)])
        with without_accounts(chain.node.url) as url:
            reader = Chain.connect(url)  # no unlocked account: no error
            contract = RoundsContract(reader, deployed.address, load_artifact()["abi"])
            assert (contract.t, contract.n, contract.admin) == (1, 1, deployed.admin)
            assert contract.party(device) == (ROLE_DEVICE, 0, True)
            assert ChainRegistry.connect(url, deployed.address).identify(device) == Identity("device-0", "device", 0)
            assert main(["registry", "list", "--chain", url, "--contract", deployed.address]) == 0
            assert f"{device.hex()} device 0 yes device-0" in capsys.readouterr().out

            # what the node would have to sign: typed, naming the account; nothing reaches the chain
            with pytest.raises(MissingAccountError) as missing:
                contract.register_parties([(other, ROLE_DEVICE, 1)], sender=deployed.admin)
            assert missing.value.account == deployed.admin and "registerParties" in str(missing.value)
            with pytest.raises(MissingAccountError) as missing:
                reader.funder  # noqa: B018 - the property raises
            assert missing.value.account == "funder"
            with pytest.raises(MissingAccountError) as missing:
                reader.deploy(1, 1, admin=deployed.admin)
            assert missing.value.account == deployed.admin
            assert deployed.party(other) == (0, 0, False)

            # a transaction the admin signs here needs no account on the node
            contract.register_parties([(other, ROLE_DEVICE, 1)], key=admin_key)
            contract.revoke_party(device, key=admin_key)
            assert deployed.party(other) == (ROLE_DEVICE, 1, True) and deployed.party(device) == (ROLE_DEVICE, 0, False)

        # a node with accounts, asked to sign for one it does not hold: the same typed error
        stranger = ChainKey.generate().address
        full = RoundsContract(Chain.connect(chain.node.url), deployed.address, load_artifact()["abi"])
        with pytest.raises(MissingAccountError) as missing:
            full.revoke_party(other, sender=stranger)
        assert missing.value.account == stranger
        assert deployed.party(other) == (ROLE_DEVICE, 1, True)
