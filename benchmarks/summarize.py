"""Turn a pytest-benchmark JSON file into the Markdown tables of ``RESULTS.md``.

Usage::

    /work/venv/bin/python -m pytest benchmarks --benchmark-only --benchmark-json=bench.json ...
    /work/venv/bin/python benchmarks/summarize.py bench.json > tables.md

One table per benchmark group, with median / min / rounds per implementation and, for each,
``median / median(ppbfl)`` where "ppbfl" is the group's allocating ppbfl benchmark (``ppbfl``
or ``ppbfl_alloc``): > 1 means slower than ppbfl. Then the issue targets, computed from medians.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict

GROUP_ORDER = ("muladd", "share", "reconstruct", "memory")


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _impl(name: str) -> str:
    """``test_share_ppbfl_out[d1e6-t3n5]`` -> ``ppbfl_out``; ``test_backend_kernel[native-mul]`` -> ``native``."""
    base, _, params = name.partition("[")
    if base in ("test_backend_kernel", "test_backend_share_and_reconstruct"):
        return params.split("-", 1)[0].rstrip("]")
    return re.sub(r"^test_(muladd|share|reconstruct|memory|robust|backend_kernel)_", "", base)


def _group_key(group: str) -> tuple:
    op = group.split(" ", 1)[0]
    nums = [float(x) for x in re.findall(r"=(\d+(?:e\d+)?)", group)]
    return (GROUP_ORDER.index(op) if op in GROUP_ORDER else 99, nums)


def load(path: str) -> dict[str, dict[str, dict]]:
    with open(path) as fh:
        data = json.load(fh)
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        groups[bench["group"]][_impl(bench["name"])] = bench
    return groups


def _ours(impls: dict[str, dict]) -> str | None:
    for name in ("ppbfl", "ppbfl_alloc", "native", "ppbfl_consistent"):
        if name in impls:
            return name
    return None


def tables(groups: dict[str, dict[str, dict]]) -> str:
    lines = []
    for group in sorted(groups, key=_group_key):
        if group.startswith("memory"):
            continue
        impls = groups[group]
        ours = _ours(impls)
        ref = impls[ours]["stats"]["median"] if ours else None
        lines.append(f"#### {group}\n")
        lines.append("| implementation | median | min | rounds | median / ppbfl |")
        lines.append("|---|---:|---:|---:|---:|")
        for name, bench in sorted(impls.items(), key=lambda kv: kv[1]["stats"]["median"]):
            st = bench["stats"]
            ratio = f"{st['median'] / ref:.3g}x" if ref else "-"
            lines.append(
                f"| {name} | {_fmt_time(st['median'])} | {_fmt_time(st['min'])} | {st['rounds']} | {ratio} |"
            )
        lines.append("")
    return "\n".join(lines)


def _median(groups, group, impl):
    try:
        return groups[group][impl]["stats"]["median"]
    except KeyError:
        return None


def _speedup(medians: dict[str, float], ours: float, base: str) -> str:
    """``base``'s median over ``ours`` (how many times faster ppbfl is), or ``-`` without ``base``."""
    return f"{medians[base] / ours:,.0f}" if base in medians else "-"


def ratio_summary(groups: dict[str, dict[str, dict]]) -> str:
    """Per group: ppbfl's speed-up over each baseline and its multiple of the memory floor(s)."""
    lines = [
        "| group | ppbfl (alloc) | ppbfl (out=) | × galois | × MPyC | × NumPy-object | ppbfl out= / floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for group in sorted(groups, key=_group_key):
        if group.startswith(("backend", "robust")):
            continue  # their own tables: backend_table, robust_table
        impls = groups[group]
        ours = _ours(impls)
        if ours is None:
            continue
        m = {k: v["stats"]["median"] for k, v in impls.items()}
        alloc = m[ours]
        out = m.get(f"{ours}_out") or m.get("ppbfl_out")

        floors = []
        for floor in ("numpy_add_floor", "memcpy_floor", "read_floor"):
            if floor in m and out:
                floors.append(f"{out / m[floor]:.2f}x {floor.replace('_floor', '')}")
        lines.append(
            f"| {group} | {_fmt_time(alloc)} | {_fmt_time(out) if out else '-'} | {_speedup(m, alloc, 'galois')} "
            f"| {_speedup(m, alloc, 'mpyc')} | {_speedup(m, alloc, 'numpy_object')} | {'; '.join(floors) or '-'} |"
        )
    return "\n".join(lines)


def backend_table(groups: dict[str, dict[str, dict]]) -> str:
    """native vs numba vs galois (and the numpy.add floor) per kernel group."""
    lines = [
        "| group | native | numba | numba / native | native / numpy.add floor | galois / native |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group in sorted(g for g in groups if g.startswith("backend")):
        nat, nb, gal, floor = (_median(groups, group, k) for k in ("native", "numba", "galois", "numpy_add_floor"))
        lines.append(
            f"| {group} | {_fmt_time(nat) if nat else '-'} | {_fmt_time(nb) if nb else '-'} "
            f"| {f'{nb / nat:.2f}x' if nat and nb else '-'} | {f'{nat / floor:.2f}x' if nat and floor else '-'} "
            f"| {f'{gal / nat:,.0f}x' if nat and gal else '-'} |"
        )
    return "\n".join(lines)


def robust_table(groups: dict[str, dict[str, dict]]) -> str:
    """Robust reconstruction vs plain reconstruction of the same n shares."""
    lines = [
        "| group | plain reconstruct | robust, consistent | robust, liar everywhere | liar / plain |",
        "|---|---:|---:|---:|---:|",
    ]
    for group in sorted((g for g in groups if g.startswith("robust")), key=_group_key):
        plain, ok, liar = (
            _median(groups, group, k) for k in ("plain_reconstruct_baseline", "ppbfl_consistent", "ppbfl_liar_everywhere")
        )
        lines.append(
            f"| {group} | {_fmt_time(plain)} | {_fmt_time(ok)} | {_fmt_time(liar)} | {liar / plain:.1f}x |"
        )
    return "\n".join(lines)


def _target_row(label: str, ratio: float, met: bool, fmt: str) -> str:
    return f"| {label} | {format(ratio, fmt)}× | {'yes' if met else '**no**'} |"


def targets(groups: dict[str, dict[str, dict]]) -> str:
    lines = ["| target | measured | met |", "|---|---:|:---:|"]
    mul = next((g for g in groups if g.startswith("muladd")), None)
    if mul:
        g = _median(groups, mul, "galois")
        for key, how in (("ppbfl", "allocating"), ("ppbfl_out", "out=")):
            ours = _median(groups, mul, key)
            if g and ours:
                lines.append(_target_row(f"mul-add ({mul}): ≥ 300× galois (ppbfl {how})", g / ours, g / ours >= 300, ",.0f"))
    sh = "share d=1e6 t=3 n=5"
    if sh in groups:
        mp, a, o, f = (_median(groups, sh, k) for k in ("mpyc", "ppbfl_alloc", "ppbfl_out", "memcpy_floor"))
        if mp and a:
            lines.append(_target_row(f"{sh}: ≥ 100× MPyC (ppbfl allocating)", mp / a, mp / a >= 100, ",.0f"))
        for ours, how in ((o, "out="), (a, "allocating")):
            if ours and f:
                label = f"{sh}: ≤ 3× memcpy floor (ppbfl {how} vs copyto into preallocated)"
                lines.append(_target_row(label, ours / f, ours / f <= 3, ".2f"))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    groups = load(argv[0])
    print("### Targets\n")
    print(targets(groups))
    print("\n### Ratios per group (medians)\n")
    print(ratio_summary(groups))
    print("\n### Kernel backends (medians)\n")
    print(backend_table(groups))
    print("\n### Robust reconstruction (medians)\n")
    print(robust_table(groups))
    print("\n### Per-group tables\n")
    print(tables(groups))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
