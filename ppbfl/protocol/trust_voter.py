"""An edge node's trust vote through the coordinator's transport (the coordinator only relays).

:class:`RemoteTrustVoter` is what a :class:`~ppbfl.trust.keeper.TrustKeeper` asks in place of an
in-process :class:`~ppbfl.protocol.edge_node.EdgeNode` when the node runs elsewhere (``ppbfl
edge``, :class:`~ppbfl.protocol.deployment.GrpcDeployment`): it sends :class:`TrustQuery`, checks
the :class:`TrustVoteReply` against the round's device count and the node's registered chain
account, and returns the vote and signature as ``EdgeNode.trust_vote`` does. A reply altered on
the way (a relay, a proxy) fails the signature check here, and would fail ``commitTrust`` anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from eth_utils import to_canonical_address

from ppbfl.chain.errors import ChainValueError
from ppbfl.chain.votes import ChainContext, TrustVote
from ppbfl.errors import ConfigError
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import MessageError, PeerAuthError
from ppbfl.protocol.messages import (
    LANES,
    Ack,
    IdsReportQuery,
    IdsReportReply,
    TrustBehind,
    TrustCatchUp,
    TrustQuery,
    TrustVoteReply,
)
from ppbfl.protocol.transport import Transport
from ppbfl.trust.catchup import records_to_rows
from ppbfl.trust.ids_reports import IdsReport, IdsReportError, IdsSensors, report_from_bytes, report_to_bytes
from ppbfl.trust.record import TrustRecord

MissedRound = Callable[[int], "tuple[Sequence[TrustRecord], Sequence[bytes]] | None"]
"""Round -> its anchored records and the kind-4 signatures ``commitTrust`` took (None: not anchored)."""

__all__ = ["RemoteTrustVoter", "remote_voters"]


class RemoteTrustVoter:
    """Edge node ``index`` (party ``edge-<index>``), whose registered chain account is ``account``,
    asked over ``transport`` for rounds of ``devices`` devices; each call waits ``timeout`` s."""

    def __init__(self, transport: Transport, index: int, account: str, devices: int, *, timeout: float = 30.0) -> None:
        self.transport, self.party, self.account = transport, edge_party(index), account
        self.devices, self.timeout = devices, timeout

    def trust_vote(
        self, round: int, context: ChainContext, commitments: Mapping[int, bytes], refused: Collection[int] = (), *,
        previous: int = 0, missed: MissedRound | None = None, ids_reports: Sequence[IdsReport] = (),
    ) -> tuple[TrustVote, bytes]:
        """The node's trust update of ``round`` (``commitments``: device -> its commitment on chain;
        ``refused``: the devices whose PoW stamp the chain refused in the round) and its kind-4
        signature for ``context``, checked. ``previous``: the latest round before
        ``round`` whose trust the chain anchored; a node behind it is sent the rounds ``missed``
        gives (see the module docstring) and asked again. ``ids_reports``: the edge nodes' signed
        IDS reports of the round, relayed in the query (the node checks and combines them).

        Raises:
            PeerUnavailableError, RemoteError: the node did not answer or refused (e.g. it took no
                part in the round, or refused a relayed round); MessageError: the reply is malformed,
                names more storage slots than ``devices`` devices fill, or says the node is behind
                when it is not / still behind after the catch-up (field ``last``); PeerAuthError:
                the signature is not the node's registered account's over these root, slots and
                words for ``round``.
        """
        devices = sorted(commitments)
        query = TrustQuery(
            to_canonical_address(context.contract), context.chain_id, devices, [commitments[i] for i in devices], previous, sorted(refused),
            [report_to_bytes(x) for x in ids_reports],
        )
        reply = self.transport.call(self.party, query, round=round, timeout=self.timeout).message
        if isinstance(reply, TrustBehind) and missed is not None and reply.last < previous:
            self.relay_rounds(context, range(reply.last + 1, previous + 1), missed)
            reply = self.transport.call(self.party, query, round=round, timeout=self.timeout).message
        if isinstance(reply, TrustBehind):
            raise MessageError(self.party, "last", f"round {round}: the node's latest trust round is {reply.last}, anchored: {previous}")
        if not isinstance(reply, TrustVoteReply):
            raise MessageError(self.party, "kind", f"{type(reply).__name__} in reply to a trust query, expected TrustVoteReply")
        most = -(-self.devices // LANES)
        if len(reply.slots) != len(reply.words) or len(reply.slots) > most or any(s >= most for s in reply.slots):
            raise MessageError(self.party, "slots", f"{len(reply.slots)} slots for {len(reply.words)} words: expected equal, slots < {most} ({self.devices} devices)")
        try:
            vote = TrustVote(reply.root, tuple(reply.slots), tuple(int.from_bytes(w, "big") for w in reply.words), tuple(query.refused))
            signed = vote.signed_by(self.account, reply.signature, context, round)
        except ChainValueError as error:
            raise MessageError(self.party, "signature", str(error)) from None
        if not signed:
            raise PeerAuthError(self.party, f"round {round}: the trust vote's signature is not by its registered account {self.account}")
        return vote, reply.signature

    def ids_report(self, round: int, context: ChainContext) -> IdsReport:
        """The node's own signed IDS report of ``round`` for ``context`` (its detector's counts:
        :attr:`~ppbfl.protocol.edge_node.EdgeNode.ids_source`), checked: by the node's registered
        account, well-formed for this voter's ``devices``.

        Raises:
            PeerUnavailableError, RemoteError: the node did not answer or refused (no IDS source,
                another report of the round signed already); MessageError: the reply is not an
                :class:`IdsReportReply` or the report is malformed (field ``report.<field>``);
                PeerAuthError: the report is not signed by, or not of, the node's registered account.
        """
        reply = self.transport.call(self.party, IdsReportQuery(to_canonical_address(context.contract), context.chain_id), round=round,
                                    timeout=self.timeout).message
        if not isinstance(reply, IdsReportReply):
            raise MessageError(self.party, "kind", f"{type(reply).__name__} in reply to an IDS report query, expected IdsReportReply")
        try:
            report = report_from_bytes(reply.report)
            IdsSensors(frozenset({self.account.lower()}), 0, 1).check(report, context, round, self.devices)
        except IdsReportError as error:
            if error.field in ("sensor", "signature"):
                raise PeerAuthError(self.party, f"round {round}: the IDS report is not signed by its registered account {self.account}") from None
            raise MessageError(self.party, f"report.{error.field}", str(error)) from None
        except ConfigError as error:
            raise MessageError(self.party, "report", str(error)) from None
        return report

    def relay_rounds(self, context: ChainContext, rounds: Sequence[int], missed: MissedRound) -> None:
        """Relay every anchored round of ``rounds`` to the node as :class:`TrustCatchUp` (rounds
        ``missed`` has none of are skipped); the node adopts each, or replaces a stored round that
        differs from it.

        Raises:
            PeerUnavailableError, RemoteError: the node did not answer or refused a round (e.g.
                ``ConfigError`` naming ``records``: it does not continue the node's own states);
                MessageError: the reply is not an :class:`Ack`.
        """
        for r in rounds:
            got = missed(r)
            if got is None:
                continue
            records, signatures = got
            message = TrustCatchUp(to_canonical_address(context.contract), context.chain_id, records_to_rows(records), list(signatures))
            ack = self.transport.call(self.party, message, round=r, timeout=self.timeout).message
            if not isinstance(ack, Ack):
                raise MessageError(self.party, "kind", f"{type(ack).__name__} in reply to a trust catch-up, expected Ack")


def remote_voters(transport: Transport, edge_accounts: Mapping[int, str], devices: int, *, timeout: float = 30.0) -> list[RemoteTrustVoter]:
    """One :class:`RemoteTrustVoter` per edge node ``j -> account`` of ``edge_accounts`` (the
    ledger's registered accounts), all through ``transport`` (the coordinator's)."""
    return [RemoteTrustVoter(transport, j, account, devices, timeout=timeout) for j, account in sorted(edge_accounts.items())]
