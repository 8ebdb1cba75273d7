"""Stage 5: statistical privacy of a round against fewer than t edge nodes.

Over GF(11) with t = 2, n = 3 and d = 2, two different updates g, g' with the same opened scalars
(same <g, r> and same ||g||^2, g' = the reflection of g in the line of r) are run through the
protocol many times: sharing, the share-consistency check (publishes s), the local <g, r> shares
(opened), and the secure square in honest-majority mode (the masked product shares are opened)
or in Beaver mode (eps and the result shares are opened). The (t - 1) = 1-party view of edge node
1 -- its shares, its PRZS-derived values or triple shares, and every opened value -- must have the
same distribution for g and g'.

Distributions on F_p^k are equal iff all their linear projections are (Fourier analysis over
F_p^k), so the test compares, with chi-square contingency tables: every single component, every
pair of components (joint 2-D distribution), and 40 random linear projections of the whole view,
at a Bonferroni-corrected level. A power control runs the same test on the view of t = 2 edge
nodes, which determines g, and must detect the difference.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from ppbfl.defense import challenge_coefficients, published_values
from ppbfl.field import FieldRNG, PrimeField
from ppbfl.mpc import PRZSKeys, dot_public
from ppbfl.mpc.przs import f_A
from ppbfl.mpc.testing import (
    BeaverTranscript,
    HMTranscript,
    TrustedDealer,
    ZeroSharer,
    beaver_square,
    hm_dot_open,
)
from ppbfl.sharing import share

P = 11
FIELD = PrimeField(P)
T, N, D = 2, 3, 2
R = np.array([1, 2], dtype=np.uint64)
G = np.array([3, 5], dtype=np.uint64)
G_PRIME = np.array([0, 1], dtype=np.uint64)  # reflection of G in the line of R (mod 11)
RUNS = 1500
ALPHA = 1e-3


def test_the_two_updates_open_the_same_scalars() -> None:
    def scalars(g: np.ndarray) -> tuple[int, int]:
        return int(np.dot(g, R)) % P, int(np.dot(g, g)) % P

    assert scalars(G) == scalars(G_PRIME) and not np.array_equal(G, G_PRIME)


def _przs_known(zero: ZeroSharer, party: int, counter: int) -> list[int]:
    """What ``party`` can compute from its own PRZS keys: its partial zero polynomial at 1..n."""
    keys = zero.parties[party - 1].keys
    out = []
    for x in range(1, N + 1):
        total = 0
        for a, key in keys.items():
            r = sum(int(FieldRNG(key, stream=counter, block=k, field=FIELD).random(1)[0]) * pow(x, k, P) for k in range(1, T))
            total += r * f_A(a, N, x, FIELD)
        out.append(total % P)
    return out


def _views(g: np.ndarray, mode: str, parties: tuple[int, ...], seed: int) -> np.ndarray:
    rng = FieldRNG(seed.to_bytes(32, "little"), field=FIELD)
    lam = challenge_coefficients(bytes(32), D, field=FIELD)
    rows = []
    for _ in range(RUNS):
        shares = share(g, T, N, field=FIELD, rng=rng)
        mask = share(rng.random(1), T, N, field=FIELD, rng=rng)[:, 0].copy()
        view: list[int] = []
        for party in parties:
            view += [int(v) for v in shares[party - 1]] + [int(mask[party - 1])]
        view += [int(v) for v in published_values(shares, mask, lam, field=FIELD)]  # consistency check
        view += [int(v) for v in dot_public(shares, R, field=FIELD)]  # opened shares of <g, r>
        if mode == "honest_majority":
            keys = PRZSKeys(T, N, {frozenset(a): rng.random_bytes(32) for a in itertools.combinations(range(1, N + 1), N - T + 1)}, FIELD)
            zero = ZeroSharer(keys)
            tr = HMTranscript()
            hm_dot_open(shares, shares, T, zero, field=FIELD, transcript=tr)
            assert tr.masked is not None
            view += [int(v) for v in tr.masked]
            for party in parties:
                view += _przs_known(zero, party, 0)
        else:
            dealer = TrustedDealer(T, N, rng=FieldRNG(rng.random_bytes(32), field=FIELD), field=FIELD)
            triple = dealer.square_triple(D)
            tb = BeaverTranscript()
            z = beaver_square(shares, triple, T, field=FIELD, transcript=tb)
            assert tb.eps is not None
            view += [int(v) for v in tb.eps] + [int(v) for v in z]
            for party in parties:
                view += [int(v) for v in triple.a[party - 1]] + [int(triple.c[party - 1])]
        rows.append(view)
    return np.array(rows, dtype=np.int64)


def _min_p_value(va: np.ndarray, vb: np.ndarray) -> tuple[float, int]:
    """Smallest chi-square p-value over the projections, and the number of tests run."""
    k = va.shape[1]
    gen = np.random.default_rng(0)  # projection coefficients: test machinery only
    projections: list[np.ndarray] = []
    for i in range(k):
        projections.append(np.array([[i]]))
    for i, j in itertools.combinations(range(k), 2):
        projections.append(np.array([[i, j]]))
    random_linear = [gen.integers(0, P, k) for _ in range(40)]
    p_values = []

    def test(xa: np.ndarray, xb: np.ndarray, cells: int) -> None:
        table = np.stack([np.bincount(xa, minlength=cells), np.bincount(xb, minlength=cells)])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:  # constant in both: identical
            return
        p_values.append(float(chi2_contingency(table)[1]))

    for proj in projections:
        cols = proj[0]
        if cols.size == 1:
            test(va[:, cols[0]], vb[:, cols[0]], P)
        else:
            test(va[:, cols[0]] * P + va[:, cols[1]], vb[:, cols[0]] * P + vb[:, cols[1]], P * P)
    for c in random_linear:
        test(va @ c % P, vb @ c % P, P)
    return min(p_values), len(p_values)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["honest_majority", "beaver"])
def test_fewer_than_t_edge_nodes_learn_nothing_beyond_the_opened_scalars(mode: str) -> None:
    va, vb = _views(G, mode, (1,), 1), _views(G_PRIME, mode, (1,), 2)
    p_min, tests = _min_p_value(va, vb)
    assert tests > 100
    assert p_min > ALPHA / tests, f"view of 1 edge node depends on the update (p = {p_min:.2e}, {tests} tests)"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["honest_majority", "beaver"])
def test_power_control_t_edge_nodes_are_detected(mode: str) -> None:
    va, vb = _views(G, mode, (1, 2), 3), _views(G_PRIME, mode, (1, 2), 4)
    p_min, tests = _min_p_value(va, vb)
    assert p_min < ALPHA / tests * 1e-6


@pytest.mark.slow
def test_power_control_unmasked_local_products_are_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the PRZS re-randomisation the opened local products of one node's view leak (the
    product of two random degree-1 polynomials is not a random degree-2 polynomial): the same
    test on the view of a single edge node must detect it."""
    real_next = ZeroSharer.next

    def no_mask(self: ZeroSharer, count: int = 1) -> np.ndarray:
        return np.zeros_like(real_next(self, count))

    monkeypatch.setattr(ZeroSharer, "next", no_mask)
    va, vb = _views(G, "honest_majority", (1,), 5), _views(G_PRIME, "honest_majority", (1,), 6)
    p_min, tests = _min_p_value(va, vb)
    assert p_min < ALPHA / tests
