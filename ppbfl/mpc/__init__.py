"""MPC on Shamir shares, per party: what one party computes on its own share (as in MPyC and CrypTen).

* linear operations, no communication: :func:`add`, :func:`sub`, :func:`scalar_mul`,
  :func:`add_public`, :func:`dot_public`, :func:`weighted_sum`;
* opening collected shares, naming the parties that lied: :func:`open_scalar`, :func:`open_vector`;
* honest-majority products (``n >= 2t - 1``): :func:`local_products` plus the party's own
  pseudorandom zero share (:class:`PRZSKeys` setup, :class:`PartyPRZS`);
* Beaver squared norms: the dealer's :func:`deal_square_triples`, each party's
  :func:`square_from_opened`; with the dealt pair products, every inner product of the masked
  vectors: :func:`gram_from_opened` (FLAME's Gram matrix).

:mod:`ppbfl.mpc.testing` holds the simulation helpers that keep every party's share in one array
(``SecureDot``, ``TrustedDealer``, ``ZeroSharer``, ``beaver_dot``, ``hm_dot_open``, ...).
"""

from ppbfl.mpc.beaver import gram_from_opened, square_from_opened
from ppbfl.mpc.errors import (
    CounterReuseError,
    HonestMajorityError,
    MPCParameterError,
    TripleReuseError,
    TripleShapeError,
)
from ppbfl.mpc.honest_majority import check_honest_majority, local_products
from ppbfl.mpc.linear import add, add_public, check_shares, dot_public, scalar_mul, sub, weighted_sum
from ppbfl.mpc.opening import Opened, open_scalar, open_vector, party_points
from ppbfl.mpc.przs import PartyPRZS, PRZSKeys
from ppbfl.mpc.triples import SquareTripleShares, deal_square_triples, pair_products

__all__ = [
    "CounterReuseError",
    "HonestMajorityError",
    "MPCParameterError",
    "Opened",
    "PRZSKeys",
    "PartyPRZS",
    "SquareTripleShares",
    "TripleReuseError",
    "TripleShapeError",
    "add",
    "add_public",
    "check_honest_majority",
    "check_shares",
    "deal_square_triples",
    "dot_public",
    "gram_from_opened",
    "local_products",
    "open_scalar",
    "open_vector",
    "pair_products",
    "party_points",
    "scalar_mul",
    "square_from_opened",
    "sub",
    "weighted_sum",
]
