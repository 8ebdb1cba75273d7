"""IDS flags as an agreed record: edge nodes' signed reports, checked and combined by every node.

The sensors are the edge nodes (the hospitals' gateways run the detector, :mod:`ppbfl.ids`, on the
device traffic they see). Node ``j`` signs what its detector counted in round ``r`` -- device ->
flagged windows, :func:`ppbfl.ids.reputation.ids_flags` -- with its registered chain key, as an
attestation of kind 5 (:data:`~ppbfl.chain.attest.KIND_IDS_FLAGS`; the EIP-191 domain of its votes:
kind, contract, chain id, round) of::

    digest = keccak256("ppbfl/ids-flags/v1" || uint32 m || uint32 k || (uint32 device || uint16 count) * k)

where ``m`` is the number of registered devices the report covers (devices ``0..m-1``) and the
``k`` pairs list the devices with a count, ascending. The relay carries the reports to every
voting node; each node checks every report against the registered edge accounts its operator
gave it (:class:`IdsSensors`, never the relay's word) and combines them by one rule
(:func:`combine_counts`): per device, the ``(e + 1)``-th largest reported count, with ``e =
floor((n - t) / 2)`` the lying edge nodes the threat model allows among ``n`` registered ones. With at
most ``e`` liars among the reports:

* **no framing**: a device's agreed count is at most the largest count an honest sensor reported
  (of the ``e + 1`` largest, one is honest), whichever reports the relay includes;
* **no hiding**: if ``e + 1`` included honest reports count at least ``c``, the agreed count is at
  least ``c``. A relay may leave reports out, but needs a quorum of ``n - e`` distinct sensors and
  every voting node's own report (a node refuses a set without it), so ``2e + 1`` honest sensors
  counting ``>= c`` give ``>= c`` whatever it drops. A relay that relays no report at all gets no
  vote from a node that reported: the round's IDS evidence is all or none of the honest nodes'.

On the wire (:class:`~ppbfl.protocol.messages.TrustQuery` ``ids_reports``,
:class:`~ppbfl.protocol.messages.IdsReportReply`) a report is :func:`report_to_bytes`: ``sensor``
(20 bytes) | uint64 round | uint32 m | uint32 k | k * (uint32 device | uint16 count) | 65-byte signature.

Malformed reports (a count outside ``[0, 2^16)``, a device outside ``0..m-1`` or twice, another round
or device count), reports altered or forged on the way (the signature is not the named sensor's),
and reports of unregistered accounts are refused with :class:`IdsReportError` naming the sensor and
the field. Nothing here is new cryptography: the signature is :meth:`~ppbfl.chain.attest.ChainKey.attest`
and :func:`~ppbfl.chain.attest.recover_signer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Integral
from typing import TypeGuard

from eth_hash.auto import keccak
from eth_utils import to_canonical_address, to_checksum_address

from ppbfl.chain.attest import KIND_IDS_FLAGS, ChainKey, recover_signer
from ppbfl.chain.votes import ChainContext
from ppbfl.errors import ConfigError
from ppbfl.trust.catchup import TrustSigners
from ppbfl.trust.reputation import Evidence

__all__ = [
    "COUNT_MAX", "IdsReport", "IdsReportError", "IdsSensors", "combine_counts", "lying_sensors", "report_from_bytes", "report_to_bytes", "sign_report",
    "with_ids_flags",
]

COUNT_MAX = (1 << 16) - 1
"""Largest count a report (and a trust record's ``ids_flags`` field) holds."""

_DOMAIN = b"ppbfl/ids-flags/v1"
_HEADER = 20 + 8 + 4 + 4
_PAIR = 4 + 2
_SIGNATURE = 65


class IdsReportError(ConfigError):
    """An IDS report refused: ``sensor`` (the account it names), ``field`` (``round``, ``devices``,
    ``device``, ``count``, ``sensor``, ``signature``) and why. Key ``ids_reports.<field>``."""

    def __init__(self, sensor: str, field: str, message: str) -> None:
        self.sensor, self.field = sensor, field
        super().__init__(f"ids_reports.{field}", f"report of {sensor}: {message}")


@dataclass(frozen=True)
class IdsReport:
    """Edge node ``sensor``'s (0x address of its registered chain account) IDS counts of ``round``
    for the ``devices`` registered devices: ``flags`` = ``(device, count)`` pairs, devices
    ascending, and its 65-byte kind-5 ``signature`` of :attr:`digest`."""

    sensor: str
    round: int
    devices: int
    flags: tuple[tuple[int, int], ...]
    signature: bytes

    @property
    def digest(self) -> bytes:
        """The 32-byte digest the sensor signs (module docstring); needs well-formed fields (:meth:`IdsSensors.check`)."""
        pairs = b"".join(d.to_bytes(4, "big") + c.to_bytes(2, "big") for d, c in self.flags)
        return keccak(_DOMAIN + self.devices.to_bytes(4, "big") + len(self.flags).to_bytes(4, "big") + pairs)

    def counts(self) -> dict[int, int]:
        """Device -> count (devices without one are 0)."""
        return dict(self.flags)


def _int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _integral(value: object) -> object:
    """``value`` as a Python int when it is an integer of another type (numpy's), else unchanged."""
    return int(value) if isinstance(value, Integral) and not isinstance(value, bool) else value


def _check_fields(report: IdsReport, round: int, devices: int) -> None:
    """Raise :class:`IdsReportError` on the first malformed field of ``report`` for ``round`` and ``devices``."""
    who = str(report.sensor)
    if not _int(report.round) or report.round != round:
        raise IdsReportError(who, "round", f"round {report.round!r}, expected {round}")
    if not _int(report.devices) or report.devices != devices:
        raise IdsReportError(who, "devices", f"covers {report.devices!r} devices, {devices} are registered")
    if not isinstance(report.flags, tuple):
        raise IdsReportError(who, "device", f"flags {type(report.flags).__name__}: not a tuple of (device, count) pairs")
    previous = -1
    for pair in report.flags:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise IdsReportError(who, "device", f"{pair!r} is not a (device, count) pair")
        device, count = pair
        if not _int(device) or not previous < device < devices:
            raise IdsReportError(who, "device", f"device {device!r}: not a registered device in 0..{devices - 1} after {previous}")
        if not _int(count) or not 0 <= count <= COUNT_MAX:
            raise IdsReportError(who, "count", f"device {device}: {count!r} is not a count in [0, {COUNT_MAX}]")
        previous = device
    if not isinstance(report.signature, (bytes, bytearray)):
        raise IdsReportError(who, "signature", "is not bytes")


def sign_report(key: ChainKey, context: ChainContext, round: int, devices: int, flags: Mapping[int, int]) -> IdsReport:
    """``key``'s report of ``flags`` (device -> flagged windows, as
    :func:`ppbfl.ids.reputation.ids_flags` returns) for ``round`` of the ``devices`` registered
    devices in ``context``; zero counts are left out.

    Raises:
        IdsReportError: a device outside ``0..devices-1`` or a count outside ``[0, 2^16)`` (naming the field).
    """
    pairs: list[tuple[int, int]] = []
    for raw_device, raw_count in flags.items():
        device, count = _integral(raw_device), _integral(raw_count)
        if not _int(device):
            raise IdsReportError(key.address, "device", f"{device!r} is not a device index")
        if not _int(count):
            raise IdsReportError(key.address, "count", f"device {device}: {count!r} is not a count")
        if count:
            pairs.append((device, count))
    unsigned = IdsReport(key.address, round, devices, tuple(sorted(pairs)), b"")
    _check_fields(unsigned, round, devices)
    return replace(unsigned, signature=key.attest(KIND_IDS_FLAGS, context.contract, context.chain_id, round, unsigned.digest))


def report_to_bytes(report: IdsReport) -> bytes:
    """The report's wire bytes (module docstring); its fields must be well-formed (as :func:`sign_report` makes them)."""
    pairs = b"".join(d.to_bytes(4, "big") + c.to_bytes(2, "big") for d, c in report.flags)
    head = to_canonical_address(report.sensor) + report.round.to_bytes(8, "big") + report.devices.to_bytes(4, "big")
    return head + len(report.flags).to_bytes(4, "big") + pairs + bytes(report.signature)


def report_from_bytes(data: bytes) -> IdsReport:
    """The report in ``data`` (:func:`report_to_bytes`); its fields are checked by :meth:`IdsSensors.check`.

    Raises:
        ConfigError: key ``ids_reports``: the length is not the one its pair count gives.
    """
    k = int.from_bytes(data[_HEADER - 4:_HEADER], "big") if len(data) >= _HEADER else -1
    if k < 0 or len(data) != _HEADER + _PAIR * k + _SIGNATURE:
        raise ConfigError("ids_reports", f"an encoded report of {len(data)} bytes: not {_HEADER} + 6 k + {_SIGNATURE} for its k pairs")
    body = data[_HEADER:_HEADER + _PAIR * k]
    flags = tuple((int.from_bytes(body[i:i + 4], "big"), int.from_bytes(body[i + 4:i + 6], "big")) for i in range(0, len(body), _PAIR))
    return IdsReport(
        to_checksum_address(data[:20]), int.from_bytes(data[20:28], "big"), int.from_bytes(data[28:32], "big"), flags, data[-_SIGNATURE:],
    )


def combine_counts(counts: Sequence[Mapping[int, int]], liars: int) -> dict[int, int]:
    """Per device, the ``(liars + 1)``-th largest of its counts in ``counts`` (one mapping per
    report; absent = 0); devices whose combined count is 0 are left out. With at most ``liars``
    lying reports it is at most the largest honest count and at least the ``(liars + 1)``-th
    largest honest one (module docstring)."""
    combined = {}
    for device in sorted({d for c in counts for d in c}):
        ranked = sorted((c.get(device, 0) for c in counts), reverse=True)
        value = ranked[liars] if liars < len(ranked) else 0
        if value:
            combined[device] = value
    return combined


def lying_sensors(n: int, t: int) -> int:
    """``e = floor((n - t) / 2)``: the lying edge nodes (sensors) the combination rule withstands
    among ``n`` registered ones at threshold ``t`` (DESIGN §2); a set needs ``n - e`` reports."""
    return (n - t) // 2


@dataclass(frozen=True)
class IdsSensors:
    """Who may report and how reports combine: the registered edge ``accounts`` (lower-case 0x
    addresses), ``liars`` = e (the rule's robustness) and ``quorum`` (distinct sensors a non-empty
    set needs)."""

    accounts: frozenset[str]
    liars: int
    quorum: int

    @classmethod
    def of(cls, signers: TrustSigners) -> IdsSensors:
        """From the registered edge accounts and t a node already checks trust rounds against:
        ``e = floor((n - t) / 2)``, quorum ``n - e`` (at least ``t`` honest reports with e liars)."""
        n = len(signers.accounts)
        liars = lying_sensors(n, signers.threshold)
        return cls(signers.accounts, liars, n - liars)

    def check(self, report: IdsReport, context: ChainContext, round: int, devices: int) -> None:
        """Whether ``report`` is a well-formed report of ``round`` for ``devices`` devices, by a
        registered account, signed by it for ``context``.

        Raises:
            IdsReportError: naming the sensor and the field (``round``, ``devices``, ``device``,
                ``count``; ``sensor``: not a registered edge account; ``signature``: not the named
                sensor's -- the report was altered or forged on the way).
        """
        if not isinstance(report, IdsReport):
            raise IdsReportError("?", "sensor", f"{type(report).__name__} is not an IdsReport")
        _check_fields(report, round, devices)
        if not isinstance(report.sensor, str) or report.sensor.lower() not in self.accounts:
            raise IdsReportError(str(report.sensor), "sensor", "not a registered edge account")
        signer = recover_signer(bytes(report.signature), KIND_IDS_FLAGS, context.contract, context.chain_id, round, report.digest)
        if signer is None or signer.lower() != report.sensor.lower():
            raise IdsReportError(report.sensor, "signature", f"round {round}: not signed by {report.sensor} (altered or forged on the way)")

    def combine(
        self, reports: Sequence[IdsReport], context: ChainContext, round: int, devices: int, *, own: IdsReport | None = None,
    ) -> dict[int, int]:
        """The agreed flags of ``round`` (device -> count, zeros left out) from ``reports``, each
        checked (:meth:`check`); no reports: no flags. ``own``: the report this node signed for
        the round, which must be among them.

        Raises:
            IdsReportError: a report refused (:meth:`check`) or a sensor twice (field ``sensor``);
            ConfigError: key ``ids_reports``: fewer than :attr:`quorum` distinct sensors, or ``own`` left out.
        """
        seen: set[str] = set()
        for report in reports:
            self.check(report, context, round, devices)
            if report.sensor.lower() in seen:
                raise IdsReportError(report.sensor, "sensor", f"round {round}: two reports of one sensor")
            seen.add(report.sensor.lower())
        if own is not None and own not in reports:
            raise ConfigError("ids_reports", f"round {round}: this node's own report ({to_checksum_address(own.sensor)}) is left out")
        if reports and len(seen) < self.quorum:
            raise ConfigError("ids_reports", f"round {round}: reports of {len(seen)} distinct edge nodes, {self.quorum} required")
        return combine_counts([r.counts() for r in reports], self.liars)


def with_ids_flags(evidence: Mapping[int, Evidence], flags: Mapping[int, int]) -> dict[int, Evidence]:
    """``evidence`` with each device's agreed IDS ``flags`` (device -> count; devices of ``flags``
    must be in ``evidence``).

    Raises:
        ConfigError: key ``ids_reports``: a flagged device has no evidence (not registered).
    """
    unknown = sorted(set(flags) - set(evidence))
    if unknown:
        raise ConfigError("ids_reports", f"flagged devices {unknown[:8]} are not registered")
    return {i: replace(e, ids_flags=flags[i]) if i in flags else e for i, e in evidence.items()}
