"""PpbflMod with ``ppbfl-chain`` / ``ppbfl-contract`` in the node config pins the edge nodes it
uploads to to the contract's party registry (anvil started here, an echo server as edge-1): another
CA-issued ``edge-1`` certificate at the announced address is refused; the run config (which the
server side sets) cannot choose the contract."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Context, RecordDict

from ppbfl.chain import Chain
from ppbfl.chain.rounds import ROLE_DEVICE, ROLE_EDGE
from ppbfl.errors import ConfigError
from ppbfl.field import MERSENNE61
from ppbfl.integrations.flower import PpbflMod
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.creds import write_credentials
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.grpc_transport import serve
from ppbfl.protocol.testing import EchoHandler, EchoRequest
from ppbfl.protocol.tls import issue, load_ca, load_credentials

ELSEWHERE = {"ppbfl-chain": "http://127.0.0.1:1", "ppbfl-contract": "0x" + "11" * 20}  # a server's choice


def context(node: dict, run: dict | None = None) -> Context:
    return Context(run_id=1, node_id=1, node_config={"ppbfl-device": 0, **node}, state=RecordDict(), run_config=run or {})  # type: ignore[arg-type]


def echo(device) -> str:  # type: ignore[no-untyped-def]
    values = np.arange(3, dtype=np.uint64) % np.uint64(MERSENNE61)
    return device.transport.call("edge-1", EchoRequest(values=values, op="echo", seconds=0.0), round=0, timeout=10).message.caller


def test_the_mod_pins_edge_nodes_to_the_chain_given_by_its_node_config(tmp_path):
    issued = write_credentials(tmp_path, ["edge-1", "device-0"])
    rogue = issue(load_ca(tmp_path), "edge-1")  # the consortium CA issued a second edge-1 certificate
    ca_pem, edge = (tmp_path / "ca.crt").read_bytes(), load_credentials(tmp_path, "edge-1")
    mod = PpbflMod(creds=tmp_path, t=1, n=1)
    with Chain.anvil(accounts=3) as chain:
        assert chain.node is not None
        contract = chain.deploy(1, 1)
        contract.register_edge_node(1, issued.chain_accounts["edge-1"], edge.fingerprint)
        contract.register_parties([(edge.fingerprint, ROLE_EDGE, 1), (issued.fingerprints["device-0"], ROLE_DEVICE, 0)])
        pinned = {"ppbfl-chain": chain.node.url, "ppbfl-contract": contract.address}
        with (
            serve(EchoHandler(), "edge-1", edge, ca_pem, registry=ChainRegistry(contract)) as honest,
            serve(EchoHandler(), "edge-1", rogue, ca_pem, registry=ChainRegistry(contract)) as impostor,
        ):
            assert echo(mod._device(context(pinned, run=ELSEWHERE), {1: honest.address})) == "device-0"
            with pytest.raises(PeerAuthError, match="does not match the registered fingerprint"):
                echo(mod._device(context(pinned, run=ELSEWHERE), {1: impostor.address}))
            # without the node's own chain settings the run config's are not taken: CA and party id only
            assert echo(mod._device(context({}, run=pinned), {1: impostor.address})) == "device-0"
    with pytest.raises(ConfigError, match="ppbfl-contract"):
        mod._device(context({"ppbfl-chain": "http://127.0.0.1:1"}), {1: "127.0.0.1:1"})
