"""Which devices a defence left out of a round, and its detection rates against the malicious set.

A device is **excluded** in a round when its update has no weight in that round's aggregate. Only
rules that decide per device have such a set; what it is, per rule (from the rule's ``info``):

=================  ==========================================================================
``ppbfl_secure``   ``info["weights"][i] == 0``: rejected by the cosine test (``cos <= tau``),
                   failed the share-consistency check, or missing (no upload, or an update it
                   could not encode)
``ppbfl_flame``,   ``info["weights"][i] == 0``: outside FLAME's majority cluster, or rejected
``flame``          as by ``ppbfl_secure`` before clustering (secure), or a zero update
``fltrust``        ``info["trust"][i] == 0``: ``ReLU(cos(g_i, g_0)) = 0``
``krum``,          ``i not in info["selected"]``: not among the updates averaged
``multi_krum``
``fedavg``,        none: FedAvg weighs every device; median and trimmed mean drop *values* per
``median``,        coordinate, never a device, so they have no detection rate (None)
``trimmed_mean``
=================  ==========================================================================

``ppbfl_secure_rescaled`` (the secure rule with FLTrust's norm rescaling) as ``ppbfl_secure``;
``ppbfl_flame_models`` and ``flame_models`` (FLAME on the local models) as ``ppbfl_flame``.

The **true positive rate** of a round is the fraction of malicious devices excluded (None when
there are none); the **false positive rate** the fraction of honest devices excluded.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ppbfl.fl.errors import AggregationError

__all__ = ["DEVICE_RULES", "detection_rates", "excluded_devices"]

DEVICE_RULES = ("ppbfl_secure", "ppbfl_secure_rescaled", "ppbfl_flame", "ppbfl_flame_models", "flame", "flame_models", "fltrust",
                "fltrust_clipped", "krum", "multi_krum")
"""The rules that exclude whole devices (see the module docstring)."""


def excluded_devices(defence: str, info: dict[str, Any], m: int) -> frozenset[int] | None:
    """Devices (indices in ``[0, m)``) that rule ``defence`` gave no weight, from its ``info``;
    None for a rule that does not decide per device.

    Raises:
        AggregationError: ``info`` lacks the rule's key or it has the wrong length.
    """
    if defence not in DEVICE_RULES:
        return None
    weighted = ("ppbfl_secure", "ppbfl_secure_rescaled", "ppbfl_flame", "ppbfl_flame_models", "flame", "flame_models")
    key = "weights" if defence in weighted else {"fltrust": "trust", "fltrust_clipped": "trust"}.get(defence, "selected")
    if key not in info:
        raise AggregationError(f"{defence} reported no info[{key!r}]")
    if key == "selected":
        selected = {int(i) for i in info[key]}
        return frozenset(i for i in range(m) if i not in selected)
    weights = list(info[key])
    if len(weights) != m:
        raise AggregationError(f"{defence} info[{key!r}] has {len(weights)} entries for {m} devices")
    return frozenset(i for i, w in enumerate(weights) if w == 0)


def detection_rates(excluded: Collection[int], malicious: Collection[int], m: int) -> tuple[float | None, float | None]:
    """``(TPR, FPR)`` of one round: excluded malicious / malicious, excluded honest / honest
    (None where the denominator is 0)."""
    bad = set(malicious)
    honest = m - len(bad)
    hits = sum(1 for i in excluded if i in bad)
    false = sum(1 for i in excluded if i not in bad)
    return (hits / len(bad) if bad else None, false / honest if honest else None)
