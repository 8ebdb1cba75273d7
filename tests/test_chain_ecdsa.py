"""The chain's ECDSA runs on libsecp256k1: eth-keys picks its coincurve backend (a dependency).

Without it eth-keys falls back to pure-Python ECDSA, ~60x slower per sign + recover, which every
transaction on the embedded py-evm chain pays (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

from eth_keys import KeyAPI
from eth_keys.backends import (
    CoinCurveECCBackend,
    NativeECCBackend,
    get_default_backend_class,
)


def test_eth_keys_default_backend_is_coincurve():
    assert get_default_backend_class() == "eth_keys.backends.CoinCurveECCBackend"


def test_coincurve_and_pure_python_backends_agree_on_sign_and_recover():
    message_hash = bytes(range(32))
    fast, slow = KeyAPI(CoinCurveECCBackend()), KeyAPI(NativeECCBackend())
    key = fast.PrivateKey(bytes([7]) * 32)
    signature = fast.ecdsa_sign(message_hash, key)
    assert signature == slow.ecdsa_sign(message_hash, slow.PrivateKey(bytes([7]) * 32))  # RFC 6979: deterministic
    assert slow.ecdsa_recover(message_hash, signature) == key.public_key == fast.ecdsa_recover(message_hash, signature)
