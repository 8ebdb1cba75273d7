"""Issue 12, "nothing wedges a round": mutated messages at the wire codec and at a live edge node.

* :func:`test_decode_raises_only_message_error_on_mutated_messages`: 20,000 mutants of valid
  messages of every registered kind (:mod:`tests.fuzzing`) at :func:`ppbfl.protocol.wire.decode`:
  each is a decoded message (which re-encodes) or a ``MessageError``, within a wall-clock bound.
* :func:`test_a_live_edge_node_answers_mutated_messages_with_typed_errors_and_serves_the_next_round`:
  2,000 mutants sent over gRPC + mutual TLS to one edge-node process, as a registered device and
  as the coordinator: every answer is a valid reply or a typed error, none hangs, the process stays
  up, and the next round completes with every device and every node.

The seed is ``PPBFL_FUZZ_SEED`` (default fixed, so CI is reproducible) and is printed; a failure
prints the seed, the mutant's index and mutations and the input's hex. ``benchmarks/fuzz_wire.py``
runs the same fuzzer longer.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import numpy as np
import pytest

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import GrpcDeployment
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.parties import COORDINATOR_PARTY, device_party, edge_party
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.wire import decode
from tests.fuzzing import (
    Hang,
    P,
    Sizes,
    corpus,
    decode_outcome,
    fuzz_decode,
    fuzz_live,
    registered_kinds,
    wall_clock_limit,
)
from tests.protocol_helpers import synthetic_round

SEED = int(os.environ.get("PPBFL_FUZZ_SEED", "20261202"))
DECODE_MUTANTS = 20_000
LIVE_MUTANTS = 2_000
HANG_S = 2.0
"""Per-message wall-clock bound of a decode (the median is ~0.1 ms; 2 s leaves room for a loaded machine)."""
CALL_TIMEOUT_S = 10.0
T, N, D, M = 2, 3, 8, 3


def test_the_corpus_holds_every_registered_kind():
    rng = np.random.default_rng(SEED)
    kinds = {decode(data, context={"d": 16, "p": P}).message.KIND for data in corpus(rng)}
    assert kinds == set(registered_kinds())
    assert {"device_upload", "verify_request", "aggregate_request", "setup_edge", "trust_catch_up"} <= kinds


def test_decode_raises_only_message_error_on_mutated_messages():
    print(f"fuzz seed {SEED} (PPBFL_FUZZ_SEED)")
    report = fuzz_decode(SEED, DECODE_MUTANTS, hang_s=HANG_S)
    print(report.summary())
    assert not report.findings, f"{len(report.findings)} untyped exception(s) or hang(s); first:\n" + "\n\n".join(
        f.describe(SEED) for f in report.findings[:3]
    )
    assert report.count == DECODE_MUTANTS and report.decoded + report.rejected == DECODE_MUTANTS
    assert report.slowest < HANG_S
    # the mutants reach past the msgpack layer: many decode, and the refusals name many fields
    decoded_kinds = {k for k in report.outcomes if k.startswith("decoded")}
    assert report.decoded > DECODE_MUTANTS // 20 and len(decoded_kinds) == len(registered_kinds())
    assert len({k for k in report.outcomes if k.startswith("MessageError field")}) >= 15
    for where in ("<bytes>", "<envelope>", "v", "kind", "sender", "round", "body"):
        assert any(k.startswith(f"MessageError {where}:") for k in report.outcomes), where


def test_the_fuzzer_reports_an_untyped_exception_and_a_hang():
    """Negative control: a decode that raises ValueError on some inputs, or stalls, is reported with
    the seed, the input's hex and the traceback."""

    def broken(data, context):
        if data[:1] == b"\x85" and len(data) % 7 == 0:
            raise ValueError("not a MessageError")
        if len(data) % 101 == 0:
            time.sleep(0.5)
        return decode_outcome(data, context)

    report = fuzz_decode(SEED, 400, hang_s=0.2, outcome_of=broken)
    errors = Counter(f.error.split(":")[0] for f in report.findings)
    assert errors["ValueError"] > 0 and errors["Hang"] > 0
    first = report.findings[0].describe(SEED)
    assert f"seed {SEED}" in first and report.findings[0].data.hex() in first and "Traceback" in first
    with pytest.raises(Hang), wall_clock_limit(0.05):
        time.sleep(1)


def _transport(deployment: GrpcDeployment, party: str) -> GrpcTransport:
    """``party``'s own channel to edge node 1, no retries (a timeout is a hang, not a retry)."""
    target = edge_party(1)
    return GrpcTransport(
        party, deployment.creds[party], deployment.ca.cert_pem, {target: deployment.peers[target]},
        fingerprints={target: deployment.fingerprints[target]}, retries=0,
    )


def test_a_live_edge_node_answers_mutated_messages_with_typed_errors_and_serves_the_next_round():
    """Edge node 1 in its own process, set up and after a completed round 1, gets 2,000 mutants as
    device 0 (round 2, the next one) and as the coordinator (round 1; a valid setup or a valid
    message for a later round is the relay's own power to re-key or move the node, so those
    mutants are not sent). Then round 2 runs with every device and node."""
    print(f"fuzz seed {SEED} (PPBFL_FUZZ_SEED)")
    with GrpcDeployment(T, N, D) as deployment:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), timeout=20.0)
        with Federation(deployment, coordinator, range(M)) as federation:
            updates, reference = synthetic_round(M, D, set(), seed=1)
            assert sorted(federation.run_round(1, updates, reference).accepted) == list(range(M))

            transports = {party: _transport(deployment, party) for party in (COORDINATOR_PARTY, device_party(0))}
            try:
                report = fuzz_live(
                    transports, edge_party(1), SEED, LIVE_MUTANTS, sizes=Sizes(d=D, n=N),
                    rounds={COORDINATOR_PARTY: 1, device_party(0): 2}, done_round=1, timeout=CALL_TIMEOUT_S,
                )
            finally:
                for transport in transports.values():
                    transport.close()
            print(report.summary(edge_party(1)))
            assert report.count == LIVE_MUTANTS and report.slowest < CALL_TIMEOUT_S
            assert sum(n for k, n in report.outcomes.items() if k.startswith("reply")) >= 10  # some reach a handler and are served
            assert report.outcomes["RemoteError OutOfPhaseError"] >= 50 and report.outcomes["RemoteError MessageError"] >= LIVE_MUTANTS // 4
            assert deployment.processes[edge_party(1)].alive()

            updates, reference = synthetic_round(M, D, set(), seed=2)
            result = federation.run_round(2, updates, reference)
            assert sorted(result.accepted) == list(range(M)) and result.online == (1, 2, 3)
            assert not result.dropped and not result.liars and not result.missing
