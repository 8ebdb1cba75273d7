"""MPC on Shamir shares: local linear operations, Beaver-triple and honest-majority dot products."""


from ppbfl.mpc.beaver import BeaverTranscript, beaver_dot, beaver_square
from ppbfl.mpc.dot import DotMode, SecureDot, secure_dot
from ppbfl.mpc.errors import (
    CounterReuseError,
    HonestMajorityError,
    MPCParameterError,
    TripleReuseError,
    TripleShapeError,
)
from ppbfl.mpc.honest_majority import (
    HMTranscript,
    check_honest_majority,
    hm_dot_open,
    hm_square_open,
    local_products,
)
from ppbfl.mpc.linear import add, add_public, dot_public, scalar_mul, sub, weighted_sum
from ppbfl.mpc.opening import Opened, open_scalar, open_vector
from ppbfl.mpc.przs import PartyPRZS, PRZSKeys, ZeroSharer
from ppbfl.mpc.triples import BeaverTriple, SquareTriple, TripleSource, TrustedDealer

__all__ = [
    "BeaverTranscript",
    "BeaverTriple",
    "CounterReuseError",
    "DotMode",
    "HMTranscript",
    "HonestMajorityError",
    "MPCParameterError",
    "Opened",
    "PRZSKeys",
    "PartyPRZS",
    "SecureDot",
    "SquareTriple",
    "TripleReuseError",
    "TripleShapeError",
    "TripleSource",
    "TrustedDealer",
    "ZeroSharer",
    "add",
    "add_public",
    "beaver_dot",
    "beaver_square",
    "check_honest_majority",
    "dot_public",
    "hm_dot_open",
    "hm_square_open",
    "local_products",
    "open_scalar",
    "open_vector",
    "scalar_mul",
    "secure_dot",
    "sub",
    "weighted_sum",
]
