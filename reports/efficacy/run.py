"""The efficacy report (issue 17) in one command: both grids, then the targets tables.

    python reports/efficacy/run.py --jobs 2

runs ``ppbfl experiment`` (``python -m ppbfl.cli`` of the interpreter running this script) on ``config_iid.toml`` and ``config_dirichlet.toml`` (outputs in ``iid/``
and ``dirichlet/`` beside this file), records each grid's wall time and the machine in
``wall.json``, then writes ``targets.md`` with ``targets.py``. ``--targets-only`` rewrites
``targets.md`` from the existing results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = ("iid", "dirichlet")


def machine() -> dict[str, object]:
    """CPU model, core count and the 1-minute load average before the run (others' work included)."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--targets-only", action="store_true")
    args = parser.parse_args()
    if not args.targets_only:
        record: dict[str, object] = {"machine": machine(), "jobs": args.jobs, "grids": {}}
        for split in SPLITS:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ppbfl.cli", "experiment", str(HERE / f"config_{split}.toml"), "--output", str(HERE / split),
                            "--jobs", str(args.jobs), "--no-progress"], check=True)
            record["grids"][split] = {"wall_s": round(time.perf_counter() - start, 1), "load_after": os.getloadavg()[0]}  # type: ignore[index]
        (HERE / "wall.json").write_text(json.dumps(record, indent=2) + "\n")
    return subprocess.run([sys.executable, str(HERE / "targets.py"), str(HERE)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
