"""ppbfl: privacy-preserving, poisoning-resistant, blockchain-audited federated learning.

The crypto core is importable directly::

    from ppbfl import share, reconstruct, FixedPointCodec
"""

from ppbfl.errors import *  # noqa: F401,F403  (the typed exceptions are part of the API)
from ppbfl.errors import __all__ as _error_names
from ppbfl.field import GF61, FieldRNG, FixedPointCodec, PrimeField
from ppbfl.sharing import (
    CompressedShares,
    RobustReconstruction,
    reconstruct,
    robust_reconstruct,
    share,
    share_compressed,
)

__version__ = "0.1.0"

__all__ = [
    "PrimeField", "GF61", "FixedPointCodec", "FieldRNG",
    "share", "reconstruct", "share_compressed", "CompressedShares",
    "robust_reconstruct", "RobustReconstruction",
    *_error_names,
]
