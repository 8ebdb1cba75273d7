"""Rule "flame": an edge node's Gram shares, and the clustering every party runs.

Group ``flame gram m=100 d=1e5`` (quick mode: m = 20, d = 1e3): the local products
``[g_i]_j [g_k]_j`` for every pair of stored share rows:

* ``matmul``: one field matmul of the stacked (m, d) rows with their (d, m) transpose, then the
  upper triangle (what ``EdgeNode._gram`` runs, stack and transpose included);
* ``row_dots_per_row`` (the baseline): :func:`ppbfl.field.ops.row_dots` of all rows against each
  row in turn, m passes over the rows (the fused kernel the verify step uses for the norms).

Group ``flame clustering m=100``: :func:`ppbfl.defense.flame.flame_select` on a Gram matrix of m
updates (70 % around one direction, 30 % sign-flipped), with :func:`cosine_distances` alone as the
floor.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICK, field_vector, size_id

from ppbfl.defense.flame import cosine_distances, flame_select
from ppbfl.field import ops
from ppbfl.field.prime_field import GF61

M = 20 if QUICK else 100
D = 10**3 if QUICK else 10**5
GRAM = f"flame gram m={M} d={size_id(D)}"
CLUSTER = "flame clustering m=100"


@pytest.fixture(scope="module")
def rows() -> list[np.ndarray]:
    """m separate (d,) share rows, as an edge node stores them."""
    return [row.copy() for row in field_vector("flame-rows", (M, D))]


def _matmul(rows: list[np.ndarray]) -> np.ndarray:
    stacked = np.stack(rows)
    m = len(rows)
    products = ops.matmul_unchecked(stacked, np.ascontiguousarray(stacked.T), np.empty((m, m), dtype=np.uint64), GF61)
    return products[np.triu_indices(m, 1)]


def _row_dots(rows: list[np.ndarray]) -> np.ndarray:
    m = len(rows)
    full = np.stack([ops.row_dots(rows, row, row, squares=False)[0] for row in rows])
    return full[np.triu_indices(m, 1)]


@pytest.mark.benchmark(group=GRAM)
def test_gram_matmul(benchmark, rows):
    assert np.array_equal(benchmark(_matmul, rows), _row_dots(rows))


@pytest.mark.benchmark(group=GRAM)
def test_gram_row_dots_per_row(benchmark, rows):
    assert np.array_equal(benchmark(_row_dots, rows), _matmul(rows))


@pytest.fixture(scope="module")
def gram() -> np.ndarray:
    rng = np.random.default_rng(0)
    u = rng.normal(0, 0.05, 500) + rng.normal(0, 0.02, (100, 500))
    u[:30] *= -4.0
    return u @ u.T


@pytest.mark.benchmark(group=CLUSTER)
def test_flame_select(benchmark, gram):
    selection = benchmark(flame_select, gram)
    assert set(selection.kept).isdisjoint(range(30))


@pytest.mark.benchmark(group=CLUSTER)
def test_cosine_distances_floor(benchmark, gram):
    assert benchmark(cosine_distances, gram).shape == (100, 100)
