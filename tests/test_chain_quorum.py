"""Reading the party registry through several JSON-RPC endpoints (``QuorumProvider``): a node that
lies about what the contract holds is outvoted or refused, never believed, within the bound ``k``.

Real components: two anvil nodes of *one* chain (same genesis timestamp, one second per block, the
same transactions from the same accounts: identical blocks and block hashes, the contract at the
same address), and lying endpoints: a JSON-RPC proxy on 127.0.0.1 in front of an honest node that
rewrites the answers of the registry views (``party``: a revoked certificate reported active;
``partyFingerprint``: a rogue certificate; ``eth_getLogs``: the revocation event dropped), or
reports an old head (a rollback to the block before the revocation).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_account import Account
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector

from ppbfl.chain import Chain, ChainDisagreementError, ChainRevertError, MissingAccountError, find_anvil
from ppbfl.chain.attest import ChainKey
from ppbfl.chain.rounds import ROLE_DEVICE, RoundsContract, load_artifact
from ppbfl.cli import main, peer_registry
from ppbfl.errors import ConfigError
from ppbfl.protocol.chain_registry import ChainRegistry, RegistryUnavailableError, connect_contract
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.registry import Identity

GENESIS = 1_700_000_000
REVOKED, ACTIVE, ROGUE, LATER = (bytes([b]) * 32 for b in (0xA1, 0xA2, 0xEE, 0xA3))
PARTY = "0x" + function_signature_to_4byte_selector("party(bytes32)").hex()
PARTY_FINGERPRINT = "0x" + function_signature_to_4byte_selector("partyFingerprint(uint8,uint32)").hex()
PARTY_REVOKED = "0x" + event_signature_to_log_topic("PartyRevoked(bytes32,uint8,uint32)").hex()
DEAD = "http://127.0.0.1:1"  # nothing listens there: an endpoint that is down


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["result"]


@contextmanager
def twin_node() -> Iterator[str]:
    """An anvil node whose blocks depend only on the transactions sent to it: fixed genesis time,
    each block one second after its parent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [str(find_anvil()), "--host", "127.0.0.1", "--port", str(port), "--accounts", "2", "--balance", "1000000",
         "--hardfork", "cancun", "--silent", "--timestamp", str(GENESIS)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _rpc(url, "anvil_setBlockTimestampInterval", [1])
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


Lie = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@contextmanager
def proxy(upstream: str, lie: Lie | None = None) -> Iterator[Any]:
    """A JSON-RPC endpoint forwarding to ``upstream``; ``lie(request, answer)`` rewrites answers.
    Yields the server (``.url``; ``.shutdown()`` takes it down)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            forwarded = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(forwarded, timeout=10) as response:
                answer = json.loads(response.read())
            if lie is not None:
                answer = lie(json.loads(body), answer)
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def registry_lie(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Every certificate is active, ``partyFingerprint`` pins ``ROGUE``, no revocation was logged."""
    params = request.get("params") or [{}]
    call = params[0] if isinstance(params[0], dict) else {}
    data = str(call.get("data") or call.get("input") or "")
    if request.get("method") == "eth_call" and "result" in answer:
        if data.startswith(PARTY):
            answer["result"] = answer["result"][:-1] + "1"  # the last word is `active`
        elif data.startswith(PARTY_FINGERPRINT):
            answer["result"] = "0x" + ROGUE.hex()
    if request.get("method") == "eth_getLogs" and isinstance(answer.get("result"), list):
        answer["result"] = [log for log in answer["result"] if log["topics"][0] != PARTY_REVOKED]
    return answer


def rolled_back(block: int) -> Lie:
    """Report ``block`` as the head (and answer honestly at any block asked)."""

    def lie(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") == "eth_blockNumber":
            answer["result"] = hex(block)
        return answer

    return lie


@dataclass(frozen=True)
class Twins:
    a: str
    b: str
    address: str
    revoked_at: int  # the block with the revocation


def _replay(url: str) -> tuple[str, int]:
    """Deploy and fill the registry, from the node's first dev account: identical on every twin."""
    with Chain.connect(url) as chain:
        contract = chain.deploy(1, 1)
        contract.register_parties([(REVOKED, ROLE_DEVICE, 0), (ACTIVE, ROLE_DEVICE, 1)])
        contract.revoke_party(REVOKED)
        return contract.address, chain.block_number


@pytest.fixture(scope="module")
def twins() -> Iterator[Twins]:
    with twin_node() as a, twin_node() as b:
        (address, block), again = _replay(a), _replay(b)
        assert again == (address, block)
        assert _rpc(a, "eth_getBlockByNumber", ["latest", False])["hash"] == _rpc(b, "eth_getBlockByNumber", ["latest", False])["hash"]
        yield Twins(a, b, address, block)


# ------------------------------------------------------------------------ one endpoint: today


def test_one_endpoint_is_believed_whatever_it_says(twins):
    """Negative control: a ChainRegistry over one lying endpoint admits the revoked certificate and
    pins the rogue one (what ``--chain URL`` with one URL still does)."""
    honest = ChainRegistry.connect(twins.a, twins.address)
    assert honest.identify(REVOKED) is None
    assert honest.fingerprint_of("device-1") == ACTIVE
    with proxy(twins.a, registry_lie) as liar:
        fooled = ChainRegistry.connect(liar.url, twins.address)
        assert fooled.identify(REVOKED) == Identity("device-0", "device", 0)
        assert fooled.fingerprint_of("device-1") == ROGUE


# ------------------------------------------------------------------------ k = m: refusal


def test_an_honest_and_a_lying_endpoint_that_must_agree_refuse_naming_the_liar(twins, capsys):
    with proxy(twins.b, registry_lie) as liar:
        both = f"{twins.a},{liar.url}"
        registry = ChainRegistry.connect(both, twins.address)  # k = m = 2
        with pytest.raises(RegistryUnavailableError) as refused:
            registry.identify(REVOKED)
        message = str(refused.value)
        assert "ChainDisagreementError: eth_call at block" in message
        assert f"#2 {liar.url}" in message and f"#1 {twins.a}" in message
        with pytest.raises(PeerAuthError, match="ChainDisagreementError: eth_call"):
            registry.fingerprint_of("device-1")
        assert registry.identify(ACTIVE) == Identity("device-1", "device", 1)  # what both say is answered

        # the typed error itself: the method, the pinned block, what each endpoint said
        contract = connect_contract([twins.a, liar.url], twins.address)
        with pytest.raises(ChainDisagreementError) as disagreement:
            contract.party(REVOKED)
        error = disagreement.value
        assert (error.method, error.agree) == ("eth_call", 2) and error.block is not None and error.block >= twins.revoked_at
        said = list(error.answers.values())
        assert len(said) == 2 and said[0] != said[1]

        # `ppbfl edge --chain URL1,URL2 --chain-agree 2` builds the same registry
        edge = peer_registry(argparse.Namespace(chain=both, contract=twins.address, chain_agree=2, registry_max_age=5.0))
        assert isinstance(edge, ChainRegistry)
        with pytest.raises(RegistryUnavailableError, match=liar.url):
            edge.identify(REVOKED)

        # `ppbfl registry list`: the liar drops the revocation event; alone it is believed, with an honest endpoint refused
        assert main(["registry", "list", "--chain", liar.url, "--contract", twins.address]) == 0
        assert f"{REVOKED.hex()} device 0 yes device-0" in capsys.readouterr().out
        assert main(["registry", "list", "--chain", both, "--contract", twins.address]) == 2
        err = capsys.readouterr().err
        assert "ChainDisagreementError: eth_getLogs at block" in err and liar.url in err
        assert main(["registry", "list", "--chain", f"{twins.a},{twins.b}", "--contract", twins.address]) == 0
        out = capsys.readouterr().out
        assert REVOKED.hex() not in out and f"{ACTIVE.hex()} device 1 yes device-1" in out


# ------------------------------------------------------------------------ k < m: liveness, and its price


def test_two_of_three_take_the_honest_answer_over_one_liar_but_two_colluding_liars_win(twins):
    with proxy(twins.a, registry_lie) as liar, proxy(twins.b, registry_lie) as accomplice:
        registry = ChainRegistry.connect([twins.a, twins.b, liar.url], twins.address, agree=2)
        assert registry.identify(REVOKED) is None
        assert registry.fingerprint_of("device-1") == ACTIVE
        # the bound: k = 2 endpoints that agree on a lie are believed
        fooled = ChainRegistry.connect([twins.a, liar.url, accomplice.url], twins.address, agree=2)
        assert fooled.identify(REVOKED) == Identity("device-0", "device", 0)
        assert fooled.fingerprint_of("device-1") == ROGUE


def test_an_endpoint_that_goes_down_stops_reads_when_all_must_agree_not_when_two_of_three_must(twins):
    with proxy(twins.b) as third:
        everyone = ChainRegistry.connect([twins.a, twins.b, third.url], twins.address, max_age_s=1e-6)
        two_of_three = ChainRegistry.connect([twins.a, twins.b, third.url], twins.address, agree=2, max_age_s=1e-6)
        assert everyone.identify(ACTIVE) == two_of_three.identify(ACTIVE) == Identity("device-1", "device", 1)
        third.shutdown()
        third.server_close()
        with pytest.raises(RegistryUnavailableError) as refused:
            everyone.identify(ACTIVE)
        assert f"#3 {third.url}: no answer" in str(refused.value)
        assert two_of_three.identify(ACTIVE) == Identity("device-1", "device", 1)
    with pytest.raises(ChainDisagreementError, match=r"eth_chainId: .*#2 http://127.0.0.1:1: no answer"):
        Chain.connect([twins.a, DEAD])


# ------------------------------------------------------------------------ block pinning


def test_a_node_of_another_chain_with_the_same_contract_and_state_is_refused(twins):
    """Same contract at the same address and the same answer, but other blocks: not the same chain."""
    with Chain.anvil(accounts=2) as other:
        assert other.node is not None
        contract = other.deploy(1, 1)
        contract.register_parties([(REVOKED, ROLE_DEVICE, 0), (ACTIVE, ROLE_DEVICE, 1)])
        assert contract.address == twins.address and contract.party(ACTIVE) == (ROLE_DEVICE, 1, True)
        with pytest.raises(ChainDisagreementError, match="in block") as refused:
            connect_contract([twins.a, other.node.url], twins.address).party(ACTIVE)
        labels = list(refused.value.answers.values())
        assert labels[0].split(" in block ")[0] == labels[1].split(" in block ")[0]  # same answer, other block hash


def test_an_endpoint_that_rolls_back_to_before_the_revocation_is_refused_beyond_max_lag(twins):
    with proxy(twins.b, rolled_back(twins.revoked_at - 1)) as stale:
        strict = Chain.connect([twins.a, stale.url], max_lag=0)  # the chain id needs no block: connects
        with pytest.raises(ChainDisagreementError, match=r"more than 0 blocks behind head") as refused:
            RoundsContract(strict, twins.address, load_artifact()["abi"])
        assert f"#2 {stale.url}: head {twins.revoked_at - 1}" in str(refused.value)
        # within the default max_lag (4 blocks) the old state is what both endpoints serve at the
        # pinned block: the revocation takes effect max_lag blocks later (the documented bound)
        lenient = ChainRegistry.connect([twins.a, stale.url], twins.address)
        assert lenient.identify(REVOKED) == Identity("device-0", "device", 0)


# ------------------------------------------------------------------------ transactions


def test_a_signed_transaction_is_broadcast_to_every_endpoint_and_nothing_is_signed_by_a_node(twins):
    Account.enable_unaudited_hdwallet_features()
    admin = ChainKey(bytes(Account.from_mnemonic("test test test test test test test test test test test junk").key))
    chain = Chain.connect([twins.a, twins.b, DEAD], agree=2)
    contract = RoundsContract(chain, twins.address, load_artifact()["abi"])
    assert contract.admin == admin.address
    with pytest.raises(MissingAccountError, match=admin.address):
        contract.register_parties([(LATER, ROLE_DEVICE, 2)], sender=admin.address)  # a node would sign it
    contract.register_parties([(LATER, ROLE_DEVICE, 2)], key=admin)  # DEAD does not take it; A and B do
    for url in (twins.a, twins.b):  # each node mined it, in the same block
        alone = RoundsContract(Chain.connect(url), twins.address, load_artifact()["abi"])
        assert alone.party(LATER) == (ROLE_DEVICE, 2, True)
    assert _rpc(twins.a, "eth_getBlockByNumber", ["latest", False])["hash"] == _rpc(twins.b, "eth_getBlockByNumber", ["latest", False])["hash"]
    assert contract.party(LATER) == (ROLE_DEVICE, 2, True)  # and 2 of 3 agree on it
    with pytest.raises(ChainRevertError, match="NotActiveParty"):  # a revert both give identically is the answer, decoded
        contract.revoke_party(REVOKED, key=admin)
    chain.close()


# ------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("url", "agree", "key"),
    [
        ("http://127.0.0.1:1,http://127.0.0.1:1/", None, "chain"),
        ("http://127.0.0.1:1,", None, "chain"),
        ("http://127.0.0.1:1,ftp://127.0.0.1:2", None, "chain"),
        ("http://127.0.0.1:1,http://127.0.0.1:2", 0, "chain_agree"),
        ("http://127.0.0.1:1,http://127.0.0.1:2", 3, "chain_agree"),
        ("http://127.0.0.1:1", 2, "chain_agree"),
    ],
)
def test_malformed_endpoints_or_agreement_are_named_before_any_connection(url, agree, key):
    with pytest.raises(ConfigError) as refused:
        Chain.connect(url, agree=agree)
    assert refused.value.key == key


def test_the_cli_names_a_malformed_agreement(capsys):
    args = ["registry", "list", "--chain", "http://127.0.0.1:1,http://127.0.0.1:2", "--chain-agree", "5", "--contract", "0x" + "11" * 20]
    assert main(args) == 2
    assert "ConfigError: chain_agree: must be an int with 1 <= k <= 2" in capsys.readouterr().err
