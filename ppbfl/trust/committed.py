"""A round's ``commitTrust`` signatures read back from the chain (public calldata), checked.

A keeper (relay) that restarted since a round no longer holds in memory the ``t`` kind-4
signatures ``commitTrust`` took for it, yet an edge process that missed the round needs them to
adopt it (:meth:`~ppbfl.trust.witness.TrustWitness.adopt`). They are public: they are the
``signatures`` argument of the ``commitTrust`` transaction. :func:`committed_signatures` finds
that transaction through the round's ``TrustCommitted`` log (a bounded scan,
:meth:`~ppbfl.chain.rounds.RoundsContract.trust_commit_log`), fetches it
(``eth_getTransaction``), decodes its input against the contract's ABI and checks it before
handing it on: the call is ``commitTrust`` of this round to this contract, its root, slots and
words are the ones the log and the anchor hold, and the signatures recover to ``t`` distinct
registered edge accounts over exactly them (the node checks them again; the contract did when
it accepted the call). Works on any node that serves ``eth_getTransaction`` and ``eth_getLogs``
(py-evm, anvil, a JSON-RPC node).

Not readable this way: a ``commitTrust`` relayed through another contract (a multisig, a batch
caller), whose transaction's input is the outer call -- :class:`~ppbfl.errors.ConfigError`
(key ``signatures``), and the node that missed the round stays out, typed, as before.
"""

from __future__ import annotations

from eth_utils import to_checksum_address

from ppbfl.chain.attest import SIGNATURE_BYTES
from ppbfl.chain.rounds import RoundsContract
from ppbfl.chain.votes import ChainContext, TrustVote
from ppbfl.errors import ConfigError
from ppbfl.trust.catchup import TrustSigners

__all__ = ["committed_signatures"]


def committed_signatures(contract: RoundsContract, round: int, signers: TrustSigners) -> tuple[bytes, ...] | None:
    """The kind-4 signatures (65 bytes each, as submitted) of ``round``'s ``commitTrust`` on
    ``contract``, read from its transaction and checked against ``signers`` (the registered edge
    accounts and t); None when the round's trust was not committed (no ``TrustCommitted`` log).

    Raises:
        ConfigError: key ``signatures``: the transaction is not a direct ``commitTrust`` call of
            ``round`` to ``contract`` (e.g. relayed through another contract), its root / slots /
            words are not the log's and the anchor's, or fewer than t registered edge accounts
            signed them.
    """
    log = contract.trust_commit_log(round)
    if log is None:
        return None
    tx = contract.chain.w3.eth.get_transaction(log["transactionHash"])
    where = f"round {round}: transaction {bytes(log['transactionHash']).hex()}"
    if tx.get("to") is None or to_checksum_address(tx["to"]) != to_checksum_address(contract.address):
        raise ConfigError("signatures", f"{where} does not call the contract directly (relayed through {tx.get('to')}): its signatures are not in its input")
    try:
        function, args = contract.contract.decode_function_input(tx["input"])
    except ValueError as error:
        raise ConfigError("signatures", f"{where}: input is not a call of the contract ({error})") from None
    if function.fn_name != "commitTrust" or int(args["round"]) != round:
        raise ConfigError("signatures", f"{where} is {function.fn_name}, not commitTrust of round {round}")
    vote = TrustVote(bytes(args["root"]), tuple(int(x) for x in args["slots"]), tuple(int(x) for x in args["words"]))
    logged = (bytes(log["args"]["root"]), tuple(int(x) for x in log["args"]["slots"]), tuple(int(x) for x in log["args"]["words"]))
    if (vote.root, vote.slots, vote.words) != logged or vote.root != contract.round_state(round).anchor:
        raise ConfigError("signatures", f"{where}: root, slots and words are not the ones logged and anchored")
    packed = bytes(args["signatures"])
    if len(packed) % SIGNATURE_BYTES:
        raise ConfigError("signatures", f"{where}: {len(packed)} signature bytes, not a multiple of {SIGNATURE_BYTES}")
    signatures = tuple(packed[k:k + SIGNATURE_BYTES] for k in range(0, len(packed), SIGNATURE_BYTES))
    signers.check(vote, signatures, ChainContext(contract.address, contract.chain_id), round)
    return signatures
