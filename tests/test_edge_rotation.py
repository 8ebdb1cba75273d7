"""Edge certificate and account rotation (``rotateEdgeNode``) on the embedded chain.

Attacks: an edge node's old (e.g. compromised) certificate and chain key used after the rotation
(refused by the chain registry; its signature makes a vote revert ``UnknownSigner``), the old
certificate registered again, a rotation while a round is in flight (``WrongPhase``), a non-admin
rotation (``NotAdmin``), a rotation onto another party's account or an already registered
certificate.
"""

from __future__ import annotations

import numpy as np
import pytest
from eth_hash.auto import keccak

from ppbfl.chain import Chain, ChainRevertError, ChainValueError
from ppbfl.chain.attest import KIND_SCALARS, ChainKey
from ppbfl.chain.rounds import ROLE_DEVICE, ROLE_EDGE, Phase
from ppbfl.chain.scenario import setup_consortium
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.registry import Identity

T, N, DEVICES, BLOCKS = 2, 3, 2, 3


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def consortium():
    """t = 2, n = 3 edge nodes (their parties registered with fingerprint keccak("tls-i")), 2 devices (PoW 0)."""
    with Chain.embedded(accounts=10) as chain:
        c = setup_consortium(chain, T, N, DEVICES, pow_bits=0, commit_blocks=BLOCKS, verify_blocks=6)
        c.rounds.register_parties([(keccak(f"tls-{i}".encode()), ROLE_EDGE, i) for i in range(1, N + 1)])
        yield c


def _commit_all(c, round_: int) -> None:
    c.rounds.open_round(round_, bytes(32))
    for device in c.devices:
        c.rounds.commit_shares(device, round_, keccak(device.encode()), 0)
    c.rounds.close_commitments(round_)


def _abort(c, round_: int) -> None:
    c.chain.mine(c.rounds.round_state(round_).deadline - c.chain.block_number + 1)
    c.rounds.abort_round(round_)


def test_after_rotation_the_old_certificate_and_account_no_longer_count(consortium):
    c = consortium
    r, old_key = c.rounds, c.edge_keys[1]
    old_fp, new_fp, new_key = keccak(b"tls-1"), keccak(b"tls-1 rotated"), ChainKey.generate()
    clock = Clock()
    registry = ChainRegistry(r, max_age_s=1.0, clock=clock)
    assert registry.identify(old_fp) == Identity("edge-1", "edge", 1)
    assert registry.fingerprint_of("edge-1") == old_fp

    _commit_all(c, 1)  # a round in flight: Committed, then the verify deadline
    with pytest.raises(ChainRevertError) as busy:
        r.rotate_edge_node(1, new_key.address, new_fp)
    assert busy.value.error == "WrongPhase" and busy.value.args_by_name["phase"] == Phase.COMMITTED
    _abort(c, 1)

    block = c.chain.block_number
    gas = r.rotate_edge_node(1, new_key.address, new_fp)
    assert 0 < gas < 200_000
    rotated = r.contract.events.EdgeNodeRotated().get_logs(from_block=block + 1)
    assert [dict(log["args"]) for log in rotated] == [{
        "index": 1, "oldAccount": old_key.address, "account": new_key.address, "oldFingerprint": old_fp, "tlsFingerprint": new_fp,
    }]
    revoked = r.contract.events.PartyRevoked().get_logs(from_block=block + 1)
    assert [bytes(log["args"]["fingerprint"]) for log in revoked] == [old_fp]
    assert r.edge_node(1) == (new_key.address, new_fp)
    assert (r.edge_index_of(old_key.address), r.edge_index_of(new_key.address)) == (0, 1)
    assert r.party(old_fp) == (ROLE_EDGE, 1, False) and r.party(new_fp) == (ROLE_EDGE, 1, True)

    clock.now += 1.0  # the registry's bound on a cached answer
    assert registry.identify(old_fp) is None
    assert registry.identify(new_fp) == Identity("edge-1", "edge", 1)
    assert registry.fingerprint_of("edge-1") == new_fp
    for role, index, error in ((ROLE_EDGE, 1, "BadParty"), (ROLE_DEVICE, 0, "PartyExists")):  # the old certificate cannot come back
        with pytest.raises(ChainRevertError) as back:
            r.register_parties([(old_fp, role, index)])
        assert back.value.error == error

    _commit_all(c, 2)  # round 2: the old key's vote is refused, the new key's counts for index 1
    values = np.array([[3, 4], [5, 6]], dtype=np.uint64)
    digest = keccak(r.pack_scalars([0, 1], values))
    with pytest.raises(ChainRevertError) as unknown:
        r.post_scalars(2, [0, 1], values, [r.attest(k, KIND_SCALARS, 2, digest) for k in (old_key, c.edge_keys[2])])
    assert unknown.value.error == "UnknownSigner" and unknown.value.args_by_name["signer"].lower() == old_key.address.lower()
    assert r.round_state(2).scalar_voters == ()
    assert r.post_scalars(2, [0, 1], values, [r.attest(k, KIND_SCALARS, 2, digest) for k in (new_key, c.edge_keys[2])])
    assert r.round_state(2).scalar_voters == (1, 2) and r.round_state(2).phase == Phase.VERIFIED


def test_rotation_is_admin_only_and_checked(consortium):
    c = consortium
    r, chain = c.rounds, c.chain
    before = r.edge_node(1)
    fresh = ChainKey.generate().address
    outsider = chain.new_account()
    device_fp = keccak(b"device-0")
    r.register_parties([(device_fp, ROLE_DEVICE, 0)])
    refused = [
        (dict(index=1, account=fresh, tls_fingerprint=keccak(b"x"), sender=outsider), "NotAdmin"),
        (dict(index=N + 1, account=fresh, tls_fingerprint=keccak(b"x")), "BadEdgeIndex"),  # no such edge node
        (dict(index=1, account=c.edge_keys[2].address, tls_fingerprint=keccak(b"x")), "AddressInUse"),  # another edge node's
        (dict(index=1, account=c.devices[0], tls_fingerprint=keccak(b"x")), "AddressInUse"),  # a device's
        (dict(index=1, account="0x" + "00" * 20, tls_fingerprint=keccak(b"x")), "AddressInUse"),
        (dict(index=1, account=fresh, tls_fingerprint=bytes(32)), "BadParty"),
        (dict(index=1, account=fresh, tls_fingerprint=device_fp), "PartyExists"),  # another party's certificate
        (dict(index=1, account=fresh, tls_fingerprint=keccak(b"tls-1")), "PartyExists"),  # its own current one
        (dict(index=1, account=fresh, tls_fingerprint=keccak(b"tls-2")), "PartyExists"),  # edge 2's
    ]
    for kwargs, error in refused:
        with pytest.raises(ChainRevertError) as caught:
            r.rotate_edge_node(**kwargs)
        assert caught.value.error == error, kwargs
    with pytest.raises(ChainValueError, match="index"):
        r.rotate_edge_node(0, fresh, keccak(b"x"))
    assert r.edge_node(1) == before and r.party(keccak(b"tls-1")) == (ROLE_EDGE, 1, True)

    # certificate only (same account), then a second rotation: the first replacement is revoked too
    account = c.edge_keys[1].address
    r.rotate_edge_node(1, account, keccak(b"tls-1 b"))
    r.rotate_edge_node(1, fresh, keccak(b"tls-1 c"))
    assert r.edge_node(1) == (fresh, keccak(b"tls-1 c")) and r.edge_index_of(account) == 0
    assert [r.party(keccak(x))[2] for x in (b"tls-1", b"tls-1 b", b"tls-1 c")] == [False, False, True]
    with pytest.raises(ChainRevertError) as caught:  # a revoked replacement cannot be rotated back in
        r.rotate_edge_node(1, account, keccak(b"tls-1 b"))
    assert caught.value.error == "PartyExists"
    _commit_all(c, 1)  # the consortium still runs rounds with n edge nodes
    assert r.round_state(1).phase == Phase.COMMITTED


def test_a_certificate_never_registered_as_a_party_is_retired_by_the_rotation():
    """An edge node registered (registerEdgeNode) whose certificate never went through
    registerParties: after a rotation that certificate cannot be registered for anyone."""
    with Chain.embedded(accounts=6) as chain:
        c = setup_consortium(chain, T, N, 1, pow_bits=0)
        c.rounds.rotate_edge_node(2, ChainKey.generate().address, keccak(b"tls-2 new"))
        assert c.rounds.party(keccak(b"tls-2")) == (ROLE_EDGE, 2, False)
        for role, index in ((ROLE_EDGE, 2), (ROLE_DEVICE, 0)):
            with pytest.raises(ChainRevertError) as caught:
                c.rounds.register_parties([(keccak(b"tls-2"), role, index)])
            assert caught.value.error in ("PartyExists", "BadParty")
        assert c.rounds.party_fingerprint(ROLE_EDGE, 2) == keccak(b"tls-2 new")


def test_a_running_ledger_checks_votes_against_the_rotated_account_from_the_next_round():
    """A coordinator's ledger that registered the edge nodes keeps running across a rotation: it
    re-reads the accounts when it opens the next round, which is what it checks each node's
    signatures against before relaying them (``ChainLedger.record_round``)."""
    with Chain.embedded(accounts=8) as chain:
        keys = {j: ChainKey.generate() for j in range(1, N + 1)}
        ledger = ChainLedger(chain, T, N, 1, edge_accounts={j: k.address for j, k in keys.items()}, device_accounts=[chain.new_account()])
        new_key = ChainKey.generate()
        ledger.contract.rotate_edge_node(1, new_key.address, keccak(b"edge-1 rotated"))
        assert ledger.edge_accounts[1] == keys[1].address
        ledger.open_round(1, bytes(32))
        assert ledger.edge_accounts == {1: new_key.address, 2: keys[2].address, 3: keys[3].address}
