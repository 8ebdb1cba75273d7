"""Typed errors of the intrusion-detection package; all derive from :class:`ppbfl.errors.PPBFLError`.

Each names what was wrong: the dataset layout and its missing columns, the field of a window or
stream row, the key of a model file.
"""

from __future__ import annotations

from ppbfl.errors import PPBFLError

__all__ = ["IDSError", "LayoutError", "ModelFileError", "StreamError", "WindowShapeError"]


class IDSError(PPBFLError, ValueError):
    """Base class of the errors of :mod:`ppbfl.ids`."""


class LayoutError(IDSError):
    """A CSV does not have the column layout of the dataset it is read as.

    ``layout`` names the layout (``"WUSTL-EHMS-2020"``, ``"CICIoMT2024"``, ``"ppbfl-ids stream"``),
    ``missing`` the required columns that are absent (in layout order), ``path`` the file.
    """

    def __init__(self, layout: str, path: str, missing: list[str], detail: str = "") -> None:
        self.layout = layout
        self.path = path
        self.missing = missing
        shown = ", ".join(repr(c) for c in missing[:8]) + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else "")
        what = f"lacks the {layout} column(s) {shown}" if missing else f"is not a {layout} file"
        super().__init__(f"{path} {what}{': ' + detail if detail else ''}")


class WindowShapeError(IDSError):
    """Windows given to the model or the detector have the wrong shape, dtype or non-finite values."""

    def __init__(self, field: str, got: object, expected: str) -> None:
        self.field = field
        super().__init__(f"{field}: got {got}, expected {expected}")


class StreamError(IDSError):
    """A row of a streamed CSV cannot be used: ``row`` (1-based data row) and ``column`` name it."""

    def __init__(self, path: str, row: int, column: str, message: str) -> None:
        self.path, self.row, self.column = path, row, column
        super().__init__(f"{path}, row {row}, column {column!r}: {message}")


class ModelFileError(IDSError):
    """A saved detector cannot be loaded: missing file, not a detector, or a field of the wrong shape."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")
