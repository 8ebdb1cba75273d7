"""Experiment configuration from TOML (``tomllib``), validated key by key.

Example::

    [grid]
    datasets = ["breast_cancer", "heart_failure"]     # or "csv:PATH:LABEL"
    attacks = ["none", "sign_flip", "label_flip"]
    malicious_fractions = [0.0, 0.2, 0.4]
    defences = ["fedavg", "median", "fltrust", "ppbfl_secure"]
    seeds = [0]
    trust = [true]        # optional: [true, false] runs the secure rules with and without trust

    [federation]          # all optional, defaults below
    devices = 10
    rounds = 10
    local_epochs = 1
    batch_size = 16
    lr = 0.1
    model = "mlp"         # logreg | mlp | cnn (cnn only for digits)
    hidden = 32
    partition = "iid"     # iid | dirichlet
    alpha = 0.5
    min_samples = 5
    root_size = 20        # FLTrust root set, taken from the training split (server-held, clean);
                          # default: 10 samples per class (20 for the binary datasets, 100 for
                          # digits: reports/root_size/); 0: no root set (every training sample at a
                          # device): only reference-free defences (fedavg, krum, median,
                          # trimmed_mean, flame, ppbfl_flame) and float-level attacks
    test_fraction = 0.25
    malicious_devices = [3, 7, 1]   # optional: who is malicious, in order (the first
                                    # round(fraction * devices) of the list); default: seeded random

    [attack_params.scaling]
    factor = 10.0
    [attack_params.out_of_range]    # field-level: see ppbfl.fl.field_attacks
    magnitude = 1125899906842624
    [defence_params.trimmed_mean]
    beta = 0.2
    [defence_params.ppbfl_secure]   # the secure defence (see ppbfl.fl.secure_aggregator)
    t = 3
    n = 5
    max_abs = 64.0                  # public bound on update entries
    [trust]                         # the reputation model (ppbfl.trust.TrustConfig; defaults)
    forgetting = 0.9
    quarantine_below = 0.3
    chain = true                    # trust through an embedded chain (default); false: see below

**Trust.** The secure rules (:data:`TRUST_RULES`) run with a :class:`~ppbfl.trust.keeper.TrustKeeper`
per run by default (``grid.trust = [true]``): each round is weighted with the devices' reputation and
reported to the keeper (see :func:`ppbfl.fl.runner.run_cell`); ``trust = [false]`` turns it off,
``[true, false]`` runs both. Plaintext rules have no protocol round to learn from and run once,
without trust (``Cell.trust`` False). Each run with trust records its rounds on an embedded py-evm
chain of its own (``[trust] chain = true``, the default): the edge nodes agree the trust update
on chain, the records are anchored and the devices stamp their PoW at the difficulty the chain
derives from their trust (:mod:`ppbfl.trust.onchain`). ``chain = false`` keeps trust off chain
(no agreement, anchoring or PoW; faster, for speed studies): the results mark such runs
(``trust_chain = off``).

Every error is a :class:`~ppbfl.fl.errors.ConfigError` whose ``key`` is the dotted key.
Cells with attack ``"none"`` run only at fraction 0 and other attacks only at fractions > 0
(at 0 every attack is the clean run).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ppbfl.fl.errors import ConfigError
from ppbfl.trust.config import TrustConfig, load_trust_config

__all__ = ["TRUST_RULES", "Federation", "ExperimentConfig", "Cell", "load_config", "parse_config"]

TRUST_RULES = ("ppbfl_secure", "ppbfl_secure_rescaled", "ppbfl_flame", "ppbfl_flame_models")
"""Rules that run protocol rounds (reason codes per device), so a trust keeper can follow them."""


@dataclass(frozen=True)
class Federation:
    """Federation and training settings shared by every cell of the grid."""

    devices: int = 10
    rounds: int = 10
    local_epochs: int = 1
    batch_size: int = 16
    lr: float = 0.1
    model: str = "mlp"
    hidden: int = 32
    partition: str = "iid"
    alpha: float = 0.5
    min_samples: int = 5
    root_size: int | None = None
    """Root-set samples; None: :data:`ROOT_PER_CLASS` per class of the dataset (:meth:`root_size_for`)."""
    test_fraction: float = 0.25
    malicious_devices: tuple[int, ...] | None = None


    def root_size_for(self, n_classes: int) -> int:
        """The root set's size for a dataset of ``n_classes`` classes (``root_size``, else
        :data:`ROOT_PER_CLASS` per class)."""
        return ROOT_PER_CLASS * n_classes if self.root_size is None else self.root_size


ROOT_PER_CLASS = 10
"""Default root-set samples per class: on digits (10 classes, IID, 20 rounds) FLTrust and the secure
rule lose 5.1 points of clean accuracy to FedAvg with 20 samples, 1.1-1.4 with 50 and 0.6 with 100
(reports/root_size/); the binary datasets keep their 20."""


@dataclass(frozen=True)
class Cell:
    """One run of the grid (``trust``: the run keeps a reputation per device, see :data:`TRUST_RULES`)."""

    dataset: str
    attack: str
    fraction: float
    defence: str
    seed: int
    trust: bool = False


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment grid."""

    datasets: tuple[str, ...]
    attacks: tuple[str, ...]
    malicious_fractions: tuple[float, ...]
    defences: tuple[str, ...]
    seeds: tuple[int, ...]
    federation: Federation = Federation()
    attack_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    defence_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    trust: tuple[bool, ...] = (True,)
    trust_config: TrustConfig = field(default_factory=TrustConfig)
    trust_chain: bool = True

    def cells(self) -> list[Cell]:
        """The runs in a fixed order: dataset, attack, fraction, defence, trust (on first), seed;
        a rule outside :data:`TRUST_RULES` runs once, without trust."""
        out = []
        for d in self.datasets:
            for a in self.attacks:
                for fr in self.malicious_fractions:
                    if (a == "none") != (fr == 0.0):
                        continue
                    for df in self.defences:
                        for tr in dict.fromkeys(t and df in TRUST_RULES for t in self.trust):
                            for s in self.seeds:
                                out.append(Cell(d, a, fr, df, s, tr))
        return out


_INT = {"devices": 1, "rounds": 1, "local_epochs": 1, "batch_size": 1, "hidden": 1, "min_samples": 0, "root_size": 0}
_FLOAT = {"lr", "alpha", "test_fraction"}
_STR = {"model": ("logreg", "mlp", "cnn"), "partition": ("iid", "dirichlet")}


def _list(section: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> tuple:
    if key not in section:
        raise ConfigError(f"grid.{key}", "missing (a non-empty list is required)")
    value = section[key]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"grid.{key}", f"must be a non-empty list, got {value!r}")
    for item in value:
        if not isinstance(item, kind) or (isinstance(item, bool) and kind is not bool):
            raise ConfigError(f"grid.{key}", f"item {item!r} has the wrong type")
    if len(set(value)) != len(value):
        raise ConfigError(f"grid.{key}", "has duplicates")
    return tuple(value)


def parse_config(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a parsed TOML document (see module docstring)."""
    from ppbfl.fl.aggregators import AGGREGATORS
    from ppbfl.fl.attacks import ATTACKS
    from ppbfl.fl.datasets import SHIPPED

    for key in data:
        if key not in ("grid", "federation", "attack_params", "defence_params", "trust"):
            raise ConfigError(key, "unknown section (grid, federation, attack_params, defence_params, trust)")
    grid = data.get("grid")
    if not isinstance(grid, dict):
        raise ConfigError("grid", "missing [grid] table")
    for key in grid:
        if key not in ("datasets", "attacks", "malicious_fractions", "defences", "seeds", "trust"):
            raise ConfigError(f"grid.{key}", "unknown key")
    datasets = _list(grid, "datasets", str)
    for d in datasets:
        if d not in SHIPPED and not (d.startswith("csv:") and d.count(":") >= 2):
            raise ConfigError("grid.datasets", f"{d!r} is not shipped ({', '.join(SHIPPED)}) nor csv:PATH:LABEL")
    attacks = _list(grid, "attacks", str)
    for a in attacks:
        if a not in ATTACKS:
            raise ConfigError("grid.attacks", f"unknown attack {a!r} (known: {', '.join(ATTACKS)})")
    fractions = tuple(float(f) for f in _list(grid, "malicious_fractions", (int, float)))
    for f in fractions:
        if not 0.0 <= f < 1.0:
            raise ConfigError("grid.malicious_fractions", f"{f} is not in [0, 1)")
    defences = _list(grid, "defences", str)
    for d in defences:
        if d not in AGGREGATORS:
            raise ConfigError("grid.defences", f"unknown defence {d!r} (known: {', '.join(AGGREGATORS)})")
    seeds = _list(grid, "seeds", int)
    trust = _list(grid, "trust", bool) if "trust" in grid else (True,)
    trust_in = data.get("trust", {})
    if not isinstance(trust_in, dict):
        raise ConfigError("trust", "must be a table")
    trust_in = dict(trust_in)
    trust_chain = trust_in.pop("chain", True)
    if not isinstance(trust_chain, bool):
        raise ConfigError("trust.chain", f"must be true or false, got {trust_chain!r}")
    trust_config = load_trust_config(trust_in)

    fed_in = data.get("federation", {})
    if not isinstance(fed_in, dict):
        raise ConfigError("federation", "must be a table")
    fed: dict[str, Any] = {}
    for key, value in fed_in.items():
        name = f"federation.{key}"
        if key in _INT:
            if not isinstance(value, int) or isinstance(value, bool) or value < _INT[key]:
                raise ConfigError(name, f"must be an integer >= {_INT[key]}, got {value!r}")
        elif key in _FLOAT:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ConfigError(name, f"must be a positive number, got {value!r}")
            if key == "test_fraction" and not value < 1:
                raise ConfigError(name, f"must be < 1, got {value!r}")
            value = float(value)
        elif key == "malicious_devices":
            if not isinstance(value, list) or len(set(value)) != len(value) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value
            ):
                raise ConfigError(name, f"must be a list of distinct device indices >= 0, got {value!r}")
            value = tuple(value)
        elif key in _STR:
            if value not in _STR[key]:
                raise ConfigError(name, f"must be one of {', '.join(_STR[key])}, got {value!r}")
        else:
            raise ConfigError(name, "unknown key")
        fed[key] = value
    federation = Federation(**fed)
    if federation.malicious_devices is not None:
        if any(i >= federation.devices for i in federation.malicious_devices):
            raise ConfigError("federation.malicious_devices", f"indices must be < devices = {federation.devices}")
        need = max(round(f * federation.devices) for f in fractions)
        if len(federation.malicious_devices) < need:
            raise ConfigError("federation.malicious_devices",
                              f"lists {len(federation.malicious_devices)} devices; the largest fraction needs {need}")
    if federation.model == "cnn" and any(d != "digits" for d in datasets):
        raise ConfigError("federation.model", "cnn needs 8x8 images: use it with datasets = ['digits'] only")

    params: dict[str, dict[str, dict[str, Any]]] = {}
    for section, known in (("attack_params", ATTACKS), ("defence_params", AGGREGATORS)):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(section, "must be a table")
        for name, value in table.items():
            if name not in known:
                raise ConfigError(f"{section}.{name}", f"unknown name (known: {', '.join(known)})")
            if not isinstance(value, dict):
                raise ConfigError(f"{section}.{name}", "must be a table")
        params[section] = {k: dict(v) for k, v in table.items()}
    # Build every component once so that bad parameter names/values fail now, naming the key.
    from ppbfl.fl.aggregators import make_aggregator
    from ppbfl.fl.attacks import make_attack

    for a in attacks:
        try:
            make_attack(a, params["attack_params"].get(a))
        except TypeError as exc:
            raise ConfigError(f"attack_params.{a}", str(exc)) from exc
    for d in defences:
        try:
            defence = make_aggregator(d, params["defence_params"].get(d))
        except TypeError as exc:
            raise ConfigError(f"defence_params.{d}", str(exc)) from exc
        if federation.root_size == 0 and defence.needs_reference:
            raise ConfigError("federation.root_size", f"0 (no root set), but defence {d!r} verifies against the root set's update")
    if federation.root_size == 0:
        for a in attacks:
            if make_attack(a, params["attack_params"].get(a)).field_level:
                raise ConfigError("federation.root_size", f"0 (no root set), but attack {a!r} is crafted against the root set's update")
    return ExperimentConfig(datasets, attacks, fractions, defences, seeds, federation,
                            params["attack_params"], params["defence_params"], trust, trust_config, trust_chain)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError("config", f"file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    return parse_config(data)
