"""On-chain aggregator: the ``PPBFLRounds`` contract driven from Python (DESIGN sections 6-7).

``Chain.embedded()`` (in-process py-evm) or ``Chain.anvil()`` (a real anvil node started here)
gives a connection with funded accounts and a gas report; ``chain.deploy(t, n)`` a
:class:`RoundsContract` with a typed method per contract call. :mod:`ppbfl.chain.merkle`
commits share vectors exactly as the contract verifies them; :mod:`ppbfl.chain.pow` solves the
light PoW stamps. See docs/chain.md.
"""

from ppbfl.chain.anvil import ANVIL_VERSION, AnvilProcess, find_anvil
from ppbfl.chain.driver import Chain, GasReport
from ppbfl.chain.errors import (
    AnvilStartError,
    AnvilUnavailableError,
    ArtifactError,
    ChainError,
    ChainRevertError,
    ChainTimeoutError,
    ChainValueError,
)
from ppbfl.chain.keccak import keccak256, keccak256_rows
from ppbfl.chain.merkle import (
    CHUNK,
    ChunkProof,
    VectorTree,
    leaf_proof,
    merkle_proof,
    merkle_root,
    merkle_tree,
    root_of_leaves,
    tree_depth,
    verify_chunk_proof,
    verify_leaf_proof,
)
from ppbfl.chain.pow import pow_stamp, pow_valid
from ppbfl.chain.rounds import (
    PARTY_AGGREGATOR,
    PARTY_UNATTRIBUTED,
    TRUST_ONE,
    AuditResult,
    Decision,
    Failure,
    Phase,
    RoundsContract,
    RoundState,
    deploy_rounds,
    load_artifact,
)

__all__ = [
    "Chain", "GasReport", "RoundsContract", "deploy_rounds", "load_artifact",
    "Phase", "Failure", "RoundState", "Decision", "AuditResult",
    "PARTY_AGGREGATOR", "PARTY_UNATTRIBUTED", "TRUST_ONE",
    "CHUNK", "ChunkProof", "VectorTree", "merkle_tree", "merkle_root", "merkle_proof", "verify_chunk_proof",
    "tree_depth", "root_of_leaves", "leaf_proof", "verify_leaf_proof",
    "keccak256", "keccak256_rows", "pow_stamp", "pow_valid",
    "AnvilProcess", "find_anvil", "ANVIL_VERSION",
    "ChainError", "ChainValueError", "ChainRevertError", "ChainTimeoutError",
    "AnvilUnavailableError", "AnvilStartError", "ArtifactError",
]
