"""MPC on Shamir shares: local linear operations, Beaver-triple and honest-majority dot products."""


from ppbfl.mpc.beaver import BeaverTranscript, beaver_dot, beaver_square
from ppbfl.mpc.dot import DotMode, SecureDot, secure_dot
from ppbfl.mpc.errors import CounterReuseError, HonestMajorityError, MPCParameterError, TripleReuseError, TripleShapeError
from ppbfl.mpc.linear import add, add_public, dot_public, scalar_mul, sub, weighted_sum
from ppbfl.mpc.honest_majority import HMTranscript, check_honest_majority, hm_dot_open, hm_square_open, local_products
from ppbfl.mpc.opening import Opened, open_scalar, open_vector
from ppbfl.mpc.przs import PartyPRZS, PRZSKeys, ZeroSharer
from ppbfl.mpc.triples import BeaverTriple, SquareTriple, TripleSource, TrustedDealer

__all__ = [
    "add", "sub", "scalar_mul", "add_public", "dot_public", "weighted_sum",
    "BeaverTriple", "SquareTriple", "TripleSource", "TrustedDealer",
    "beaver_dot", "beaver_square", "BeaverTranscript",
    "hm_dot_open", "hm_square_open", "local_products", "check_honest_majority", "HMTranscript",
    "PRZSKeys", "PartyPRZS", "ZeroSharer", "SecureDot", "secure_dot", "DotMode",
    "Opened", "open_scalar", "open_vector",
    "TripleReuseError", "TripleShapeError", "HonestMajorityError", "CounterReuseError", "MPCParameterError",
]
