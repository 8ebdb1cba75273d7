"""The simulation harness: many simulated devices driven around one protocol deployment.

A deployment (:mod:`ppbfl.protocol.deployment`) runs the edge tier and the dealer; the
:class:`~ppbfl.protocol.round.Coordinator` relays; each device is a
:class:`~ppbfl.protocol.device.Device` client with its own transport and, with a chain, its own
account. A real deployment runs each device on its own hardware; a simulation runs them here,
side by side in a bounded thread pool, and that is all :class:`Federation` adds: it hands every
device its plaintext update (which only that device sees), collects what happened, and puts the
round's result together with what the harness itself knows (devices that had no update or whose
update could not be encoded).

:class:`SecureCosineFilter` is the one-call convenience over it: a fresh in-process deployment
(kept between calls of the same shape), one round, the aggregate. The experiment runner's
``ppbfl_secure`` rule, the demo, the benchmarks and the gas tables all run rounds through here, so
every figure comes from the protocol itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal, Self

import numpy as np

from ppbfl.chain.attest import ChainKey
from ppbfl.defense.rule import DecisionRule, load_decision_rule
from ppbfl.errors import ConfigError, FieldShapeError, PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.deployment import Deployment, InProcessDeployment
from ppbfl.protocol.device import Device, ProofDelivery, Submission
from ppbfl.protocol.flame_decision import model_hash
from ppbfl.protocol.ledger import ChainLedger, DeviceChainAccount
from ppbfl.protocol.round import Coordinator, RoundResult

if TYPE_CHECKING:
    from ppbfl.trust.config import TrustConfig
    from ppbfl.trust.ids_reports import IdsReport
    from ppbfl.trust.keeper import TrustKeeper

__all__ = ["DeviceFactory", "Federation", "SecureCosineFilter", "operator_rule"]

DeviceFactory = Callable[..., Device]
"""Builds a device: called as ``factory(index, t, n, codec, transport=..., board=..., strict=...)`` (a
subclass of :class:`Device` to simulate a misbehaving one)."""

ZERO_HASH = b"\x00" * 32
PARALLEL_DEVICES_FROM = 1 << 14
"""In process, devices run side by side only for updates at least this long (see ``workers``)."""


def operator_rule(
    rule: str, tau: float, rescale: bool, flame_noise: float, norms: Literal["auto", "honest-majority", "beaver"],
    flame_space: str = "updates",
) -> DecisionRule:
    """The :class:`~ppbfl.defense.rule.DecisionRule` an in-process deployment configures every edge
    node with, as its operator would, for the coordinator's ``rule`` options.

    Raises:
        ConfigError: naming the rule option that is invalid (``rule.tau``, ``rule.rescale``, ...).
    """
    return load_decision_rule({
        "rule": rule, "tau": float(tau), "rescale": bool(rescale), "flame_noise": float(flame_noise),
        "norms": "honest-majority" if norms == "honest-majority" else "auto", "flame_space": flame_space,
    })


class Federation:
    """Devices ``0..m-1`` (or ``indices``) around ``deployment``, relayed by ``coordinator``.

    Args:
        deployment: the edge tier (in process or gRPC); each device gets its own transport from it.
        coordinator: the relay (already set up or not: :meth:`run_round` sets it up on first use).
        devices: device indices.
        ledger: the chain ledger the coordinator records on; None: no chain. Each device then makes
            its own chain key and commits with it (:class:`DeviceChainAccount`); the ledger
            registers the devices' and (if it has none) the deployment's edge nodes' addresses,
            so ``devices`` must be its devices ``0 .. m - 1``. The nodes of an in-process
            deployment then read each round's model hash and verify-request hash from its
            contract themselves (:meth:`~ppbfl.protocol.edge_node.EdgeNode.read_chain`).
        factories: device index -> :data:`DeviceFactory` (default :class:`Device`).
        workers: devices that share, commit and upload at the same time (each device uploads to
            its edge nodes side by side too when the deployment is networked; in process its
            uploads run one after another, as thread hand-offs would cost more than they save).
            None (default): 8 for a networked deployment (devices wait on I/O); in process,
            4 for updates of at least 2^14 entries (a device's work is then mostly kernels that
            release the GIL) and 1 below (measured at 100 devices: d = 1e5, 1.10 s with 4 workers
            vs 1.28 s with 1; d = 1e3, 0.34 s with 1 vs 0.45-0.55 s with 4).
        owns_deployment: :meth:`close` also closes ``deployment``.
        strict: devices refuse updates the input-validity check would reject (``Device(strict=True)``,
            the default: a device that failed to take part is reported ``missing``). ``False``
            simulates an unknown mix of honest and malicious devices: every finite update is shared
            as is and the edge nodes decide (an update above the bound is rejected "out of range").
        trust: a :class:`~ppbfl.trust.keeper.TrustKeeper`: every round is then weighted with its
            trust (unless ``run_round`` is given one) and reported to it afterwards (update, store, anchor).
        device_chain_keys: device -> its own chain key. Needed, for every device, with a ledger whose
            devices are registered already (:meth:`ChainLedger.attach` after a coordinator restart:
            each key's address must be the registered one); otherwise devices without one make a
            fresh key, which the ledger registers.
    """

    def __init__(
        self, deployment: Deployment, coordinator: Coordinator, devices: range | list[int], *, ledger: ChainLedger | None = None,
        factories: Mapping[int, DeviceFactory] | None = None, workers: int | None = None, owns_deployment: bool = False,
        strict: bool = True,
        trust: TrustKeeper | None = None, device_chain_keys: Mapping[int, ChainKey] | None = None,
    ) -> None:
        if workers is None:
            workers = 8 if deployment.networked else (4 if coordinator.d >= PARALLEL_DEVICES_FROM else 1)
        if workers < 1:
            raise ConfigError("workers", f"{workers}: expected >= 1")
        self.deployment, self.coordinator, self.ledger = deployment, coordinator, ledger
        boards: dict[int, DeviceChainAccount] = {}
        if ledger is not None:
            if not ledger.edge_accounts:  # the nodes' own chain keys' addresses
                ledger.register_edge_nodes(deployment.edge_accounts)
            if sorted(devices) != list(range(ledger.devices)):
                raise ConfigError("devices", f"{list(devices)!r:.80}: the ledger's devices are 0 .. {ledger.devices - 1}")
            given = dict(device_chain_keys or {})
            if ledger.device_ids:  # an attached contract: the devices bring the keys registered for them
                for i in devices:
                    if i not in given or given[i].address.lower() != ledger.device_accounts[i].lower():
                        raise ConfigError(
                            "device_chain_keys", f"device {i}: the ledger's devices are registered already; pass the key of {ledger.device_accounts[i]}",
                        )
                keys = {i: given[i] for i in devices}
            else:
                keys = {i: given.get(i) or ChainKey.generate() for i in devices}  # each device's own key (only its address is registered)
                ledger.register_devices([keys[i].address for i in sorted(keys)])
            boards = {i: DeviceChainAccount(ledger.contract, key, ledger.device_ids[i]) for i, key in keys.items()}
            if isinstance(deployment, InProcessDeployment):  # nodes in this process read the round's facts on chain themselves
                for node in deployment.nodes.values():
                    node.read_chain(ledger.contract)
        self.owns_deployment = owns_deployment
        self.trust = trust
        t, n, codec = coordinator.t, coordinator.n, coordinator.codec
        factories = dict(factories or {})
        deployment.issue_devices(devices)  # identities of all devices at once (on chain: one registration)
        self.devices: dict[int, Device] = {
            i: factories.get(i, Device)(
                i, t, n, codec, transport=deployment.device_transport(i),
                board=boards.get(i), validity_k=coordinator.validity.k, strict=strict,
                signing_key=deployment.device_key(i),
            )
            for i in devices
        }
        self._device_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ppbfl-device")
        self._upload_pool = ThreadPoolExecutor(max_workers=workers * n, thread_name_prefix="ppbfl-upload") if deployment.networked else None

    @classmethod
    def in_process(
        cls, t: int, n: int, d: int, devices: int, *, codec: FixedPointCodec | None = None, tau: float = 0.0,
        norms: Literal["auto", "honest-majority", "beaver"] = "auto", behaviours: Mapping[int, str] | None = None,
        factories: Mapping[int, DeviceFactory] | None = None, workers: int | None = None, strict: bool = True,
        rule: str = "cosine", flame_noise: float = 0.0, rescale: bool = False, flame_space: str = "updates",
    ) -> Federation:
        """``devices`` devices around an :class:`InProcessDeployment` of ``(t, n)`` edge nodes, no chain
        (``rule``, ``flame_noise``, ``rescale``: the round's decision rule, FLAME's noise level and
        FLTrust's norm rescaling, :class:`~ppbfl.protocol.round.Coordinator`; every edge node is
        configured with this rule, as its operator would, and refuses a setup with another;
        ``flame_space``: what rule ``"flame"`` clusters, ``"updates"`` or ``"models"``).

        Raises:
            ConfigError: naming the rule option that is invalid (``rule.tau``, ``rule.rescale``, ...).
        """
        codec = FixedPointCodec() if codec is None else codec
        decision_rule = operator_rule(rule, tau, rescale, flame_noise, norms, flame_space)
        deployment = InProcessDeployment(t, n, d, behaviours=behaviours, field=codec.field, signed_uploads=True, decision_rule=decision_rule)
        coordinator = Coordinator(
            t, n, d, deployment.coordinator, codec=codec, tau=tau, norms=norms, device_keys=deployment.device_keys,
            rule=rule, flame_noise=flame_noise, rescale=rescale, flame_space=flame_space, registry=deployment.peer_registry(),
        )
        return cls(deployment, coordinator, range(devices), factories=factories, workers=workers, owns_deployment=True, strict=strict)

    def run_round(
        self, round: int, updates: Mapping[int, np.ndarray], reference: np.ndarray, *,
        trust: Mapping[int, float] | None = None, model_hash: bytes = ZERO_HASH, ids_flags: Mapping[int, int] | None = None,
        ids_reports: Sequence[IdsReport] = (), model: np.ndarray | None = None,
    ) -> RoundResult:
        """One round: every device with an entry in ``updates`` (float (d,)) takes part with it.
        ``model``: rule ``"cosine"``: the round's global model ((d,) float32, with hash
        ``model_hash``), sent to the edge nodes so that those with a reference source compute the
        reference themselves (:meth:`Coordinator.finish_round`).

        Returns the coordinator's :class:`RoundResult`, whose ``missing`` also names the devices
        that had no update or failed before uploading, and whose ``timings`` add ``devices`` (wall
        seconds of the devices' phase) and ``share`` / ``commit`` / ``upload`` (device-seconds,
        summed over devices), and ``trust`` (the trust keeper's step) with a keeper.
        ``ids_flags``: device -> this round's anomaly flags from the intrusion detector
        (:func:`ppbfl.ids.reputation.ids_flags`), evidence for an off-chain trust keeper;
        ``ids_reports``: the edge nodes' signed reports of them, the only IDS evidence a keeper
        with a chain takes (:mod:`ppbfl.trust.ids_reports`).

        Raises:
            NotEnoughEdgeNodesError, RoundFailedError: as :meth:`Coordinator.finish_round`.
        """
        if not self.coordinator.online:
            self.coordinator.setup()
        announcement = self.coordinator.open_round(round, model_hash)
        tick = time.perf_counter()
        failed: dict[int, str] = {}
        futures = {}
        for i, device in self.devices.items():
            if i not in updates:
                failed[i] = "missing upload: no update"
                continue
            futures[i] = self._device_pool.submit(device.submit, announcement, updates[i], pool=self._upload_pool)
        submissions: dict[int, Submission] = {}
        for i, future in futures.items():
            try:
                submissions[i] = future.result()
            except PPBFLError as error:
                failed[i] = f"missing upload: {type(error).__name__}: {error}"
        challenge = self.coordinator.challenge(round)
        proofs = {i: self._device_pool.submit(self.devices[i].prove, challenge, pool=self._upload_pool) for i in submissions}
        delivered: dict[int, ProofDelivery] = {}
        for i, proving in proofs.items():
            try:
                delivered[i] = proving.result()
            except PPBFLError as error:
                failed[i] = f"missing proof: {type(error).__name__}: {error}"
        devices_wall = time.perf_counter() - tick
        if trust is None and self.trust is not None:
            trust = self.trust.round_trust()
        result = self.coordinator.finish_round(round, reference, trust=dict(trust) if trust is not None else None, model=model)
        for i, why in failed.items():
            result.missing.setdefault(i, why)
        steps = ("share", "commit", "upload")
        result.timings = {
            "devices": devices_wall, **{s: sum(x.timings.get(s, 0.0) for x in submissions.values()) for s in steps},
            "prove": sum(x.timings.get("prove", 0.0) for x in delivered.values()),
            "proof upload": sum(x.timings.get("upload", 0.0) for x in delivered.values()), **result.timings,
        }
        if self.trust is not None:
            tick = time.perf_counter()
            self.trust.after_round(result, ids_flags=ids_flags, ids_reports=ids_reports)
            result.timings["trust"] = time.perf_counter() - tick
        return result

    def close(self) -> None:
        """Stop the harness's threads, the coordinator's, and the deployment if it owns it."""
        self._device_pool.shutdown(wait=True)
        if self._upload_pool is not None:
            self._upload_pool.shutdown(wait=True)
        self.coordinator.close()
        if self.owns_deployment:
            self.deployment.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SecureCosineFilter:
    """The secure cosine defence (DESIGN §5) in one call: one protocol round, in process.

    Args:
        t, n: threshold and number of edge nodes.
        codec: fixed-point codec (default ``FixedPointCodec()``: GF(2^61 - 1), 16 fractional bits).
        tau: accept ``cos > tau``.
        norms: as :class:`~ppbfl.protocol.round.Coordinator` (``"auto"``, ``"honest-majority"`` or ``"beaver"``).
        factories: device index -> :data:`DeviceFactory` (simulated misbehaving devices; default :class:`Device`).
        rule: ``"cosine"`` (the default) or ``"flame"`` (the reference is then unused).
        flame_noise: FLAME's noise level ``lambda``, added on shares by the edge nodes.
        rescale: rule ``"cosine"``: FLTrust's norm rescaling instead of clipping.
        flame_space: rule ``"flame"``: ``"updates"`` or ``"models"`` (the ``reference`` of
            :meth:`verify_and_aggregate` is then the global model, announced by its hash).
        chain_trust: a trust model: every round then runs on an embedded chain with trust agreed by
            the edge nodes, anchored and setting the PoW (:func:`ppbfl.trust.onchain.chained_federation`;
            :attr:`federation` holds the keeper); None (default): no chain, the caller's trust.
    """

    def __init__(
        self, t: int, n: int, codec: FixedPointCodec | None = None, *, tau: float = 0.0, norms: Literal["auto", "honest-majority", "beaver"] = "auto",
        factories: Mapping[int, DeviceFactory] | None = None, rule: str = "cosine", flame_noise: float = 0.0,
        rescale: bool = False, chain_trust: TrustConfig | None = None, flame_space: str = "updates",
    ) -> None:
        self.t, self.n, self.tau, self.norms, self.rule, self.flame_noise = t, n, tau, norms, rule, flame_noise
        self.flame_space = flame_space
        self.rescale, self.chain_trust = rescale, chain_trust
        self.factories = dict(factories or {})
        self.codec = FixedPointCodec() if codec is None else codec
        self._federation: Federation | None = None
        self._round = 0

    def verify_and_aggregate(
        self, updates: np.ndarray, reference: np.ndarray, trust: np.ndarray | None = None,
    ) -> tuple[np.ndarray, RoundResult]:
        """Share every row of ``updates`` ((m, d) float) as device ``i``, verify against the public
        float (d,) ``reference`` and aggregate; ``trust``: (m,) public scores in [0, 1].

        Returns ``(aggregate float64 (d,), the round's RoundResult)``.

        Raises:
            FieldShapeError: ``updates`` is not a non-empty 2-D array; UpdateRangeError-caused
            dropouts are reported in the result; RoundFailedError / NotEnoughEdgeNodesError as a round.
        """
        u = np.asarray(updates, dtype=np.float64)
        if u.ndim != 2 or 0 in u.shape:
            raise FieldShapeError("updates", u.shape, "(m, d) with m, d >= 1")
        m, d = u.shape
        federation = self._federation
        if federation is None or federation.coordinator.d != d or len(federation.devices) != m:
            if federation is not None:
                federation.close()
            if self.chain_trust is None:
                federation = Federation.in_process(
                    self.t, self.n, d, m, codec=self.codec, tau=self.tau, norms=self.norms, strict=False, factories=self.factories,
                    rule=self.rule, flame_noise=self.flame_noise, rescale=self.rescale, flame_space=self.flame_space,
                )
            else:
                from ppbfl.trust.onchain import chained_federation

                federation = chained_federation(
                    self.t, self.n, d, m, self.chain_trust, codec=self.codec, tau=self.tau, norms=self.norms, strict=False,
                    factories=self.factories, rule=self.rule, flame_noise=self.flame_noise, rescale=self.rescale,
                    flame_space=self.flame_space,
                )
            self._federation = federation
        self._round += 1
        scores = None if trust is None else {i: float(x) for i, x in enumerate(np.asarray(trust, dtype=np.float64))}
        announced = model_hash(reference) if self.flame_space == "models" else ZERO_HASH  # the reference is then G
        result = federation.run_round(self._round, {i: u[i] for i in range(m)}, reference, trust=scores, model_hash=announced)
        return result.aggregate, result

    @property
    def federation(self) -> Federation | None:
        """The federation of the latest round (None before the first)."""
        return self._federation

    def close(self) -> None:
        """Stop the in-process deployment."""
        if self._federation is not None:
            self._federation.close()
            self._federation = None
