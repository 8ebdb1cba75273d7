"""Wiring a deployment: the edge tier, the dealer, and every party's transport.

* :class:`InProcessDeployment` -- every party in this process, messages still encoded, validated
  and decoded on every hop (:class:`~ppbfl.protocol.transport.InProcessTransport`).
* :class:`GrpcDeployment` -- each edge node and the dealer its own OS process
  (``ppbfl edge`` / ``python -m ppbfl.protocol.serve``) on 127.0.0.1, gRPC with mutual TLS; a
  consortium CA issues one certificate per party, and their fingerprints are what the chain
  registers (:attr:`fingerprints`); the coordinator and devices pin edge nodes to them, and the
  servers accept only callers whose fingerprint the deployment's manifest ``registry.json``
  registers, under the registered party id (:mod:`ppbfl.protocol.registry`) -- or, given a
  :class:`~ppbfl.protocol.ledger.ChainLedger` on a chain they can reach, the contract's party
  registry (:class:`~ppbfl.protocol.chain_registry.ChainRegistry`), where the deployment registers
  every certificate before its party first calls.

Both give the coordinator's transport, each device's transport, and ``stop_edge(j)`` (a node that
goes away mid-protocol, for dropout tests and demos).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from cryptography.hazmat.primitives.asymmetric import ec

from ppbfl.chain.attest import ChainKey
from ppbfl.defense.rule import DecisionRule, load_decision_rule
from ppbfl.errors import ConfigError
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.protocol.attribution import CertificateKeys, DeviceKeys
from ppbfl.protocol.cleanup import PrivateFolder
from ppbfl.protocol.creds import chain_key_path, load_chain_key
from ppbfl.protocol.dealer import TripleDealerNode
from ppbfl.protocol.device import device_party
from ppbfl.protocol.edge_node import (
    COORDINATOR_PARTY,
    DEALER_PARTY,
    EdgeBehaviour,
    EdgeNode,
    check_request_quorum,
    edge_party,
)
from ppbfl.protocol.errors import ServerStartError
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.process import ServerProcess, spawn_server
from ppbfl.protocol.registry import MANIFEST, FileRegistry, PeerRegistry, Registry, write_manifest
from ppbfl.protocol.tls import (
    PartyCredentials,
    issue,
    load_credentials,
    make_ca,
    save_credentials,
)
from ppbfl.protocol.transport import Handler, InProcessTransport, Transport
from ppbfl.protocol.trust_voter import RemoteTrustVoter, remote_voters
from ppbfl.trust.catchup import TrustSigners
from ppbfl.trust.config import TrustConfig, load_trust_config
from ppbfl.trust.store import TrustStore
from ppbfl.trust.witness import TrustWitness

if TYPE_CHECKING:
    from ppbfl.protocol.chain_registry import ChainRegistry
    from ppbfl.protocol.ledger import ChainLedger

__all__ = ["Deployment", "GrpcDeployment", "InProcessDeployment", "edge_witness", "make_dealer", "make_edge_node"]


def make_edge_node(
    behaviour: str = "honest", device_certs: str | None = None, chain_key: str | None = None, device_registry: str | None = None,
    trust_config: dict | None = None, trust_devices: int = 0, trust_store: str | None = None, state_dir: str | None = None,
    decision_rule: dict | None = None, peer_registry: PeerRegistry | None = None, chain: str | None = None, contract: str | None = None,
    trust_signers: dict | None = None, ids_flags_dir: str | None = None, request_quorum: int | None = None,
    reference: str | None = None, reference_tolerance: int | None = None,
) -> EdgeNode:
    """Handler factory of ``ppbfl edge`` (``python -m ppbfl.protocol.serve``): a fresh edge node.

    ``device_certs``: a folder with the devices' certificates (``device-<i>.crt``) and the
    manifest registering them (``device_registry``, default ``device_certs/registry.json``): the node
    then requires every upload to be signed by its device.
    ``chain_key``: the file of the node's own chain key (:func:`~ppbfl.protocol.creds.load_chain_key`;
    None: a fresh key, whose address nobody registered). ``trust_config``: the consortium's
    :class:`~ppbfl.trust.config.TrustConfig` (as a dict): the node then computes and signs each
    round's trust update of devices ``0 .. trust_devices - 1`` itself
    (:class:`~ppbfl.trust.witness.TrustWitness`), kept in ``trust_store`` (a SQLAlchemy URL, the
    node's own; None: in memory); ``trust_signers``: ``{"accounts": [...], "t": t}``, the
    registered edge accounts a relayed missed round must carry t signatures of (None: the node
    adopts none). ``state_dir``: the node's state folder
    (:mod:`ppbfl.protocol.edge_state`): a node restarted with the same folder and TLS key rejoins
    without a new setup of the tier. ``decision_rule``: the consortium's
    :class:`~ppbfl.defense.rule.DecisionRule` (as a dict): the node refuses a setup with another
    rule (None: it takes the setup's). ``peer_registry``: who holds the devices' certificates, in
    place of the manifest (``ppbfl edge --chain``: a :class:`~ppbfl.protocol.chain_registry.ChainRegistry`);
    ``chain``, ``contract``: a JSON-RPC URL and a ``PPBFLRounds`` address, the same from a handler
    argument (:class:`GrpcDeployment` with a ledger). ``ids_flags_dir``: the folder where the
    node's gateway writes its detector's counts per round (``round-<r>.json``,
    :class:`~ppbfl.ids.reputation.FlagsFolder`): the node's signed IDS report (needs ``trust_config``).
    ``request_quorum``: :attr:`EdgeNode.request_quorum` (checked against the tier at setup).
    ``reference``: the consortium's root-set reference spec (JSON, :class:`~ppbfl.fl.reference.ReferenceSpec`):
    under rule ``"cosine"`` the node computes each round's reference itself and refuses a relayed
    one more than ``reference_tolerance`` fixed-point units away (:attr:`EdgeNode.reference_source`;
    None: :data:`~ppbfl.protocol.edge_node.REFERENCE_TOLERANCE`).
    These come from the node's operator, never from the coordinator whose word the signatures replace.

    Raises:
        CredentialsError: the chain key file is missing or unreadable; ConfigError: a trust or
            reference setting is invalid, or only one of ``chain`` and ``contract`` is given;
            ChainError: the node at ``chain`` cannot be reached.
    """
    if (chain is None) != (contract is None):
        raise ConfigError("chain" if chain is None else "contract", "chain and contract go together")
    if peer_registry is None and chain is not None and contract is not None:
        from ppbfl.protocol.chain_registry import ChainRegistry

        peer_registry = ChainRegistry.connect(chain, contract)
    key = None if chain_key is None else load_chain_key(chain_key)
    keys = None
    if device_certs is not None:
        manifest = Path(device_registry) if device_registry is not None else Path(device_certs) / MANIFEST
        keys = CertificateKeys(device_certs, peer_registry if peer_registry is not None else FileRegistry(manifest))
    rule = None if decision_rule is None else load_decision_rule(decision_rule, prefix="decision_rule")
    node = EdgeNode(behaviour=EdgeBehaviour(behaviour), device_keys=keys, chain_key=key, state_dir=state_dir, decision_rule=rule)
    node.request_quorum = request_quorum
    if trust_config is not None:
        node.trust_witness = edge_witness(trust_config, trust_devices, trust_store, trust_signers)
    if ids_flags_dir is not None:
        if trust_config is None:
            raise ConfigError("ids_flags_dir", "IDS reports are part of the trust update: give trust_config too")
        from ppbfl.ids.reputation import FlagsFolder

        node.ids_source = FlagsFolder(Path(ids_flags_dir))
    if reference_tolerance is not None:
        if reference_tolerance < 0:
            raise ConfigError("reference_tolerance", f"{reference_tolerance}: expected fixed-point units >= 0")
        node.reference_tolerance = int(reference_tolerance)
    if reference is not None:
        from ppbfl.fl.reference import RootReference

        node.reference_source = RootReference.load(reference)
    return node


def edge_witness(config: Mapping[str, Any], devices: int, store: str | None, signers: Mapping[str, Any] | None = None) -> TrustWitness:
    """An edge process's :class:`~ppbfl.trust.witness.TrustWitness` of devices ``0 .. devices - 1``
    under ``config`` (a :class:`~ppbfl.trust.config.TrustConfig` as a dict), stored at URL ``store``,
    adopting relayed rounds signed by ``signers`` (``{"accounts": [...], "t": t}``; None: none).

    Raises:
        ConfigError: ``config`` is not a valid trust configuration, ``devices`` < 1, or ``signers``
            malformed (key ``trust_signers``).
    """
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError("trust_devices", f"{devices!r}: a witness needs the number of registered devices (>= 1)")
    parsed = load_trust_config(dict(config), prefix="trust_config")
    checked = None
    if signers is not None:
        if not isinstance(signers, Mapping) or set(signers) != {"accounts", "t"} or not isinstance(signers["accounts"], list | tuple):
            raise ConfigError("trust_signers", f"{signers!r}: expected {{'accounts': [...], 't': t}}")
        checked = TrustSigners.of([str(a) for a in signers["accounts"]], signers["t"])
    return TrustWitness(range(devices), parsed, None if store is None else TrustStore(store), checked)


def make_dealer(
    t: int, n: int, d: int, creds: str, ca: str, peers: Mapping[str, str], fingerprints: Mapping[str, str] | None = None,
    chain: str | None = None, contract: str | None = None,
) -> TripleDealerNode:
    """Handler factory of the dealer process: it calls the edge nodes ``peers`` over mTLS itself,
    pinning each to ``fingerprints`` (party id -> hex), or, given ``chain`` (a JSON-RPC URL) and
    ``contract`` (a ``PPBFLRounds`` address), to the certificate the contract's party registry holds
    as that node's active one (a revoked node is refused).

    Raises:
        ConfigError: only one of ``chain`` and ``contract``, or ``fingerprints`` with them;
            ChainError: the node at ``chain`` cannot be reached.
    """
    if (chain is None) != (contract is None):
        raise ConfigError("chain" if chain is None else "contract", "chain and contract go together")
    pins = None
    if chain is not None and contract is not None:
        from ppbfl.protocol.chain_registry import ChainRegistry

        pins = ChainRegistry.connect(chain, contract)
    transport = GrpcTransport(
        DEALER_PARTY, load_credentials(creds, DEALER_PARTY), Path(ca).read_bytes(), peers,
        fingerprints={k: bytes.fromhex(v) for k, v in (fingerprints or {}).items()}, pins=pins,
    )
    return TripleDealerNode(t, n, d, transport)


def _chain_url(ledger: ChainLedger) -> str:
    """The JSON-RPC URL of ``ledger``'s chain, for other processes to read the contract at.

    Raises:
        ConfigError: the chain is the embedded one (no other process can reach it), or its edge
            nodes are registered already (the deployment registers its own).
    """
    chain = ledger.chain
    url = chain.node.url if chain.node is not None else getattr(chain.w3.provider, "endpoint_uri", None)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError("ledger", "its chain is the embedded one, which other processes cannot reach: use anvil or a JSON-RPC URL")
    if ledger.edge_accounts:
        raise ConfigError("ledger", "its edge nodes are registered already; the deployment registers its own (make the ledger without edge_accounts)")
    return url


class Deployment:
    """Common interface: ``coordinator`` transport, :meth:`device_transport`, :meth:`stop_edge`, :meth:`close`."""

    coordinator: Transport
    fingerprints: dict[str, bytes]
    device_keys: DeviceKeys | None = None
    """Device index -> its public identity key, when every edge node requires signed uploads
    (give it to the :class:`~ppbfl.protocol.round.Coordinator`: it then names a node whose
    mismatch claim its evidence does not back); None: uploads are not checked."""
    networked: bool = False
    """Whether calls cross a network (they then wait on I/O, and a party's calls to several peers
    pay off run side by side); in process a call is CPU work under this process's GIL."""

    @property
    def edge_accounts(self) -> dict[int, str]:
        """Edge index -> the address of that node's own chain key (public; the ledger registers
        it): the node signs its chain votes with the key, which stays with the node."""
        raise NotImplementedError

    def device_transport(self, index: int) -> Transport:
        """Device ``index``'s transport to the edge nodes."""
        raise NotImplementedError

    def issue_devices(self, indices: Iterable[int]) -> None:
        """Give devices ``indices`` their identities ahead of :meth:`device_transport` (all at
        once where that is cheaper, e.g. one registration on chain); default: nothing to do."""

    def device_key(self, index: int) -> ec.EllipticCurvePrivateKey | None:
        """Device ``index``'s identity key, to sign its uploads with (None: it does not sign)."""
        return None

    def peer_registry(self) -> PeerRegistry | None:
        """Who holds which certificate, as the edge nodes check their peers' PRZS offers against it
        (give it to the :class:`~ppbfl.protocol.round.Coordinator` as ``registry``: it then also
        leaves out, named, a node whose offer's certificate is not registered to it, instead of
        relaying an offer every peer refuses); None: not known here."""
        return None

    def stop_edge(self, index: int) -> None:
        """Take edge node ``index`` away (it stops answering)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop every process and close every channel."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessDeployment(Deployment):
    """All parties in this process.

    Args:
        t, n, d: threshold, number of edge nodes, update length (the dealer needs ``d``).
        behaviours: edge node index -> :class:`EdgeBehaviour` (default honest).
        signed_uploads: give each device a P-256 identity key (:meth:`device_key`) and make every
            edge node require its signature on uploads (:attr:`device_keys`).
        chain_keys: edge node index -> that node's own chain key (e.g. what a node kept across a
            restart); nodes without one make a fresh key.
        state_dir: node ``j`` keeps its restart state in ``state_dir/edge-j``
            (:mod:`ppbfl.protocol.edge_state`); None: nothing survives a restart.
        creds: party -> TLS credentials to reuse (a tier rebuilt after a restart keeps its
            identities, so its nodes can read their state); None: fresh ones of a new CA.
        decision_rule: every node's operator-configured rule (:class:`EdgeNode`); None: the nodes
            take the coordinator's.
        request_quorum: every node's :attr:`EdgeNode.request_quorum` (``(n + t - 1) / 2 < q <= n``,
            else ConfigError; its coordinator then needs ``request_endorsements=True``); None: none.

    Each edge node gets TLS credentials of an in-memory CA (``creds``) and the registry of their
    fingerprints (``registry``): its key signs its PRZS offer, the registry checks its peers'.
    """

    def __init__(
        self, t: int, n: int, d: int, *, behaviours: Mapping[int, str] | None = None, field: PrimeField = GF61,
        signed_uploads: bool = False, chain_keys: Mapping[int, ChainKey] | None = None, state_dir: str | Path | None = None,
        creds: Mapping[str, PartyCredentials] | None = None, decision_rule: DecisionRule | None = None, request_quorum: int | None = None,
    ) -> None:
        if request_quorum is not None:
            check_request_quorum(request_quorum, t, n)
        behaviours = dict(behaviours or {})
        chain_keys = dict(chain_keys or {})
        self.state_dir = state_dir
        self._keys: dict[int, ec.EllipticCurvePrivateKey] = {}
        self.device_keys = self._public_key if signed_uploads else None
        if creds is None:
            ca = make_ca("ppbfl in-process consortium")  # the edge nodes sign their PRZS offers with their own keys
            creds = {edge_party(j): issue(ca, edge_party(j)) for j in range(1, n + 1)}
        self.creds = dict(creds)
        self.registry = Registry({party: c.fingerprint for party, c in self.creds.items()})
        self.nodes = {
            party: EdgeNode(
                behaviour=behaviours.get(j, "honest"), field=field, device_keys=self.device_keys,
                credentials=self.creds[party], registry=self.registry, chain_key=chain_keys.get(j),
                state_dir=None if state_dir is None else Path(state_dir) / party, decision_rule=decision_rule,
            )
            for j, party in ((j, edge_party(j)) for j in range(1, n + 1))
        }
        for node in self.nodes.values():
            node.request_quorum = request_quorum
        self._edges: dict[str, EdgeNode] = dict(self.nodes)
        dealer = TripleDealerNode(t, n, d, InProcessTransport(DEALER_PARTY, self._edges), field=field)
        self._handlers: dict[str, Handler] = {**self._edges, DEALER_PARTY: dealer}
        self.coordinator = InProcessTransport(COORDINATOR_PARTY, self._handlers)
        self.fingerprints = {}
        self._devices: dict[int, InProcessTransport] = {}

    @property
    def edge_accounts(self) -> dict[int, str]:
        return {int(party.split("-")[1]): node.chain_address for party, node in self.nodes.items()}  # each node made its own key

    def device_transport(self, index: int) -> Transport:
        if index not in self._devices:
            self._devices[index] = InProcessTransport(device_party(index), self._edges)
        return self._devices[index]

    def peer_registry(self) -> Registry:
        """The registry of the nodes' in-memory certificates (what each node checks its peers' offers against)."""
        return self.registry

    def device_key(self, index: int) -> ec.EllipticCurvePrivateKey | None:
        if self.device_keys is None:
            return None
        if index not in self._keys:
            self._keys[index] = ec.generate_private_key(ec.SECP256R1())
        return self._keys[index]

    def _public_key(self, index: int) -> ec.EllipticCurvePublicKey | None:
        key = self._keys.get(index)
        return None if key is None else key.public_key()

    def stop_edge(self, index: int) -> None:
        self._edges.pop(edge_party(index), None)
        self._handlers.pop(edge_party(index), None)


class GrpcDeployment(Deployment):
    """Edge nodes and the dealer as separate processes on 127.0.0.1, gRPC + mutual TLS.

    Args:
        t, n, d: threshold, number of edge nodes, update length.
        behaviours: edge node index -> :class:`EdgeBehaviour` (fault injection, default honest).
        workdir: where certificates, the manifest and (until the processes loaded them) the
            servers' keys (TLS, and each edge node's chain key) go (default: a fresh owner-only
            temporary folder, :class:`~ppbfl.protocol.cleanup.PrivateFolder`: removed on
            :meth:`close` and whenever this process ends, even by SIGKILL, by a watchdog process;
            stale ones are swept at the next start).
        ready_timeout: seconds a process may take to start listening.
        signed_uploads: every edge node requires uploads signed with the device's TLS key
            (device certificates go to ``workdir`` as devices are issued; :attr:`device_keys`).
        trust_config, trust_devices: each edge process computes and signs the trust update of
            devices ``0 .. trust_devices - 1`` under this model (:func:`make_edge_node`; a keeper
            asks it through :meth:`trust_voters`); None: the nodes sign no trust.
        trust_dir: node ``j`` keeps its trust states in ``trust_dir/edge-j/trust.db`` (its own
            folder; kept after :meth:`close`, so a restarted node resumes); None: in memory.
        decision_rule: every edge process's operator-configured rule (:func:`make_edge_node`); None:
            the nodes take the coordinator's.
        ids_flags_dir: node ``j`` signs, as its IDS report of round ``r``, the counts in
            ``ids_flags_dir/edge-j/round-<r>.json`` (its gateway's detector's, ``ppbfl edge
            --ids-flags``; needs ``trust_config``); None: the nodes report none.
        reference: the root-set reference spec every edge process loads (``ppbfl edge --reference``,
            :mod:`ppbfl.fl.reference`): under rule ``"cosine"`` each node computes the reference
            itself; None: the nodes take the coordinator's.
        ledger: a :class:`~ppbfl.protocol.ledger.ChainLedger` whose edge nodes are not registered
            yet, on a chain the processes can reach (anvil or a JSON-RPC URL; the embedded chain
            lives in this process only). The deployment then registers its edge nodes (chain
            accounts and certificates) and the coordinator's and dealer's certificates in the
            contract before the processes start, and each device's certificate as it is issued
            (:meth:`device_transport`); the edge and dealer processes identify callers from the
            contract's party registry (``--chain URL --contract ADDRESS``), not from the manifest.
            None: the manifest.
        request_quorum: every edge process's request quorum (``ppbfl edge --request-quorum``,
            :attr:`EdgeNode.request_quorum`; checked at setup); None: none.

    Private keys touch the disk only while the server processes start: each loads its own before
    it listens, and every ``.key`` file is deleted once all listen (or failed to), so a process
    killed at any later point (even by SIGKILL) leaves only public certificates behind, and those
    go with the temporary folder (killed while they start, its watchdog removes the keys). The CA's
    and the devices' and coordinator's keys stay in this process's memory.
    """

    def __init__(
        self, t: int, n: int, d: int, *, behaviours: Mapping[int, str] | None = None,
        workdir: str | Path | None = None, ready_timeout: float = 60.0, signed_uploads: bool = False,
        trust_config: TrustConfig | None = None, trust_devices: int = 0, trust_dir: str | Path | None = None,
        decision_rule: DecisionRule | None = None, ledger: ChainLedger | None = None, ids_flags_dir: str | Path | None = None,
        request_quorum: int | None = None, reference: str | Path | None = None,
    ) -> None:
        behaviours = dict(behaviours or {})
        on_chain = [] if ledger is None else ["--chain", _chain_url(ledger), "--contract", ledger.address]
        self.ledger = ledger
        self._pins: ChainRegistry | None = None  # with a ledger: the clients' pins, from its contract
        self.networked = True
        self.trust_devices = trust_devices if trust_config is not None else 0
        self.device_keys = self._public_key if signed_uploads else None
        self._tmp = PrivateFolder("ppbfl-grpc-") if workdir is None else None
        self.workdir = self._tmp.path if self._tmp is not None else Path(str(workdir))
        self.ca = make_ca("ppbfl consortium")
        self.ca_path = self.workdir / "ca.crt"
        self.ca_path.write_bytes(self.ca.cert_pem)
        self.creds: dict[str, PartyCredentials] = {}
        for party in [edge_party(j) for j in range(1, n + 1)] + [DEALER_PARTY]:
            self._issue(party, save=True)
        self._issue(COORDINATOR_PARTY)
        self.fingerprints = {party: c.fingerprint for party, c in self.creds.items()}
        write_manifest(self.workdir / MANIFEST, self.fingerprints)  # the servers' registry
        self._edge_accounts = {}
        for j in range(1, n + 1):  # each node's chain key, loaded by its process and deleted with the other keys
            key = ChainKey.generate()
            key.save(chain_key_path(self.workdir, edge_party(j)))
            self._edge_accounts[j] = key.address
        self.processes: dict[str, ServerProcess] = {}
        try:
            if ledger is not None:  # every server identity on chain before any process serves a call
                ledger.register_edge_nodes(self._edge_accounts, fingerprints=self.fingerprints)
                ledger.register_identities()
            with ThreadPoolExecutor(max_workers=n) as pool:  # the processes start (import numpy, ...) side by side
                started = {
                    edge_party(j): pool.submit(
                        self._spawn, edge_party(j), "ppbfl.protocol.deployment:make_edge_node",
                        {
                            "behaviour": behaviours.get(j, "honest"), "device_certs": str(self.workdir) if signed_uploads else None,
                            "chain_key": str(chain_key_path(self.workdir, edge_party(j))),
                            **self._trust_args(j, trust_config, trust_devices, trust_dir),
                            **({"trust_signers": {"accounts": sorted(self._edge_accounts.values()), "t": t}} if trust_config is not None else {}),
                            **({"ids_flags_dir": str(Path(ids_flags_dir) / edge_party(j))} if ids_flags_dir is not None else {}),
                            **({"reference": str(reference)} if reference is not None else {}),
                            "decision_rule": None if decision_rule is None else decision_rule.model_dump(),
                            **({"request_quorum": request_quorum} if request_quorum is not None else {}),
                            **({"chain": on_chain[1], "contract": on_chain[3]} if ledger is not None and signed_uploads else {}),
                        },
                        ready_timeout, on_chain,
                    )
                    for j in range(1, n + 1)
                }
                failures = []
                for party, future in started.items():
                    try:
                        self.processes[party] = future.result()
                    except ServerStartError as error:  # keep the others, so close() stops them
                        failures.append(error)
                if failures:
                    raise failures[0]
            self.peers = {party: proc.address for party, proc in self.processes.items()}
            pinned = {"chain": on_chain[1], "contract": on_chain[3]} if ledger is not None else {
                "fingerprints": {p: self.fingerprints[p].hex() for p in self.peers},
            }
            self.processes[DEALER_PARTY] = self._spawn(
                DEALER_PARTY, "ppbfl.protocol.deployment:make_dealer",
                {"t": t, "n": n, "d": d, "creds": str(self.workdir), "ca": str(self.ca_path), "peers": dict(self.peers), **pinned},
                ready_timeout, on_chain,
            )
        except BaseException:
            self.close()
            raise
        finally:
            self._remove_keys()
        self.peers[DEALER_PARTY] = self.processes[DEALER_PARTY].address
        self.coordinator = self._client(COORDINATOR_PARTY, self.peers)
        self._devices: dict[int, GrpcTransport] = {}

    @property
    def edge_accounts(self) -> dict[int, str]:
        return dict(self._edge_accounts)

    @staticmethod
    def _trust_args(j: int, config: TrustConfig | None, devices: int, folder: str | Path | None) -> dict:
        """Node ``j``'s trust settings for :func:`make_edge_node` (none without ``config``)."""
        if config is None:
            return {}
        store = None
        if folder is not None:
            own = Path(folder) / edge_party(j)
            own.mkdir(parents=True, exist_ok=True)
            store = f"sqlite:///{own / 'trust.db'}"
        return {"trust_config": config.model_dump(mode="json"), "trust_devices": devices, "trust_store": store}

    def trust_voters(self, edge_accounts: Mapping[int, str], *, timeout: float = 30.0) -> list[RemoteTrustVoter]:
        """The edge processes as a :class:`~ppbfl.trust.keeper.TrustKeeper`'s voters, asked through
        the coordinator's transport; ``edge_accounts``: their registered chain accounts (the ledger's).

        Raises:
            ConfigError: the deployment was made without ``trust_config``.
        """
        if not self.trust_devices:
            raise ConfigError("trust_config", "the edge processes were started without a trust model: they sign no trust")
        return remote_voters(self.coordinator, edge_accounts, self.trust_devices, timeout=timeout)

    def _issue(self, party: str, *, save: bool = False) -> PartyCredentials:
        """Issue ``party`` credentials; ``save``: write them for a server process to load."""
        creds = issue(self.ca, party)
        if save:
            save_credentials(creds, self.workdir)
        self.creds[party] = creds
        return creds

    def _remove_keys(self) -> None:
        for key in self.workdir.glob("*.key"):
            key.unlink(missing_ok=True)

    def _spawn(self, party: str, factory: str, args: dict, ready_timeout: float, on_chain: list[str]) -> ServerProcess:
        command = [
            sys.executable, "-m", "ppbfl.protocol.serve", "--handler", factory, "--party", party,
            "--creds", str(self.workdir), "--ca", str(self.ca_path), "--port", "0", "--handler-arg", json.dumps(args), *on_chain,
        ]
        return spawn_server(command, ready_timeout)

    def _chain_registry(self, ledger: ChainLedger) -> ChainRegistry:
        """The contract's party registry (one per deployment: the clients' pins and the coordinator's offer checks)."""
        if self._pins is None:
            from ppbfl.protocol.chain_registry import ChainRegistry

            self._pins = ChainRegistry(ledger.contract)
        return self._pins

    def peer_registry(self) -> PeerRegistry:
        """The registry the edge processes check their peers against: the contract's party
        registry with a ledger, else the deployment's manifest."""
        return FileRegistry(self.workdir / MANIFEST) if self.ledger is None else self._chain_registry(self.ledger)

    def _client(self, party: str, peers: Mapping[str, str]) -> GrpcTransport:
        """``party``'s transport to ``peers``, pinned to the certificates of the contract's party
        registry with a ledger (a revoked edge node or dealer is refused), else to the deployment's."""
        if self.ledger is not None:
            return GrpcTransport(party, self.creds[party], self.ca.cert_pem, peers, pins=self._chain_registry(self.ledger))
        return GrpcTransport(
            party, self.creds[party], self.ca.cert_pem, peers,
            fingerprints={p: self.fingerprints[p] for p in peers},
        )

    def issue_devices(self, indices: Iterable[int]) -> None:
        """Issue the certificates of devices ``indices`` that have none yet and register them
        together (in the manifest, or on chain with a ledger: one transaction per 100 devices)
        before any of them calls.

        Raises:
            ChainError: with a ledger, the contract refused the registration or the chain is
                unreachable (the certificates are then not kept; a later call issues new ones).
        """
        issued = {party: issue(self.ca, party) for party in dict.fromkeys(device_party(i) for i in indices) if party not in self.creds}
        if not issued:
            return
        fingerprints = {party: creds.fingerprint for party, creds in issued.items()}
        if self.ledger is not None:  # on chain before their first call
            self.ledger.register_identities(fingerprints)
        else:
            write_manifest(self.workdir / MANIFEST, fingerprints)
        for party, creds in issued.items():
            if self.device_keys is not None:  # the nodes read its certificate (public) to check its signatures
                (self.workdir / f"{party}.crt").write_bytes(creds.cert_pem)
            self.creds[party], self.fingerprints[party] = creds, creds.fingerprint

    def device_transport(self, index: int) -> Transport:
        """Device ``index``'s transport to the edge nodes; its certificate is issued on first use
        (:meth:`issue_devices`) and registered before it is returned."""
        if index not in self._devices:
            self.issue_devices([index])
            party = device_party(index)
            edges = {p: a for p, a in self.peers.items() if p != DEALER_PARTY}
            self._devices[index] = self._client(party, edges)
        return self._devices[index]

    def device_key(self, index: int) -> ec.EllipticCurvePrivateKey | None:
        if self.device_keys is None:
            return None
        self.device_transport(index)  # issues its credentials
        return self.creds[device_party(index)].key

    def _public_key(self, index: int) -> ec.EllipticCurvePublicKey | None:
        creds = self.creds.get(device_party(index))
        return None if creds is None else creds.key.public_key()

    def stop_edge(self, index: int) -> None:
        proc = self.processes.get(edge_party(index))
        if proc is not None and proc.alive():
            proc.kill()

    def close(self) -> None:
        for transport in [getattr(self, "coordinator", None), *getattr(self, "_devices", {}).values()]:
            if transport is not None:
                transport.close()
        for proc in getattr(self, "processes", {}).values():
            if proc.alive():
                proc.terminate()
        if self._tmp is not None:
            self._tmp.remove()
