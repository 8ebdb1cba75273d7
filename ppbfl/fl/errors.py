"""Typed errors of the federated-learning side; all derive from :class:`ppbfl.errors.PPBFLError`.

Each names what was wrong: the column of a CSV, the key of a config, the partition request.
:class:`~ppbfl.errors.ConfigError` and :class:`~ppbfl.errors.UpdateRangeError` are the package-wide
classes, re-exported here.
"""

from __future__ import annotations

from ppbfl.errors import ConfigError, PPBFLError, UpdateRangeError

__all__ = [
    "AggregationError",
    "ConfigError",
    "DatasetError",
    "FLError",
    "MissingColumnError",
    "NonNumericColumnError",
    "PartitionError",
    "TooFewClassesError",
    "UnknownComponentError",
    "UnknownDatasetError",
    "UpdateRangeError",
]


class FLError(PPBFLError):
    """Base class of the errors of :mod:`ppbfl.fl`."""


class DatasetError(FLError, ValueError):
    """A dataset cannot be loaded or used; ``column`` names the offending column when there is one."""

    def __init__(self, message: str, column: str | None = None) -> None:
        self.column = column
        super().__init__(message)


class MissingColumnError(DatasetError):
    """A feature or label column asked for is not in the CSV header."""

    def __init__(self, column: str, path: str, available: list[str]) -> None:
        super().__init__(f"column {column!r} is not in {path} (columns: {', '.join(available)})", column)


class NonNumericColumnError(DatasetError):
    """A feature column holds a value that is not a number."""

    def __init__(self, column: str, path: str, example: object) -> None:
        super().__init__(f"feature column {column!r} of {path} is not numeric (e.g. {example!r})", column)


class TooFewClassesError(DatasetError):
    """The label column holds fewer than two distinct classes."""

    def __init__(self, column: str, classes: int) -> None:
        super().__init__(f"label column {column!r} has {classes} distinct class(es); at least 2 are needed", column)


class UnknownDatasetError(DatasetError):
    """A dataset name that is neither shipped nor a CSV spec."""


class PartitionError(FLError, ValueError):
    """Samples cannot be split over the devices as asked (e.g. the minimum per device is impossible)."""



class UnknownComponentError(FLError, ValueError):
    """An attack, defence or model name that does not exist."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"unknown {kind} {name!r} (known: {', '.join(known)})")


class AggregationError(FLError, ValueError):
    """Updates or context given to an aggregator have the wrong shape or are missing something."""
