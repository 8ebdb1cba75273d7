"""Edge nodes' chain keys and signed votes (ppbfl.chain.attest, ppbfl.chain.votes), their key
files (ppbfl creds, ppbfl edge) and the wire fields that carry them. No chain needed: the
contract's side is tested in test_chain_contract.py and test_adversarial_chain.py."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ppbfl.chain import ChainValueError
from ppbfl.chain.attest import KIND_AGGREGATE_SHARE, KIND_DECISIONS, KIND_SCALARS, ChainKey, attestation_hash, recover_signer
from ppbfl.chain.merkle import merkle_root
from ppbfl.chain.rounds import RoundsContract
from ppbfl.chain.votes import ChainContext, RoundVotes
from ppbfl.protocol.creds import load_chain_key, party_ids, read_chain_accounts, write_credentials
from ppbfl.protocol.errors import CredentialsError
from ppbfl.protocol.messages import AggregateShare
from ppbfl.protocol.wire import MessageError, decode
from ppbfl.protocol.wire import encode as wire_encode

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CONTRACT = "0x" + "5a" * 20
KEY = ChainKey(bytes(range(1, 33)))


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from([1, 2, 3, 4]), chain_id=st.integers(0, 2**64), round_=st.integers(1, 2**64 - 1), digest=st.binary(min_size=32, max_size=32))
def test_a_signature_is_eth_accounts_eip191_signature_of_the_abi_encoded_attestation(kind, chain_id, round_, digest):
    """Independent reference: eth_abi's encoding and eth_account's EIP-191 signing and recovery."""
    inner = keccak(encode(["uint8", "address", "uint256", "uint64", "bytes32"], [kind, CONTRACT, chain_id, round_, digest]))
    message = encode_defunct(primitive=inner)
    signature = KEY.attest(kind, CONTRACT, chain_id, round_, digest)
    assert signature == bytes(Account.sign_message(message, bytes(range(1, 33))).signature)
    assert Account.recover_message(message, signature=signature) == KEY.address == Account.from_key(bytes(range(1, 33))).address
    assert attestation_hash(kind, CONTRACT, chain_id, round_, digest) == keccak(b"\x19Ethereum Signed Message:\n32" + inner)
    assert int.from_bytes(signature[32:64], "big") <= ORDER // 2 and signature[64] in (27, 28)  # low s
    assert recover_signer(signature, kind, CONTRACT, chain_id, round_, digest) == KEY.address


def test_recovery_refuses_what_the_contract_refuses_and_binds_every_field():
    digest = keccak(b"scalars")
    genuine = KEY.attest(KIND_SCALARS, CONTRACT, 1, 7, digest)
    s = int.from_bytes(genuine[32:64], "big")
    twin = genuine[:32] + (ORDER - s).to_bytes(32, "big") + bytes([55 - genuine[64]])
    for bad in (twin, genuine[:64] + b"\x1d", bytes(64) + b"\x1b", genuine[:64], genuine + b"\x00"):
        assert recover_signer(bad, KIND_SCALARS, CONTRACT, 1, 7, digest) is None
    for other in ((KIND_DECISIONS, CONTRACT, 1, 7, digest), (KIND_SCALARS, "0x" + "5b" * 20, 1, 7, digest),
                  (KIND_SCALARS, CONTRACT, 2, 7, digest), (KIND_SCALARS, CONTRACT, 1, 8, digest),
                  (KIND_SCALARS, CONTRACT, 1, 7, keccak(b"other"))):
        assert recover_signer(genuine, *other) not in (None, KEY.address)
    for field, args in (("kind", (6, CONTRACT, 1, 7, digest)), ("round", (1, CONTRACT, 1, 0, digest)),
                        ("digest", (1, CONTRACT, 1, 7, b"short")), ("contract", (1, "nope", 1, 7, digest))):
        with pytest.raises(ChainValueError, match=field):
            attestation_hash(*args)
    with pytest.raises(ChainValueError, match="secret"):
        ChainKey(bytes(32))


def test_round_votes_pack_the_nodes_own_values_as_the_contract_stores_them():
    ids = [0, 3, 5]
    norm2, dot_ref = np.array([9, 8, 7], dtype=np.uint64), np.array([1, 2, 3], dtype=np.uint64)
    weights, share = np.array([5, 0, 6], dtype=np.uint64), np.arange(40, dtype=np.uint64)
    votes = RoundVotes.of(ids, norm2, dot_ref, [0, 3, 0], weights, share)
    assert votes.scalars == b"".join(i.to_bytes(4, "big") + int(a).to_bytes(8, "big") + int(b).to_bytes(8, "big") for i, a, b in zip(ids, norm2, dot_ref))
    assert votes.scalars == RoundsContract.pack_scalars(ids, np.stack([norm2, dot_ref], axis=1))
    assert votes.decisions == b"".join(i.to_bytes(4, "big") + bytes([r]) + int(w).to_bytes(8, "big") for i, r, w in zip(ids, [0, 3, 0], weights))
    assert votes.share_root == merkle_root(share)
    context = ChainContext(CONTRACT, 31337)
    signatures = votes.sign(KEY, context, 4)
    assert votes.signed_by(KEY.address, signatures, context, 4)
    assert recover_signer(signatures[2], KIND_AGGREGATE_SHARE, CONTRACT, 31337, 4, merkle_root(share)) == KEY.address
    assert not votes.signed_by(KEY.address, signatures, context, 5)  # another round
    assert not votes.signed_by(KEY.address, signatures[::-1], context, 4)  # kinds swapped
    assert not votes.signed_by(ChainKey.generate().address, signatures, context, 4)
    altered = RoundVotes.of(ids, norm2 + np.uint64(1), dot_ref, [0, 3, 0], weights, share)
    assert not altered.signed_by(KEY.address, signatures, context, 4)
    with pytest.raises(ChainValueError, match="scalars"):
        RoundVotes.of(ids, norm2[:2], dot_ref, [0, 3, 0], weights, share)


def test_key_files_are_owner_only_and_never_overwritten(tmp_path):
    path = tmp_path / "k.chain.key"
    KEY.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ChainKey.load(path).address == KEY.address
    with pytest.raises(FileExistsError):
        KEY.save(path)
    os.chmod(path, 0o640)
    with pytest.raises(ChainValueError, match="readable by others"):
        ChainKey.load(path)
    (tmp_path / "bad.chain.key").write_text("zz\n")
    os.chmod(tmp_path / "bad.chain.key", 0o600)
    with pytest.raises(CredentialsError, match="hex"):
        load_chain_key(tmp_path / "bad.chain.key")
    with pytest.raises(CredentialsError, match="missing chain key file"):
        load_chain_key(tmp_path / "edge-9.chain.key")


def test_creds_write_one_chain_key_per_edge_node_and_report_only_addresses(tmp_path, capsys):
    from ppbfl.cli import main
    from ppbfl.protocol.deployment import make_edge_node

    assert main(["creds", "--out", str(tmp_path / "cli"), "--edges", "1"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if "chain account" in line]
    address = load_chain_key(tmp_path / "cli" / "edge-1.chain.key").address
    assert printed == [f"# edge-1 chain account {address} (its key: edge-1.chain.key; register this address)"]
    assert make_edge_node(chain_key=str(tmp_path / "cli" / "edge-1.chain.key")).chain_address == address  # what `ppbfl edge` loads
    with pytest.raises(CredentialsError, match="missing chain key file"):
        make_edge_node(chain_key=str(tmp_path / "edge-1.chain.key"))

    issued = write_credentials(tmp_path, party_ids(edges=2, devices=1, dealer=True))
    assert sorted(issued.chain_accounts) == ["device-0", "edge-1", "edge-2"]  # the dealer signs no chain transaction
    for party, address in issued.chain_accounts.items():
        path = tmp_path / f"{party}.chain.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_chain_key(path).address == address
    assert not list(tmp_path.glob("dealer.chain.key"))
    assert len(set(issued.chain_accounts.values())) == 3
    assert read_chain_accounts(tmp_path) == issued.chain_accounts  # the public addresses, kept beside the manifest
    with pytest.raises(CredentialsError, match="already exist"):
        write_credentials(tmp_path, ["edge-1"], ca_dir=tmp_path)
    again = write_credentials(tmp_path, ["edge-1"], ca_dir=tmp_path, force=True)
    assert load_chain_key(tmp_path / "edge-1.chain.key").address == again.chain_accounts["edge-1"] != issued.chain_accounts["edge-1"]
    assert read_chain_accounts(tmp_path) == {**issued.chain_accounts, "edge-1": again.chain_accounts["edge-1"]}


@pytest.mark.parametrize("content, match", [
    (None, "missing"), ("[1]", "expected an object"), ('{"edge-1": "0xabc"}', "not a checksummed"), ("{", "not JSON"),
    ('{"edge 1": "0x5A586bd0E8bBCd76C0FC60e0F41d2908d9ec2a33"}', "party"),
])
def test_a_bad_chain_accounts_file_is_a_typed_error(tmp_path, content, match):
    if content is not None:
        (tmp_path / "chain-accounts.json").write_text(content)
    with pytest.raises(CredentialsError, match=match):
        read_chain_accounts(tmp_path)


def test_an_aggregate_share_carries_exactly_three_65_byte_signatures_on_the_wire():
    zeros = np.zeros(2, dtype=np.uint64)
    reply = AggregateShare(zeros, zeros, [0, 0], zeros, 1.0, np.zeros(4, dtype=np.uint64), chain_signatures=[b"\x01" * 65] * 3)
    back = decode(wire_encode(reply, sender="edge-1", round=1), context={"d": 4}).message
    assert list(back.chain_signatures) == [b"\x01" * 65] * 3
    for bad in ([b"\x01" * 64], [b"\x01" * 65] * 4):
        with pytest.raises(MessageError, match="chain_signatures"):
            wire_encode(AggregateShare(zeros, zeros, [0, 0], zeros, 1.0, np.zeros(4, dtype=np.uint64), chain_signatures=bad), sender="edge-1", round=1)
