"""The server side: a Flower strategy that runs each training round as one ppbfl round.

Use it in a stock ``ServerApp`` in the place of ``FedAvg`` (the place of Flower's
``SecAggPlusWorkflow``)::

    workflow = PpbflWorkflow(t=2, n=3, edges={1: "10.0.0.1:9101", ...}, creds="creds", reference_fn=root_update)
    result = workflow.start(grid=grid, initial_arrays=arrays, num_rounds=3, timeout=60)

Per round the workflow (the ppbfl :class:`~ppbfl.protocol.round.Coordinator`, an untrusted relay)
opens the round, sends each sampled node the global model with the announcement, waits for the
replies (a node that does not answer within ``timeout`` is a device dropout), closes the
commitments and sends the nodes that answered the validity challenge (they prove their update's
range on shares, docs/validity.md; one more message each, within ``prove_timeout``), then runs the edge
tier: who delivered, share consistency, cosine verification against ``reference_fn(global)`` on
shares (or, with ``rule="flame"``, FLAME's clustering of the updates' pairwise cosines: no
reference, no root set), the weighted aggregate. The new global model is ``global + aggregate``. Flower carries the
announcement, the devices' receipts and the global model; the updates go from each ClientApp's mod
straight to the edge nodes (``ppbfl edge`` processes) over mutual TLS.

With ``chain`` (``"embedded"``: py-evm in this process; ``"anvil"``: a local anvil node this
workflow starts and stops; or the ``http(s)://`` URL of any node) every round is recorded on the
round contract as in the demo: the workflow deploys it, registers the edge nodes' and devices'
chain accounts (``chain-accounts.json`` of ``ppbfl creds``) and funds the devices. The
announcement then carries the chain terms; each device stamps and signs its own commitment
transaction (its key never leaves it), and the workflow sends the signed bytes unchanged before it
closes the commitments; the edge processes sign their own votes. The workflow holds no party's
chain key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Result, Strategy

from ppbfl.chain.driver import Chain
from ppbfl.chain.errors import ChainError
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.integrations.flower.records import PPBFL_RECORD, ModelLayout, announcement_record, challenge_record
from ppbfl.protocol.attribution import CertificateKeys
from ppbfl.protocol.creds import CHAIN_ACCOUNTS, read_chain_accounts
from ppbfl.protocol.edge_node import RULES
from ppbfl.protocol.flame_decision import model_hash
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.parties import COORDINATOR_PARTY, DEALER_PARTY, device_party, edge_party
from ppbfl.protocol.registry import MANIFEST, FileRegistry, Registry, identity_of
from ppbfl.protocol.relayed_commitment import DEFAULT_MAX_POW_BITS, ChainTerms
from ppbfl.protocol.round import Coordinator, RoundResult
from ppbfl.protocol.tls import load_credentials, read_ca_cert

__all__ = ["PpbflWorkflow", "ReferenceFn"]

ReferenceFn = Callable[[np.ndarray], np.ndarray]
"""The round's public reference update from the global model, both float64 (d,) vectors (e.g. an
FLTrust root-set update computed by the server)."""


class PpbflWorkflow(Strategy):
    """ppbfl's secure, poisoning-resistant aggregation as a Flower Message-API strategy.

    Args:
        t, n: threshold and number of edge nodes (parties ``edge-1 .. edge-n``).
        edges: edge node index -> ``"host:port"`` where its ``ppbfl edge`` process listens.
        creds: folder with ``ca.crt`` and the coordinator's credentials (``ppbfl creds --coordinator``).
        reference_fn: :data:`ReferenceFn`; required by rule ``"cosine"``, refused by ``"flame"``.
        rule: ``"cosine"`` (default: against the reference) or ``"flame"`` (FLAME on shares, reference-free;
            needs ``n >= 2t - 1`` edge nodes online: no dealer fallback).
        flame_noise: rule ``"flame"``: the noise level ``lambda`` the edge nodes add on shares (default 0).
        rescale: rule ``"cosine"``: FLTrust's norm rescaling instead of clipping (default False).
        chain: None (default: no chain), ``"embedded"``, ``"anvil"`` or a node's ``http(s)://`` URL.
        pow_bits: with a chain, every device's registered PoW difficulty.
        signed_uploads: the edge nodes require every upload signed by its device (``ppbfl edge``'s
            default): a node's claim that an upload does not match the device's commitment is then
            decided by the device's signature (``creds`` must hold ``device-<i>.crt`` and the manifest
            ``registry.json``, as ``ppbfl creds`` writes them), and a false claim names the node.
            False (nodes run with ``--unsigned-uploads``): such claims stay disputes.
        dealer: ``"host:port"`` of a triple dealer (lets a round finish with fewer than ``2t - 1``
            edge nodes); None: honest-majority norms only.
        tau: cosine acceptance threshold.
        frac_bits: fixed-point fractional bits (the devices' must match).
        fraction_train, min_train_nodes, fraction_evaluate, min_evaluate_nodes, min_available_nodes:
            node sampling, as Flower's ``FedAvg``; evaluation is ``FedAvg``'s.
        edge_timeout: seconds per call to an edge node.
        prove_timeout: seconds to wait for the devices' replies to the validity challenge; None
            (default): the ``timeout`` given to :meth:`start`, the bound Flower puts on the train replies.
        request_endorsements: collect the edge nodes' endorsements of each round's verify request
            before sending it (needed by nodes run with ``ppbfl edge --request-quorum Q``, which
            answer only a request ``Q`` of them endorsed; one more call per node and round).

    Under rule ``"cosine"`` every verify request carries the round's global model (float32) with its
    announced hash (keccak-256 of the float32 bytes), so that nodes run with ``ppbfl edge --reference``
    compute the reference themselves and refuse another one (docs/security.md).

    After :meth:`start`, :attr:`results` maps each round to its :class:`RoundResult` (who was
    accepted, rejected and why, missing devices, the edge nodes' state).
    """

    def __init__(
        self, *, t: int, n: int, edges: Mapping[int, str], creds: str | Path, reference_fn: ReferenceFn | None = None,
        rule: str = "cosine", flame_noise: float = 0.0, rescale: bool = False, signed_uploads: bool = True,
        chain: str | None = None, pow_bits: int = 8, dealer: str | None = None, tau: float = 0.0, frac_bits: int = 16, fraction_train: float = 1.0,
        min_train_nodes: int = 2, fraction_evaluate: float = 0.0, min_evaluate_nodes: int = 0,
        min_available_nodes: int = 2, edge_timeout: float = 30.0, prove_timeout: float | None = None,
        request_endorsements: bool = False,
    ) -> None:
        if sorted(edges) != list(range(1, n + 1)):
            raise ConfigError("edges", f"expected addresses of edge nodes 1..{n}, got {sorted(edges)}")
        _check_rule(t, n, reference_fn, rule, flame_noise, rescale)
        self.rule, self.flame_noise, self.rescale = rule, float(flame_noise), rescale
        if not isinstance(signed_uploads, bool):
            raise ConfigError("signed_uploads", f"{signed_uploads!r}: a bool")
        self.signed_uploads = signed_uploads
        if not isinstance(request_endorsements, bool):
            raise ConfigError("request_endorsements", f"{request_endorsements!r}: a bool")
        self.request_endorsements = request_endorsements
        if chain is not None and (not isinstance(chain, str) or not (chain in ("embedded", "anvil") or chain.startswith(("http://", "https://")))):
            raise ConfigError("chain", f"{chain!r}: expected 'embedded', 'anvil' or an http(s):// URL")
        if isinstance(pow_bits, bool) or not isinstance(pow_bits, int) or not 0 <= pow_bits <= DEFAULT_MAX_POW_BITS:
            raise ConfigError("pow_bits", f"{pow_bits!r}: expected an int in [0, {DEFAULT_MAX_POW_BITS}] (what devices stamp at by default)")
        self.chain, self.pow_bits = chain, pow_bits
        self.ledger: ChainLedger | None = None
        self.t, self.n, self.tau, self.edge_timeout, self.prove_timeout = t, n, tau, edge_timeout, prove_timeout
        self._grid: Grid | None = None
        self.edges = dict(edges)
        self.creds = Path(creds)
        self.reference_fn = reference_fn
        self.codec = FixedPointCodec(frac_bits=frac_bits)
        self.dealer = dealer
        self.sampler = FedAvg(
            fraction_train=fraction_train, fraction_evaluate=fraction_evaluate, min_train_nodes=min_train_nodes,
            min_evaluate_nodes=min_evaluate_nodes, min_available_nodes=min_available_nodes,
        )
        self.results: dict[int, RoundResult] = {}
        self.coordinator: Coordinator | None = None
        self._transport: GrpcTransport | None = None
        self._layout: ModelLayout | None = None
        self._global: dict[int, np.ndarray] = {}
        self._sampled: dict[int, int] = {}
        self._start_timeout = 3600.0

    def start(
        self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3, timeout: float = 3600,
        train_config: ConfigRecord | None = None, evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Flower's :meth:`Strategy.start`; ``timeout`` also bounds the proof replies unless
        ``prove_timeout`` was given."""
        self._start_timeout = float(timeout)
        return super().start(grid, initial_arrays, num_rounds, timeout, train_config, evaluate_config, evaluate_fn)

    def _coordinator(self, d: int) -> Coordinator:
        if self.coordinator is None:
            peers = {edge_party(j): address for j, address in self.edges.items()}
            if self.dealer is not None:
                peers[DEALER_PARTY] = self.dealer
            self._transport = GrpcTransport(
                COORDINATOR_PARTY, load_credentials(self.creds, COORDINATOR_PARTY), read_ca_cert(self.creds / "ca.crt"), peers,
            )
            manifest = FileRegistry(self.creds / MANIFEST) if self.signed_uploads else None  # the edge processes' registry
            keys = CertificateKeys(self.creds, manifest) if manifest is not None else None
            self.ledger = None if self.chain is None else self._ledger(self.chain)
            self.coordinator = Coordinator(
                self.t, self.n, d, self._transport, codec=self.codec, tau=self.tau, dealer=self.dealer is not None,
                timeout=self.edge_timeout, rule=self.rule, flame_noise=self.flame_noise, rescale=self.rescale, device_keys=keys,
                ledger=self.ledger, request_endorsements=self.request_endorsements, registry=manifest,
            )
            self.coordinator.setup()
        if self.coordinator.d != d:
            raise ConfigError("arrays", f"the model has {d} entries; this workflow's rounds have {self.coordinator.d}")
        return self.coordinator

    def _ledger(self, where: str) -> ChainLedger:
        """A fresh round contract on ``where`` with the edge nodes and devices of ``creds``'s
        ``chain-accounts.json`` registered (devices ``0 .. m - 1``, funded) and their TLS
        fingerprints from the manifest.

        Raises:
            ConfigError: the accounts file lacks an edge node or its devices are not ``0 .. m - 1``;
            CredentialsError: the accounts file or the manifest is missing or malformed;
            ChainError: the chain cannot be started or reached.
        """
        accounts = read_chain_accounts(self.creds)
        missing = [edge_party(j) for j in range(1, self.n + 1) if edge_party(j) not in accounts]
        devices = sorted(int(identity.index) for identity in map(identity_of, accounts) if identity.role == "device" and identity.index is not None)
        if missing or not devices or devices != list(range(len(devices))):
            raise ConfigError("chain", f"{self.creds / CHAIN_ACCOUNTS}: needs edge-1..edge-{self.n} (missing {missing}) and devices 0..m-1 (has {devices})")
        fingerprints = Registry.load(self.creds / MANIFEST).fingerprints
        chain = Chain.embedded() if where == "embedded" else Chain.anvil() if where == "anvil" else Chain.connect(where)
        try:
            return ChainLedger(
                chain, self.t, self.n, len(devices), edge_accounts={j: accounts[edge_party(j)] for j in range(1, self.n + 1)},
                device_accounts=[accounts[device_party(i)] for i in devices], fingerprints=fingerprints, pow_bits=self.pow_bits,
            )
        except Exception:
            chain.close()
            raise

    def _chain_terms(self) -> ChainTerms:
        """Every registered device's next nonce and PoW difficulty on the ledger's chain, now."""
        assert self.ledger is not None
        contract, chain = self.ledger.contract, self.ledger.chain
        accounts = self.ledger.device_accounts
        return ChainTerms(
            contract.address, contract.chain_id, {i: chain.transaction_fields(a)["nonce"] for i, a in accounts.items()},
            {i: contract.device(a)[2] for i, a in accounts.items()},
        )

    def _relay_commitments(self, replies: list[Message]) -> int:
        """Send each reply's signed commitment transaction unchanged; returns how many the chain refused."""
        assert self.ledger is not None
        refused = 0
        for reply in replies:
            record = reply.content.config_records.get(PPBFL_RECORD) if not reply.has_error() else None
            raw, device = (record.get("commit_tx"), record.get("device")) if record is not None else (None, None)
            if not isinstance(raw, bytes) or not isinstance(device, int) or device not in self.ledger.device_accounts:
                continue
            try:  # the contract sees the signer as the sender: a device can commit only for itself
                self.ledger.contract.relay_commit(raw, self.ledger.device_accounts[device])
            except ChainError:
                refused += 1
        return refused

    def summary(self) -> None:
        """Nothing to log beyond Flower's own start banner."""

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """Open ppbfl round ``server_round`` for the global model ``arrays`` and address its train
        messages (FedAvg's sampling) with the announcement added."""
        self._grid = grid
        self._layout = ModelLayout.of(arrays)
        vector = self._layout.flatten(arrays, "server")
        coordinator = self._coordinator(vector.size)
        announcement = coordinator.open_round(server_round, model_hash(vector))  # keccak of its float32 bytes, as the nodes check it
        self._global[server_round] = vector
        record = announcement_record(announcement, self.edges, None if self.ledger is None else self._chain_terms())
        messages = list(self.sampler.configure_train(server_round, arrays, config, grid))
        self._sampled[server_round] = len(messages)
        for message in messages:
            message.content.config_records[PPBFL_RECORD] = record
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Run the edge tier for round ``server_round``; returns ``global + aggregate`` and the
        round's counts (``accepted``, ``rejected``, ``missing``; ``flower-errors``: error replies,
        ``no-reply``: sampled nodes that did not answer within the timeout, e.g. a SuperNode that went away).

        The replies only tell who answered: who takes part is what the edge nodes hold under each
        device's commitment. A reply that carries model arrays (a ClientApp without the mod) is
        counted in ``plaintext-replies``; its arrays are not used.
        """
        replies = list(replies)
        errors = sum(1 for reply in replies if reply.has_error())
        plaintext = sum(1 for reply in replies if not reply.has_error() and len(reply.content.array_records) > 0)
        start = self._global.pop(server_round)
        assert self.coordinator is not None and self._layout is not None and self._grid is not None  # configure_train ran
        chain_refused = 0 if self.ledger is None else self._relay_commitments(replies)
        challenge = self.coordinator.challenge(server_round)
        record = challenge_record(challenge, self.edges)
        prove = [
            Message(RecordDict({PPBFL_RECORD: record}), dst_node_id=reply.metadata.src_node_id, message_type=MessageType.TRAIN)
            for reply in replies if not reply.has_error()
        ]
        wait = self._start_timeout if self.prove_timeout is None else self.prove_timeout
        proofs = list(self._grid.send_and_receive(prove, timeout=wait)) if prove else []
        proof_errors = sum(1 for reply in proofs if reply.has_error()) + len(prove) - len(proofs)
        reference = np.zeros(start.size) if self.reference_fn is None else np.asarray(self.reference_fn(start), dtype=np.float64)
        # under rule cosine the nodes also get the global model, so that those with a reference source
        # (`ppbfl edge --reference`) compute the reference themselves instead of taking this one
        model = start.astype(np.float32) if self.rule == "cosine" else None
        result = self.coordinator.finish_round(server_round, reference, model=model)
        self.results[server_round] = result
        rejected = {i: why for i, why in result.rejected.items() if i not in result.missing}
        metrics = MetricRecord({
            "accepted": len(result.accepted), "rejected": len(rejected), "missing": len(result.missing),
            "flower-errors": errors, "no-reply": self._sampled.pop(server_round) - len(replies), "plaintext-replies": plaintext,
            "proof-errors": proof_errors, "chain-refused": chain_refused, "gas": result.gas,
        })
        return self._layout.unflatten(start + result.aggregate), metrics

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """Federated evaluation as ``FedAvg`` (none unless ``fraction_evaluate > 0``)."""
        return self.sampler.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """Evaluation metrics averaged as ``FedAvg``."""
        return self.sampler.aggregate_evaluate(server_round, replies)

    def close(self) -> None:
        """Close the coordinator's threads and channels."""
        if self.coordinator is not None:
            self.coordinator.close()
        if self._transport is not None:
            self._transport.close()
        if self.ledger is not None:
            self.ledger.chain.close()




def _check_rule(t: int, n: int, reference_fn: ReferenceFn | None, rule: str, flame_noise: float, rescale: bool) -> None:
    """Refuse a rule setting before any connection is made (:class:`ConfigError` naming the argument)."""
    if rule not in RULES:
        raise ConfigError("rule", f"{rule!r}: expected one of {RULES}")
    if rule == "cosine" and reference_fn is None:
        raise ConfigError("reference_fn", "rule 'cosine' verifies against a reference: give reference_fn (or use rule 'flame')")
    if rule == "flame" and reference_fn is not None:
        raise ConfigError("reference_fn", "rule 'flame' uses no reference; leave reference_fn unset")
    if rule == "flame" and n < 2 * t - 1:
        raise ConfigError("n", f"rule 'flame' needs n >= 2t - 1 = {2 * t - 1} edge nodes, got {n}")
    if isinstance(flame_noise, bool) or not isinstance(flame_noise, (int, float)) or not 0.0 <= flame_noise < float("inf") or (
        flame_noise > 0 and rule != "flame"
    ):
        raise ConfigError("flame_noise", f"{flame_noise!r}: expected a finite number >= 0, and 0 unless rule = 'flame'")
    if not isinstance(rescale, bool) or (rescale and rule != "cosine"):
        raise ConfigError("rescale", f"{rescale!r}: a bool, True only with rule 'cosine'")
