"""A device: encode its update, share it (seed-compressed), commit, and address one upload per edge node."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppbfl.defense.submission import encode_update
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.commitments import commitment_root, share_leaf
from ppbfl.protocol.messages import DeviceUpload
from ppbfl.sharing.seeded import CompressedShares, share_compressed
from ppbfl.sharing.shamir import share

__all__ = ["Device", "PreparedUpload", "device_party"]


def device_party(index: int) -> str:
    """The party id (TLS identity) of device ``index``: ``"device-<index>"``."""
    return f"device-{index}"


@dataclass(frozen=True)
class PreparedUpload:
    """A device's round output: ``uploads[j]`` for edge node ``j`` (1..n) and the ``commitment`` root."""

    device: int
    round: int
    uploads: dict[int, DeviceUpload]
    commitment: bytes


class Device:
    """Device ``index`` of a ``(t, n)`` deployment with fixed-point ``codec``.

    Args:
        rng: CSPRNG for the consistency mask (default: OS-seeded); share seeds come from the OS.
    """

    def __init__(self, index: int, t: int, n: int, codec: FixedPointCodec, *, rng: FieldRNG | None = None) -> None:
        self.index, self.t, self.n, self.codec = index, t, n, codec
        self.rng = FieldRNG(field=codec.field) if rng is None else rng

    @property
    def party(self) -> str:
        """This device's party id."""
        return device_party(self.index)

    def share(self, round: int, update: np.ndarray) -> tuple[CompressedShares, np.ndarray]:
        """Encode ``update`` (float (d,)) under the no-wrap bound and share it; returns the
        seed-compressed sharing and the (n,) uint64 shares of a fresh consistency mask ``rho``.

        Raises:
            UpdateEncodingError: an entry exceeds the bound (names the device and the coordinate).
        """
        encoded = encode_update(update, self.codec, device=self.index)
        sharing = share_compressed(encoded, self.t, self.n, stream=round, field=self.codec.field)
        mask = share(self.rng.random(1), self.t, self.n, field=self.codec.field, rng=self.rng)[:, 0]
        return sharing, mask

    def prepare(self, round: int, update: np.ndarray) -> PreparedUpload:
        """Share ``update`` and build the ``n`` uploads and the commitment root for ``round``."""
        sharing, mask = self.share(round, update)
        leaves = []
        for j in range(1, self.n + 1):
            if j in sharing.seeds:
                leaves.append(share_leaf(round, self.index, j, int(mask[j - 1]), seed=sharing.seeds[j], stream=sharing.stream))
            else:
                leaves.append(share_leaf(round, self.index, j, int(mask[j - 1]), share=sharing.share_for(j)))
        uploads = {
            j: DeviceUpload(
                device=self.index,
                share=None if j in sharing.seeds else sharing.share_for(j),
                seed=sharing.seeds.get(j),
                stream=sharing.stream,
                mask_share=int(mask[j - 1]),
                leaves=leaves,
            )
            for j in range(1, self.n + 1)
        }
        return PreparedUpload(self.index, round, uploads, commitment_root(leaves))
