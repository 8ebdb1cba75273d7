"""Vectorised (t, n) Shamir sharing: plain, seed-compressed, and robust (Reed–Solomon) reconstruction."""

from ppbfl.sharing.robust import RobustReconstruction, robust_reconstruct
from ppbfl.sharing.seeded import CompressedShares, share_compressed
from ppbfl.sharing.shamir import lagrange_coefficients, lagrange_matrix, reconstruct, share

__all__ = [
    "share", "reconstruct", "lagrange_coefficients", "lagrange_matrix",
    "share_compressed", "CompressedShares", "robust_reconstruct", "RobustReconstruction",
]
