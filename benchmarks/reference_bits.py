"""Do two processes compute the same root-set reference? (diagnostic script for ``reference_tolerance``)

An edge node with a reference source (:class:`ppbfl.fl.reference.RootReference`) refuses a relayed
reference more than ``EdgeNode.reference_tolerance`` fixed-point units from its own in some entry.
This script computes the references of three root-set specs (the demo's MLP on breast_cancer, a
CNN and a 3-epoch MLP on digits; rounds 1-5, a random global model each) in two fresh processes,
one with 1 torch thread (the demo's setting) and one with 2, encodes them with the default codec
and prints how many entries differ and by how many units at most.

    /work/main/.venv/bin/python benchmarks/reference_bits.py

Measured 2026-12-02 (2 cores, torch 2.13 CPU): 171,470 entries, 24 differ, by 1 unit at most (the
demo's MLP: none); the default tolerance is 4.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import sys
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[1]))
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.reference import RootReference
specs = [
    RootReference.spec_for("breast_cancer", range(20), hidden=64, seed=0),
    RootReference.spec_for("digits", range(100), model="cnn", seed=1),
    RootReference.spec_for("digits", range(200), model="mlp", hidden=128, epochs=3, seed=2),
]
out = []
for spec in specs:
    reference = RootReference.from_spec(spec)
    for rnd in range(1, 6):
        g = (np.random.default_rng(rnd).normal(size=reference.d) * 0.1).astype(np.float32)
        out.append(FixedPointCodec().encode(reference(rnd, g).astype(np.float64)).astype(np.int64))
np.save(sys.argv[2], np.concatenate(out))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        paths = {threads: Path(folder) / f"threads-{threads}.npy" for threads in (1, 2)}
        for threads, path in paths.items():
            subprocess.run([sys.executable, "-c", CHILD, str(threads), str(path)], check=True)
        a, b = (np.load(path) for path in paths.values())
    p = 2**61 - 1
    units = (a - b) % p
    units = np.where(units > p // 2, units - p, units)
    print(f"entries {a.size}, differing {int((units != 0).sum())}, largest difference {int(np.abs(units).max())} fixed-point units")


if __name__ == "__main__":
    main()
