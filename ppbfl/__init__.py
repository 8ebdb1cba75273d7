"""ppbfl: privacy-preserving, poisoning-resistant, blockchain-audited federated learning.

The crypto core is importable directly::

    from ppbfl import share, reconstruct, FixedPointCodec, SecureCosineFilter
"""

from typing import TYPE_CHECKING

from ppbfl.defense import share_update
from ppbfl.errors import *  # noqa: F403  (the typed exceptions are part of the API)
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

if TYPE_CHECKING:
    from ppbfl.fl.federation import SecureCosineFilter

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``ppbfl.SecureCosineFilter`` is imported on first use (it pulls in the protocol layer)."""
    if name == "SecureCosineFilter":
        from ppbfl.fl.federation import SecureCosineFilter

        return SecureCosineFilter
    raise AttributeError(f"module 'ppbfl' has no attribute {name!r}")


__all__ = [
    "PrimeField", "GF61", "FixedPointCodec", "FieldRNG",
    "share", "reconstruct", "share_compressed", "CompressedShares",
    "robust_reconstruct", "RobustReconstruction",
    "SecureCosineFilter", "share_update",
    *_error_names,
]
