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
    ChainDisagreementError,
    ChainError,
    ChainRevertError,
    ChainTimeoutError,
    ChainValueError,
    MissingAccountError,
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
from ppbfl.chain.pow import bind_commitment, pow_stamp, pow_valid
from ppbfl.chain.quorum_provider import QuorumProvider
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
    "ANVIL_VERSION",
    "CHUNK",
    "PARTY_AGGREGATOR",
    "PARTY_UNATTRIBUTED",
    "TRUST_ONE",
    "AnvilProcess",
    "AnvilStartError",
    "AnvilUnavailableError",
    "ArtifactError",
    "AuditResult",
    "Chain",
    "ChainDisagreementError",
    "ChainError",
    "ChainRevertError",
    "ChainTimeoutError",
    "ChainValueError",
    "MissingAccountError",
    "ChunkProof",
    "Decision",
    "Failure",
    "GasReport",
    "Phase",
    "QuorumProvider",
    "RoundState",
    "RoundsContract",
    "VectorTree",
    "bind_commitment",
    "deploy_rounds",
    "find_anvil",
    "keccak256",
    "keccak256_rows",
    "leaf_proof",
    "load_artifact",
    "merkle_proof",
    "merkle_root",
    "merkle_tree",
    "pow_stamp",
    "pow_valid",
    "root_of_leaves",
    "tree_depth",
    "verify_chunk_proof",
    "verify_leaf_proof",
]
