"""Typed errors of the chain layer (all subclass :class:`ppbfl.errors.PPBFLError`)."""

from __future__ import annotations

from typing import Any

from ppbfl.errors import PPBFLError

__all__ = [
    "AnvilStartError",
    "AnvilUnavailableError",
    "ArtifactError",
    "ChainDisagreementError",
    "ChainError",
    "ChainRevertError",
    "ChainTimeoutError",
    "ChainValueError",
    "MissingAccountError",
    "PowRefusedError",
]


class ChainError(PPBFLError):
    """Base class of every chain-layer error."""


class ChainDisagreementError(ChainError):
    """Fewer than ``agree`` endpoints gave the identical answer to ``method``: refused.

    ``answers`` maps each endpoint (``#i scheme://host:port``, no path or credentials) to what it
    said (an answer label, a head, or why it gave none); ``block``: the pinned block (None for
    methods not tied to a block, or when no block could be pinned).
    """

    def __init__(self, method: str, agree: int, answers: dict[str, str], block: int | None, problem: str) -> None:
        self.method, self.agree, self.answers, self.block = method, agree, dict(answers), block
        at = "" if block is None else f" at block {block}"
        said = "; ".join(f"{name}: {what}" for name, what in answers.items())
        super().__init__(f"{method}{at}: {problem} ({agree} must agree); {said}")


class ChainValueError(ChainError, ValueError):
    """A Python-side argument is invalid (checked before anything is sent); names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class ChainRevertError(ChainError):
    """A contract call reverted.

    ``error`` is the Solidity custom error's name (``"WrongPhase"``, ``"StalePow"``, ...) or
    ``"Error"`` / ``"Panic"`` / ``"unknown"``; ``args`` its decoded arguments by name; ``method``
    the contract function and ``sender`` the account that sent it.
    """

    def __init__(self, method: str, sender: str | None, error: str, args: dict[str, Any]) -> None:
        self.method = method
        self.sender = sender
        self.error = error
        self.args_by_name = dict(args)
        shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
        super().__init__(f"{method} from {sender} reverted: {error}({shown})")


class PowRefusedError(ChainError):
    """A device's ``commitShares`` transaction succeeded but the contract refused its PoW stamp: the
    stamp does not meet the ``bits`` the device signed for. The refusal is on chain for
    (``round``, ``device_id``) (``powRefused``, a ``PowRefused`` event; trust evidence
    ``pow_failed``); the device has no commitment in the round and cannot commit again in it."""

    def __init__(self, round: int, device_id: int, bits: int, gas: int) -> None:
        self.round, self.device_id, self.bits, self.gas = round, device_id, bits, gas
        super().__init__(f"device {device_id}, round {round}: the PoW stamp does not meet its {bits} bits; refused on chain")


def _show(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value)


class MissingAccountError(ChainError):
    """A transaction needs an account the node does not sign for (a read-only connection: a node
    with no unlocked account, or a sender it holds no key for). ``account``: that account, or
    ``"funder"`` for the node's first account, which pays and deploys by default."""

    def __init__(self, account: str, detail: str) -> None:
        self.account = account
        super().__init__(f"no account {account} to send from: {detail}")


class ChainTimeoutError(ChainError, TimeoutError):
    """A node did not answer, or a transaction was not mined, within the timeout."""


class AnvilUnavailableError(ChainError, RuntimeError):
    """No anvil binary could be found or installed (names what was tried)."""


class AnvilStartError(ChainError, RuntimeError):
    """The anvil process did not start or did not answer RPC in time (carries its stderr)."""


class ArtifactError(ChainError, RuntimeError):
    """A compiled contract artifact is missing or malformed."""
