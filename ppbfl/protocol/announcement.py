"""What a device is told when a round opens (the coordinator's only message to devices)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RoundAnnouncement", "ValidityChallenge"]


@dataclass(frozen=True)
class RoundAnnouncement:
    """Round ``round``'s public parameters: the ``(t, n)`` edge tier, update length ``d``, the
    codec's ``frac_bits``, the edge nodes online to upload to (``edge_nodes``, indices in 1..n) and
    the hash of the global model the round starts from.

    The coordinator is untrusted: a device checks the announcement against its own configuration
    (:meth:`ppbfl.protocol.device.Device.check_announcement`) before it shares anything.
    """

    round: int
    t: int
    n: int
    d: int
    frac_bits: int
    edge_nodes: tuple[int, ...]
    model_hash: bytes


@dataclass(frozen=True)
class ValidityChallenge:
    """What a device needs to prove its update's range in round ``round`` (after the commitments closed).

    ``seed``: the 32-byte challenge seed fixed on chain after every commitment (it fixes the
    projections); ``k``, ``bits``: the check's parameters (:class:`~ppbfl.defense.validity.ValidityParams`),
    which the device compares with its own; ``edge_nodes``: where to send the proof.
    """

    round: int
    seed: bytes
    d: int
    k: int
    bits: int
    edge_nodes: tuple[int, ...]
