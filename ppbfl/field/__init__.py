"""Prime-field arithmetic on ``uint64`` arrays: the :class:`PrimeField` value object, validated
element-wise and reduction kernels, the fixed-point codec and the ChaCha20 field CSPRNG."""

from ppbfl.field.backend import available_backends, backend_name, get_backend, set_backend
from ppbfl.field.csprng import FieldRNG, expand_seed, new_seed
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.ops import add, dot, inverse, mul, muladd, neg, scalar_mul, sub, weighted_rowsum
from ppbfl.field.prime_field import GF61, MERSENNE61, PrimeField

__all__ = [
    "PrimeField", "GF61", "MERSENNE61",
    "add", "sub", "neg", "mul", "muladd", "scalar_mul", "dot", "weighted_rowsum", "inverse",
    "FixedPointCodec", "FieldRNG", "expand_seed", "new_seed",
    "available_backends", "backend_name", "get_backend", "set_backend",
]
