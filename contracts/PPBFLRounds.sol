// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title PPBFLRounds: round coordinator and audit trail of ppbfl (DESIGN section 6)
/// @notice One contract per consortium. The deployer is the admin (registers edge nodes and
/// devices); the aggregator (may be the admin) opens rounds and posts the aggregate. A round
/// moves Open -> Committed -> Verified -> Aggregated -> Closed, or to Failed (anyone aborts it once
/// the deadline of its phase passed, or the on-chain audit caught a mismatch). A round closes only
/// after a passed audit, before its audit deadline. Field: p = 2^61 - 1; share vectors are
/// committed as Merkle roots over chunks of 16 big-endian uint64 values
/// (leaf = keccak256(uint32 chunkIndex || 16 x uint64), node = keccak256(left || right),
/// padding leaves are zero). See docs/chain.md.
contract PPBFLRounds {
    uint256 internal constant P = 2305843009213693951; // 2^61 - 1
    uint256 internal constant CHUNK = 16;
    uint256 internal constant CHUNK_BYTES = 128;
    uint256 internal constant FRONTIER_LEVELS = 4; // audits send the top of each tree once
    uint256 internal constant DECISION_BYTES = 13; // uint32 deviceId, uint8 reason, uint64 weight
    uint256 internal constant TRUST_ONE = 32768; // trust is Q1.15: 1.0 = 2^15
    uint256 internal constant TRUST_LANES = 16; // uint16 scores per storage word
    uint8 public constant PARTY_AGGREGATOR = 255;
    uint8 public constant PARTY_UNATTRIBUTED = 254;
    uint8 internal constant KIND_SCALARS = 1; // attestation kinds (edge nodes' signed votes)
    uint8 internal constant KIND_DECISIONS = 2;
    uint8 internal constant KIND_AGGREGATE_SHARE = 3;
    uint8 internal constant KIND_TRUST = 4;
    uint8 public constant ROLE_EDGE = 1; // roles of registered TLS identities (parties)
    uint8 public constant ROLE_DEVICE = 2;
    uint8 public constant ROLE_COORDINATOR = 3;
    uint8 public constant ROLE_DEALER = 4;
    uint256 internal constant SIGNATURE_BYTES = 65; // r || s || v
    // secp256k1 order / 2: a signature with a higher s is the malleable twin of a valid one
    uint256 internal constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    enum Phase { None, Open, Committed, Verified, Aggregated, Closed, Failed }
    enum Failure { None, Timeout, AuditMismatch, Unaudited }

    struct Round {
        Phase phase;
        Failure failure;
        uint8 offender; // 1..n edge node, 255 aggregator, 254 unattributed, 0 none
        uint32 deviceCount; // devices registered when the round opened
        uint32 committed;
        uint64 deadline; // last block of the current phase
        uint64 closedAt; // block of closeCommitments
        // the PoW range when the round opened (packed into the slot commitShares reads anyway)
        uint8 powMinBits;
        uint8 powMaxBits;
        uint16 powFullTrust;
        uint64 aggregatedAt; // block of postAggregate
        uint32 length; // aggregate vector length d
        uint32 scalarVoters; // bitmaps over edge indices (bit i = edge node i)
        uint32 decisionVoters;
        uint32 aggregateShares;
        uint32 reportedLiars;
        bool decisionsAgreed;
        bool auditPassed;
        bytes32 modelHash;
        bytes32 challengeSeed;
        bytes32 scalarsHash;
        bytes32 decisionsHash;
        bytes32 aggregateRoot;
        bytes32 newModelHash;
        bytes32 auditSeed;
        bytes32 anchor;
        bytes32 verifyRequest; // hash of the round's one VerifyRequest (postVerifyRequest)
        uint32 refused; // devices whose PoW stamp was refused in the round (they answered: early close)
    }

    struct EdgeNode {
        address account;
        bytes32 tlsFingerprint;
    }

    error BadParameters();
    error BadParty(uint256 position, bytes32 fingerprint, uint8 role, uint32 index);
    error PartyExists(uint256 position, bytes32 fingerprint);
    error NotActiveParty(bytes32 fingerprint);
    error NotAdmin(address caller);
    error NotCoordinator(address caller);
    error SignaturesMissing(uint64 round);
    error BadSignature(uint256 position);
    error UnknownSigner(uint256 position, address signer);
    error TrustNotAgreed(uint64 round, uint256 signers);
    error NotDevice(address caller);
    error BadEdgeIndex(uint256 index);
    error EdgeNodeExists(uint256 index);
    error EdgeNodesMissing(uint256 registered, uint256 needed);
    error AddressInUse(address account);
    error BadPowBits(uint256 bits);
    error BadRound(uint64 round, uint64 expected);
    error WrongPhase(uint64 round, Phase phase);
    error DeadlinePassed(uint64 round, uint64 deadline);
    error DeadlineNotReached(uint64 round, uint64 deadline);
    error DeviceNotInRound(uint64 round, uint32 deviceId);
    error AlreadyCommitted(uint64 round, uint32 deviceId);
    error StalePow(uint64 round, uint32 deviceId, uint8 bits, uint256 required);
    error CommitmentOverwritten(uint64 round, uint32 deviceId, uint64 laterRound);
    error SeedNotReady(uint64 round, uint64 readyAt);
    error SeedExpired(uint64 round);
    error AlreadyPosted(uint64 round, uint8 edgeIndex);
    error BadLength(uint256 got, uint256 expected);
    error DecisionsMissing(uint64 round);
    error NotEnoughAggregateShares(uint64 round, uint256 got, uint256 needed);
    error BadAuditSet(uint64 round, uint256 count);
    error ShareNotCommitted(uint64 round, uint8 edgeIndex);
    error BadProof(uint64 round, uint256 coordinate, uint8 party);
    error AlreadyDone(uint64 round);
    error BadTrust(uint256 slot, uint256 lane);
    error BadSlot(uint256 slot);
    error ZeroRoot();
    error AuditNotPassed(uint64 round);
    error ReportedLiar(uint64 round, uint8 edgeIndex);

    event EdgeNodeRegistered(uint8 indexed index, address account, bytes32 tlsFingerprint);
    event DeviceRegistered(uint32 indexed id, address account, uint8 powBits);
    event PowBitsSet(uint32 indexed id, uint8 powBits);
    event RoundOpened(uint64 indexed round, bytes32 modelHash, uint32 deviceCount, uint64 deadline);
    event CommitmentsClosed(uint64 indexed round, uint32 committed, uint64 deadline);
    event ScalarsPosted(uint64 indexed round, uint32 voters, bytes32 hash); // voters: bitmap of the signers
    event ScalarsPublished(uint64 indexed round, bytes32 indexed hash, bytes data);
    event ScalarsAgreed(uint64 indexed round, bytes32 hash);
    event DecisionsPosted(uint64 indexed round, uint32 voters, bytes32 hash);
    event DecisionsPublished(uint64 indexed round, bytes32 indexed hash, bytes data);
    event DecisionsAgreed(uint64 indexed round, bytes32 hash);
    event AggregateShareCommitted(uint64 indexed round, uint8 indexed edgeIndex, bytes32 root);
    event AggregatePosted(uint64 indexed round, bytes32 root, bytes32 modelHash, uint32 length);
    event AuditPassed(uint64 indexed round, uint8[] edges);
    event AuditFailed(uint64 indexed round, uint256 coordinate, uint8 offender);
    event Anchored(uint64 indexed round, bytes32 root);
    event PowRangeSet(uint8 minBits, uint8 maxBits, uint16 fullTrust);
    event TrustCommitted(uint64 indexed round, bytes32 root, uint256[] slots, uint256[] words);
    event LiarReported(uint64 indexed round, uint8 indexed edgeIndex);
    event RoundClosed(uint64 indexed round);
    event RoundFailed(uint64 indexed round, Failure reason, uint8 offender);
    event PartyRegistered(bytes32 indexed fingerprint, uint8 role, uint32 index);
    event PartyRevoked(bytes32 indexed fingerprint, uint8 role, uint32 index);
    event SharesCommitted(uint64 indexed round, uint32 indexed deviceId, bytes32 bound);
    event PowRefused(uint64 indexed round, uint32 indexed deviceId, uint8 bits);

    address public immutable admin;
    address public immutable aggregator;
    uint8 public immutable t;
    uint8 public immutable n;
    uint8 public immutable auditK;
    uint32 public immutable commitBlocks;
    uint32 public immutable verifyBlocks;
    uint32 public immutable aggregateBlocks;
    uint32 public immutable auditBlocks;

    uint64 public latestRound;
    uint8 public edgeCount;
    /// PoW difficulty from trust (powMaxBits = 0: each device's registered powBits): a device of
    /// trust T (Q1.15) must meet powMaxBits - floor((powMaxBits - powMinBits) * min(T, F) / F) bits,
    /// F = powFullTrust (Q1.15, > 0): the trust from which a device gets the lightest stamp.
    uint8 public powMinBits;
    uint8 public powMaxBits;
    uint16 public powFullTrust;
    mapping(uint256 => EdgeNode) internal edgeNodes;
    mapping(address => uint8) public edgeIndexOf;
    /// (id + 1) | powBits << 32 | entryRound << 64 | refused << 128: entryRound is the latest round
    /// the device committed in (or had its stamp refused in, refused = 1; 0: none yet), whose
    /// bound commitment latestCommitment[id] holds
    mapping(address => uint256) internal deviceInfo;
    address[] internal deviceAddresses;
    mapping(uint64 => Round) internal rounds;
    /// device id -> bindCommitment of its commitment in round entryRound (deviceInfo): one slot per
    /// device, overwritten each round it commits; every commitment is in a SharesCommitted event.
    /// registerDevice writes NO_COMMITMENT (entry round 0: never read as a commitment) so that
    /// every commitment, the first included, overwrites a non-zero slot.
    mapping(uint256 => bytes32) internal latestCommitment;
    bytes32 internal constant NO_COMMITMENT = bytes32(uint256(1));
    /// round -> device id / 256 -> bitmap of the devices whose stamp was refused in that round
    mapping(uint64 => mapping(uint256 => uint256)) internal powRefusalWords;
    mapping(uint64 => mapping(uint256 => bytes32)) internal aggregateShareRoots;
    mapping(bytes32 => uint256) internal votes; // keccak(round, kind, hash) -> bitmap of voters
    mapping(uint256 => uint256) internal trustWords; // 16 x uint16 per word, device id / 16
    /// TLS identities: certificate fingerprint -> role | index << 8 | active << 40 (0: never registered)
    mapping(bytes32 => uint256) internal parties;
    /// role | index << 8 -> the fingerprint of that party's active certificate (zero: none)
    mapping(uint256 => bytes32) internal activeFingerprint;

    constructor(
        uint8 t_,
        uint8 n_,
        uint32 commitBlocks_,
        uint32 verifyBlocks_,
        uint32 aggregateBlocks_,
        uint32 auditBlocks_,
        uint8 auditK_,
        address aggregator_
    ) {
        if (t_ < 1 || t_ > n_ || n_ > 31 || auditK_ < 1 || aggregator_ == address(0)) revert BadParameters();
        if (commitBlocks_ < 1 || verifyBlocks_ < 1 || aggregateBlocks_ < 1 || auditBlocks_ < 1) revert BadParameters();
        admin = msg.sender;
        aggregator = aggregator_;
        t = t_;
        n = n_;
        auditK = auditK_;
        commitBlocks = commitBlocks_;
        verifyBlocks = verifyBlocks_;
        aggregateBlocks = aggregateBlocks_;
        auditBlocks = auditBlocks_;
    }

    // ------------------------------------------------------------------ access

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    modifier onlyCoordinator() {
        if (msg.sender != admin && msg.sender != aggregator) revert NotCoordinator(msg.sender);
        _;
    }

    /// @dev The EIP-191 hash an edge node signs to attest `digest` of `kind` in `round` of this
    /// contract on this chain: keccak256("\x19Ethereum Signed Message:\n32" || keccak256(abi.encode(
    /// uint8 kind, address this, uint256 chainid, uint64 round, bytes32 digest))).
    function _attestation(uint8 kind, uint64 round, bytes32 digest) internal view returns (bytes32) {
        bytes32 inner = keccak256(abi.encode(kind, address(this), block.chainid, round, digest));
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", inner));
    }

    /// @dev Edge index of the signer of signature `position` (65 bytes r || s || v) in
    /// `signatures` over `h`. Refuses v not in {27, 28}, s = 0 or above half the order (the
    /// malleable twin), unrecoverable signatures (BadSignature) and signers that are not
    /// registered edge nodes (UnknownSigner).
    function _signer(bytes32 h, bytes calldata signatures, uint256 position) internal view returns (uint8 edge) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            let at := add(signatures.offset, mul(position, 65))
            r := calldataload(at)
            s := calldataload(add(at, 32))
            v := byte(0, calldataload(add(at, 64)))
        }
        if ((v != 27 && v != 28) || s == 0 || uint256(s) > HALF_ORDER) revert BadSignature(position);
        address signer = ecrecover(h, v, r, s);
        if (signer == address(0)) revert BadSignature(position);
        edge = edgeIndexOf[signer];
        if (edge == 0) revert UnknownSigner(position, signer);
    }

    /// @dev Bitmap of the edge nodes whose signatures (concatenated, 65 bytes each) attest
    /// `digest` of `kind` in `round`; each at most once and none already in `voted`.
    function _signers(uint8 kind, uint64 round, bytes32 digest, bytes calldata signatures, uint32 voted)
        internal
        view
        returns (uint32 signers)
    {
        uint256 count = _signatureCount(round, signatures);
        bytes32 h = _attestation(kind, round, digest);
        for (uint256 i = 0; i < count; i++) {
            uint8 edge = _signer(h, signatures, i);
            uint32 bit = uint32(1) << edge;
            if ((voted | signers) & bit != 0) revert AlreadyPosted(round, edge);
            signers |= bit;
        }
    }

    function _signatureCount(uint64 round, bytes calldata signatures) internal pure returns (uint256) {
        if (signatures.length == 0) revert SignaturesMissing(round);
        if (signatures.length % SIGNATURE_BYTES != 0) revert BadLength(signatures.length, SIGNATURE_BYTES);
        return signatures.length / SIGNATURE_BYTES;
    }

    function _inPhase(uint64 round, Phase phase) internal view returns (Round storage r) {
        r = rounds[round];
        if (r.phase != phase) revert WrongPhase(round, r.phase);
    }

    function _beforeDeadline(uint64 round, Round storage r) internal view {
        if (block.number > r.deadline) revert DeadlinePassed(round, r.deadline);
    }

    // ------------------------------------------------------------------ registration

    /// @notice Register edge node `index` (1..n) with its account and TLS certificate fingerprint.
    function registerEdgeNode(uint8 index, address account, bytes32 tlsFingerprint) external onlyAdmin {
        if (index < 1 || index > n) revert BadEdgeIndex(index);
        if (edgeNodes[index].account != address(0)) revert EdgeNodeExists(index);
        if (account == address(0) || edgeIndexOf[account] != 0 || deviceInfo[account] != 0) revert AddressInUse(account);
        edgeNodes[index] = EdgeNode(account, tlsFingerprint);
        edgeIndexOf[account] = index;
        edgeCount += 1;
        emit EdgeNodeRegistered(index, account, tlsFingerprint);
    }

    /// @notice Register a device with its PoW difficulty and initial trust (Q1.15, <= 1.0);
    /// ids are 0, 1, 2, ... in registration order. Writing the trust here keeps the per-round
    /// trust updates on already-used storage words; writing the placeholder NO_COMMITMENT into the
    /// device's commitment slot moves the fresh-slot cost (22,100 gas) from its first commitment here.
    function registerDevice(address account, uint8 powBits, uint16 trust) external onlyAdmin returns (uint32 id) {
        if (powBits > 64) revert BadPowBits(powBits);
        if (trust > TRUST_ONE) revert BadTrust(deviceAddresses.length / TRUST_LANES, deviceAddresses.length % TRUST_LANES);
        if (account == address(0) || edgeIndexOf[account] != 0 || deviceInfo[account] != 0) revert AddressInUse(account);
        id = uint32(deviceAddresses.length);
        deviceAddresses.push(account);
        deviceInfo[account] = (uint256(id) + 1) | (uint256(powBits) << 32);
        trustWords[id / TRUST_LANES] |= uint256(trust) << (16 * (id % TRUST_LANES));
        latestCommitment[id] = NO_COMMITMENT;
        emit DeviceRegistered(id, account, powBits);
    }

    /// @notice Derive every device's PoW difficulty from its stored trust: powMaxBits at trust 0
    /// down to powMinBits at trust >= fullTrust (Q1.15), linear between (maxBits = 0 switches
    /// back to the registered powBits). Each round keeps the range set when it opened (a round
    /// already open is not changed: its devices may be stamping).
    function setPowRange(uint8 minBits, uint8 maxBits, uint16 fullTrust) external onlyAdmin {
        if (maxBits > 64) revert BadPowBits(maxBits);
        if (minBits > maxBits) revert BadPowBits(minBits);
        if (fullTrust == 0 || fullTrust > TRUST_ONE) revert BadTrust(0, fullTrust);
        powMinBits = minBits;
        powMaxBits = maxBits;
        powFullTrust = fullTrust;
        emit PowRangeSet(minBits, maxBits, fullTrust);
    }

    /// The difficulty of the device with `info` under the PoW range (minBits, maxBits, full).
    function _powBits(uint256 info, uint256 minBits, uint256 maxBits, uint256 full) internal view returns (uint256) {
        if (maxBits == 0) return (info >> 32) & 0xff;
        uint256 id = (info & 0xffffffff) - 1;
        uint256 trust = (trustWords[id / TRUST_LANES] >> (16 * (id % TRUST_LANES))) & 0xffff;
        if (trust > full) trust = full;
        return maxBits - ((maxBits - minBits) * trust) / full;
    }

    /// The difficulty a commitment of the device with `info` must meet now: under the open
    /// round's snapshot of the PoW range (the range set when it opened), else the current range.
    function _powBitsNow(uint256 info) internal view returns (uint256) {
        Round storage r = rounds[latestRound];
        if (latestRound != 0 && r.phase == Phase.Open) return _powBits(info, r.powMinBits, r.powMaxBits, r.powFullTrust);
        return _powBits(info, powMinBits, powMaxBits, powFullTrust);
    }

    /// @notice Change a registered device's PoW difficulty (set from its trust by the admin).
    function setPowBits(address account, uint8 powBits) external onlyAdmin {
        uint256 info = deviceInfo[account];
        if (info == 0) revert NotDevice(account);
        if (powBits > 64) revert BadPowBits(powBits);
        deviceInfo[account] = (info & ~uint256(0xff << 32)) | (uint256(powBits) << 32); // keeps the round entry
        emit PowBitsSet(uint32((info & 0xffffffff) - 1), powBits);
    }

    // ------------------------------------------------------------------ TLS identities

    /// @notice Register the TLS certificate fingerprints of parties that may call the servers:
    /// `roles[k]` (ROLE_EDGE with index 1..n and the fingerprint registerEdgeNode recorded for it,
    /// ROLE_DEVICE with the device id, ROLE_COORDINATOR / ROLE_DEALER with index 0). A fingerprint
    /// is registered once, ever (a revoked certificate cannot come back); a party has at most one
    /// active certificate (revoke the old one to rotate). One-time, admin only; no round reads it.
    function registerParties(bytes32[] calldata fingerprints, uint8[] calldata roles, uint32[] calldata indexes)
        external
        onlyAdmin
    {
        if (roles.length != fingerprints.length) revert BadLength(roles.length, fingerprints.length);
        if (indexes.length != fingerprints.length) revert BadLength(indexes.length, fingerprints.length);
        for (uint256 k = 0; k < fingerprints.length; ++k) {
            bytes32 fp = fingerprints[k];
            uint8 role = roles[k];
            uint32 index = indexes[k];
            bool ok = fp != bytes32(0);
            if (role == ROLE_EDGE) ok = ok && index >= 1 && index <= n && edgeNodes[index].tlsFingerprint == fp;
            else if (role == ROLE_COORDINATOR || role == ROLE_DEALER) ok = ok && index == 0;
            else ok = ok && role == ROLE_DEVICE;
            if (!ok) revert BadParty(k, fp, role, index);
            uint256 key = uint256(role) | (uint256(index) << 8);
            if (parties[fp] != 0 || activeFingerprint[key] != bytes32(0)) revert PartyExists(k, fp);
            parties[fp] = key | (1 << 40);
            activeFingerprint[key] = fp;
            emit PartyRegistered(fp, role, index);
        }
    }

    /// @notice Revoke the certificate with `fingerprint` for good: servers refuse it from then on.
    function revokeParty(bytes32 fingerprint) external onlyAdmin {
        uint256 info = parties[fingerprint];
        if (info >> 40 == 0) revert NotActiveParty(fingerprint);
        uint256 key = info & 0xffffffffff;
        parties[fingerprint] = key;
        delete activeFingerprint[key];
        emit PartyRevoked(fingerprint, uint8(key), uint32(key >> 8));
    }

    // ------------------------------------------------------------------ edge rotation

    event EdgeNodeRotated(uint8 indexed index, address oldAccount, address account, bytes32 oldFingerprint, bytes32 tlsFingerprint);

    /// @notice Replace edge node `index`'s chain account and TLS certificate (admin; the account may
    /// stay the same). The old account stops counting as a voter at once (its signatures recover
    /// to an unknown signer), the edge's active certificate is revoked (PartyRevoked) and the new
    /// one registered as (ROLE_EDGE, index) (PartyRegistered); a replaced certificate never
    /// registered as a party is retired too, so neither can come back. Only between rounds (no
    /// round opened, or the latest Closed or Failed: WrongPhase otherwise): a round in flight
    /// keeps the edge nodes its votes, aggregate shares and audit started with.
    function rotateEdgeNode(uint8 index, address account, bytes32 tlsFingerprint) external onlyAdmin {
        EdgeNode storage e = edgeNodes[index];
        address old = e.account;
        if (old == address(0)) revert BadEdgeIndex(index);
        if (latestRound != 0) {
            Phase phase = rounds[latestRound].phase;
            if (phase != Phase.Closed && phase != Phase.Failed) revert WrongPhase(latestRound, phase);
        }
        if (account != old && (account == address(0) || edgeIndexOf[account] != 0 || deviceInfo[account] != 0)) {
            revert AddressInUse(account);
        }
        bytes32 oldFp = e.tlsFingerprint;
        if (tlsFingerprint == bytes32(0)) revert BadParty(0, tlsFingerprint, ROLE_EDGE, index);
        if (parties[tlsFingerprint] != 0 || tlsFingerprint == oldFp) revert PartyExists(0, tlsFingerprint);
        uint256 key = uint256(ROLE_EDGE) | (uint256(index) << 8);
        bytes32 active = activeFingerprint[key];
        if (active != bytes32(0)) {
            parties[active] = key;
            emit PartyRevoked(active, ROLE_EDGE, index);
        }
        if (oldFp != bytes32(0) && parties[oldFp] == 0) parties[oldFp] = key;
        parties[tlsFingerprint] = key | (1 << 40);
        activeFingerprint[key] = tlsFingerprint;
        emit PartyRegistered(tlsFingerprint, ROLE_EDGE, index);
        delete edgeIndexOf[old];
        edgeIndexOf[account] = index;
        (e.account, e.tlsFingerprint) = (account, tlsFingerprint);
        emit EdgeNodeRotated(index, old, account, oldFp, tlsFingerprint);
    }

    // ------------------------------------------------------------------ round: open and commit

    /// @notice Open round `round` (must be latestRound + 1; the previous round must be closed or failed).
    function openRound(uint64 round, bytes32 modelHash) external onlyCoordinator {
        if (edgeCount != n) revert EdgeNodesMissing(edgeCount, n);
        if (round != latestRound + 1) revert BadRound(round, latestRound + 1);
        if (latestRound != 0) {
            Phase prev = rounds[latestRound].phase;
            if (prev != Phase.Closed && prev != Phase.Failed) revert WrongPhase(latestRound, prev);
        }
        latestRound = round;
        Round storage r = rounds[round];
        r.phase = Phase.Open;
        r.deviceCount = uint32(deviceAddresses.length);
        r.deadline = uint64(block.number + commitBlocks);
        (r.powMinBits, r.powMaxBits, r.powFullTrust) = (powMinBits, powMaxBits, powFullTrust);
        r.modelHash = modelHash;
        emit RoundOpened(round, modelHash, r.deviceCount, r.deadline);
    }

    /// @notice A device commits the Merkle root of its share vectors with a light PoW stamp made
    /// at `bits`, the difficulty the device stamped at: keccak256(contract, uint64 chainid,
    /// device, round, root, nonce) must have `bits` leading zero bits. `bits` below the device's
    /// difficulty in the round reverts (StalePow: a stale or misannounced difficulty, nothing is
    /// recorded). A stamp that does not meet the `bits` the device signed for is recorded as its
    /// PoW refusal in the round (powRefused, PowRefused event; the transaction succeeds, no
    /// commitment). Otherwise the stored value is bindCommitment(root, round, device id) (event
    /// SharesCommitted): whatever the difficulty, a root committed by another device or in
    /// another round is a different value, which only leaves bound to this (round, device) open.
    /// One entry per device and round: a second call reverts (AlreadyCommitted), refused or not.
    function commitShares(uint64 round, bytes32 root, uint64 nonce, uint8 bits) external {
        uint256 info = deviceInfo[msg.sender];
        if (info == 0) revert NotDevice(msg.sender);
        Round storage r = _inPhase(round, Phase.Open);
        _beforeDeadline(round, r);
        uint32 id = uint32((info & 0xffffffff) - 1);
        if (id >= r.deviceCount) revert DeviceNotInRound(round, id);
        if (uint64(info >> 64) == round) revert AlreadyCommitted(round, id);
        if (root == bytes32(0)) revert ZeroRoot();
        uint256 required = _powBits(info, r.powMinBits, r.powMaxBits, r.powFullTrust);
        if (bits < required) revert StalePow(round, id, bits, required);
        uint256 kept = info & 0xffffffffff; // id + 1, registered powBits
        if (bits != 0) {
            bytes32 stamp = keccak256(abi.encodePacked(address(this), uint64(block.chainid), msg.sender, round, root, nonce));
            if (uint256(stamp) >> (256 - uint256(bits)) != 0) {
                deviceInfo[msg.sender] = kept | (uint256(round) << 64) | (1 << 128);
                powRefusalWords[round][id >> 8] |= 1 << (id & 0xff);
                r.refused += 1;
                emit PowRefused(round, id, bits);
                return;
            }
        }
        bytes32 bound = bindCommitment(root, round, id);
        deviceInfo[msg.sender] = kept | (uint256(round) << 64);
        latestCommitment[id] = bound;
        r.committed += 1;
        emit SharesCommitted(round, id, bound);
    }

    /// @notice The value stored for device `deviceId`'s commitment of `root` in `round`:
    /// keccak256(root || uint64 round || uint32 deviceId).
    function bindCommitment(bytes32 root, uint64 round, uint32 deviceId) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(root, round, deviceId));
    }

    /// @notice End the commit phase: every device of the round answered (committed, or had its PoW
    /// stamp refused: it cannot commit again in the round), or the commit deadline passed.
    function closeCommitments(uint64 round) external {
        Round storage r = _inPhase(round, Phase.Open);
        uint256 all = r.deviceCount;
        if (r.committed != all && r.committed + uint256(r.refused) != all && block.number <= r.deadline) {
            revert DeadlineNotReached(round, r.deadline);
        }
        r.phase = Phase.Committed;
        r.closedAt = uint64(block.number);
        r.deadline = uint64(block.number + verifyBlocks);
        emit CommitmentsClosed(round, r.committed, r.deadline);
    }

    function _seed(uint64 round, uint64 fixedAt, uint8 kind) internal view returns (bytes32) {
        if (fixedAt == 0 || block.number <= fixedAt) revert SeedNotReady(round, fixedAt + 1);
        bytes32 h = blockhash(fixedAt);
        if (h == bytes32(0)) revert SeedExpired(round);
        return keccak256(abi.encode(h, address(this), round, kind));
    }

    /// @notice Public randomness for the share-consistency check, fixed by the hash of the block
    /// that closed the commitments (readable from the next block on).
    function challengeSeed(uint64 round) public view returns (bytes32) {
        bytes32 stored = rounds[round].challengeSeed;
        if (stored != bytes32(0)) return stored;
        return _seed(round, rounds[round].closedAt, 1);
    }

    // ------------------------------------------------------------------ verify request (one per round)

    error VerifyRequestAlreadyPosted(uint64 round, bytes32 posted);
    error VerifyRequestAfterScalars(uint64 round);

    event VerifyRequestFixed(uint64 indexed round, bytes32 requestHash);

    /// @notice The coordinator fixes the hash of round `round`'s one VerifyRequest (the hash
    /// every edge node's verify reply is bound to) before it sends the request: after
    /// closeCommitments, before the verify deadline and before any scalars were posted, once
    /// (a second one reverts, VerifyRequestAlreadyPosted). An edge node that reads the chain
    /// answers only the request with this hash, so a relay cannot send nodes different requests.
    function postVerifyRequest(uint64 round, bytes32 requestHash) external onlyCoordinator {
        Round storage r = _inPhase(round, Phase.Committed);
        _beforeDeadline(round, r);
        if (requestHash == bytes32(0)) revert ZeroRoot();
        if (r.verifyRequest != bytes32(0)) revert VerifyRequestAlreadyPosted(round, r.verifyRequest);
        if (r.scalarVoters != 0) revert VerifyRequestAfterScalars(round);
        r.verifyRequest = requestHash;
        emit VerifyRequestFixed(round, requestHash);
    }

    // ------------------------------------------------------------------ verification

    /// @dev Record the votes of `signers` (bitmap of edge indices) for `h` (bit 0 of the vote
    /// word: the bytes were published). Returns true when t edge nodes voted for `h` and its bytes are on chain.
    function _vote(uint64 round, uint8 kind, uint32 signers, bytes32 h, bool publish) internal returns (bool) {
        bytes32 key = keccak256(abi.encode(round, kind, h));
        uint256 voters = votes[key] | signers;
        if (publish) voters |= 1;
        votes[key] = voters;
        if (voters & 1 == 0) return false;
        uint256 count;
        for (uint256 rest = voters >> 1; rest != 0; rest &= rest - 1) count += 1;
        return count >= t;
    }

    /// @notice Vote word of `h` for `kind` (1 scalars, 2 decisions): bit i = edge node i voted,
    /// bit 0 = the bytes were published.
    function voteWord(uint64 round, uint8 kind, bytes32 h) external view returns (uint256) {
        return votes[keccak256(abi.encode(round, kind, h))];
    }

    function _scalars(uint64 round, bytes32 h, bool publish, bytes calldata signatures) internal returns (bool agreed) {
        Round storage r = _inPhase(round, Phase.Committed);
        _beforeDeadline(round, r);
        uint32 signers = _signers(KIND_SCALARS, round, h, signatures, r.scalarVoters);
        if (r.challengeSeed == bytes32(0)) r.challengeSeed = _seed(round, r.closedAt, 1);
        r.scalarVoters |= signers;
        emit ScalarsPosted(round, signers, h);
        agreed = _vote(round, KIND_SCALARS, signers, h, publish);
        if (agreed) {
            r.scalarsHash = h;
            r.phase = Phase.Verified;
            r.deadline = uint64(block.number + aggregateBlocks);
            emit ScalarsAgreed(round, h);
        }
    }

    /// @notice Publish the opened verification scalars (records of uint32 deviceId and uint64
    /// values, packed big-endian) with the votes of the edge nodes that signed them: `signatures`
    /// holds 65-byte signatures (r || s || v) of the kind-1 attestation of keccak256(packed) (see
    /// _attestation), one per edge node; anyone may relay them. Once t edge nodes voted for the
    /// same bytes the round is Verified. The bytes are emitted once (ScalarsPublished).
    function postScalars(uint64 round, bytes calldata packed, bytes calldata signatures) external {
        bytes32 h = keccak256(packed);
        emit ScalarsPublished(round, h, packed);
        _scalars(round, h, true, signatures);
    }

    /// @notice Add signed votes for scalars already published (by their keccak256 hash `h`).
    function voteScalars(uint64 round, bytes32 h, bytes calldata signatures) external {
        _scalars(round, h, false, signatures);
    }

    function _decisions(uint64 round, bytes32 h, bool publish, bytes calldata signatures) internal {
        Round storage r = _inPhase(round, Phase.Verified);
        _beforeDeadline(round, r);
        if (r.decisionsAgreed) revert AlreadyDone(round);
        uint32 signers = _signers(KIND_DECISIONS, round, h, signatures, r.decisionVoters);
        r.decisionVoters |= signers;
        emit DecisionsPosted(round, signers, h);
        if (_vote(round, KIND_DECISIONS, signers, h, publish)) {
            r.decisionsHash = h;
            r.decisionsAgreed = true;
            emit DecisionsAgreed(round, h);
        }
    }

    /// @notice Publish the accept/reject decisions (13-byte records: uint32 deviceId, uint8 reason
    /// (0 = accepted), uint64 weight) with the signed votes (kind 2) of the edge nodes that agree
    /// with them, as postScalars; agreed once t edge nodes voted.
    function postDecisions(uint64 round, bytes calldata packed, bytes calldata signatures) external {
        if (packed.length % DECISION_BYTES != 0) revert BadLength(packed.length, DECISION_BYTES);
        bytes32 h = keccak256(packed);
        emit DecisionsPublished(round, h, packed);
        _decisions(round, h, true, signatures);
    }

    /// @notice Add signed votes for decisions already published (by their keccak256 hash `h`).
    function voteDecisions(uint64 round, bytes32 h, bytes calldata signatures) external {
        _decisions(round, h, false, signatures);
    }

    // ------------------------------------------------------------------ aggregation

    /// @notice Commit edge nodes' aggregate-share Merkle roots (after the decisions): `roots[i]`
    /// with `signatures[65 i .. 65 i + 65]`, its node's signature of the kind-3 attestation of the
    /// root; the signer is the node it is recorded for (once per round). Anyone may relay.
    function commitAggregateShares(uint64 round, bytes32[] calldata roots, bytes calldata signatures) external {
        Round storage r = _inPhase(round, Phase.Verified);
        _beforeDeadline(round, r);
        if (!r.decisionsAgreed) revert DecisionsMissing(round);
        uint256 count = _signatureCount(round, signatures);
        if (roots.length != count) revert BadLength(roots.length, count);
        uint32 shares = r.aggregateShares;
        for (uint256 i = 0; i < count; i++) {
            bytes32 root = roots[i];
            if (root == bytes32(0)) revert ZeroRoot();
            uint8 edge = _signer(_attestation(KIND_AGGREGATE_SHARE, round, root), signatures, i);
            if (shares & (uint32(1) << edge) != 0) revert AlreadyPosted(round, edge);
            shares |= uint32(1) << edge;
            aggregateShareRoots[round][edge] = root;
            emit AggregateShareCommitted(round, edge, root);
        }
        r.aggregateShares = shares;
    }

    /// @notice The aggregator posts the Merkle root of the aggregate vector (length d) and the new
    /// global model hash; needs the decisions and at least t aggregate-share commitments.
    function postAggregate(uint64 round, bytes32 root, bytes32 newModelHash, uint32 length) external onlyCoordinator {
        Round storage r = _inPhase(round, Phase.Verified);
        _beforeDeadline(round, r);
        if (!r.decisionsAgreed) revert DecisionsMissing(round);
        uint256 count;
        for (uint32 bits = r.aggregateShares; bits != 0; bits &= bits - 1) count += 1;
        if (count < t) revert NotEnoughAggregateShares(round, count, t);
        if (length == 0) revert BadLength(0, 1);
        r.aggregateRoot = root;
        r.newModelHash = newModelHash;
        r.length = length;
        r.phase = Phase.Aggregated;
        r.aggregatedAt = uint64(block.number);
        r.deadline = uint64(block.number + auditBlocks);
        emit AggregatePosted(round, root, newModelHash, length);
    }

    // ------------------------------------------------------------------ audit

    /// @notice Audit randomness, fixed by the hash of the block holding postAggregate.
    function auditSeed(uint64 round) public view returns (bytes32) {
        bytes32 stored = rounds[round].auditSeed;
        if (stored != bytes32(0)) return stored;
        return _seed(round, rounds[round].aggregatedAt, 2);
    }

    /// @notice The auditK coordinates (in [0, length)) an audit of `round` must open.
    function auditCoordinates(uint64 round) external view returns (uint256[] memory coords) {
        bytes32 seed = auditSeed(round);
        uint256 length = rounds[round].length;
        coords = new uint256[](auditK);
        for (uint256 i = 0; i < auditK; i++) coords[i] = uint256(keccak256(abi.encode(seed, i))) % length;
    }

    /// @notice Depth of the Merkle tree over a vector of `length` field elements.
    function treeDepth(uint256 length) public pure returns (uint256 depth) {
        uint256 leaves = (length + CHUNK - 1) / CHUNK;
        while ((uint256(1) << depth) < leaves) depth += 1;
    }

    /// @dev Root of the path from chunk `chunkIndex` (128 bytes at `chunkAt` in `chunks`) through
    /// `depth` siblings starting at `siblings[siblingAt]`.
    function _proveChunk(
        bytes calldata chunks,
        uint256 chunkAt,
        bytes32[] calldata siblings,
        uint256 siblingAt,
        uint256 depth,
        uint256 chunkIndex
    ) internal pure returns (bytes32 node) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(224, chunkIndex))
            calldatacopy(add(ptr, 4), add(chunks.offset, chunkAt), 128)
            node := keccak256(ptr, 132)
            let s := add(siblings.offset, shl(5, siblingAt))
            let end := add(s, shl(5, depth))
            for { let idx := chunkIndex } lt(s, end) { s := add(s, 32) } {
                let left := shl(5, and(idx, 1)) // 0 if node is a left child, 32 if right
                mstore(left, node)
                mstore(xor(left, 32), calldataload(s))
                node := keccak256(0x00, 0x40)
                idx := shr(1, idx)
            }
        }
    }

    /// @dev Root over the `1 << levels` nodes `frontiers[at ...]` (one tree level, left to right).
    function _frontierRoot(bytes32[] calldata frontiers, uint256 at, uint256 levels) internal pure returns (bytes32 root) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let width := shl(levels, 1)
            calldatacopy(ptr, add(frontiers.offset, shl(5, at)), shl(5, width))
            for { } gt(width, 1) { width := shr(1, width) } {
                for { let i := 0 } lt(i, width) { i := add(i, 2) } {
                    mstore(add(ptr, shl(4, i)), keccak256(add(ptr, shl(5, i)), 0x40))
                }
            }
            root := mload(ptr)
        }
    }

    function _value(bytes calldata chunks, uint256 at) internal pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(192, calldataload(add(chunks.offset, at)))
        }
    }

    function _coordinate(bytes32 seed, uint256 i, uint256 length) internal pure returns (uint256 c) {
        assembly ("memory-safe") {
            mstore(0x00, seed)
            mstore(0x20, i)
            c := mod(keccak256(0x00, 0x40), length)
        }
    }

    function _inverse(uint256 a) internal view returns (uint256 r) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, 32)
            mstore(add(ptr, 0x20), 32)
            mstore(add(ptr, 0x40), 32)
            mstore(add(ptr, 0x60), a)
            mstore(add(ptr, 0x80), sub(P, 2))
            mstore(add(ptr, 0xa0), P)
            if iszero(staticcall(gas(), 0x05, ptr, 0xc0, ptr, 0x20)) { revert(0, 0) }
            r := mload(ptr)
        }
    }

    /// @dev Lagrange coefficients at 0 for the points `edges` with position `skip` left out
    /// (skip = edges.length for none), written to lambda[row * m ...], 0 at `skip`.
    function _lagrange(uint8[] calldata edges, uint256 skip, uint256[] memory lambda, uint256 row) internal view {
        uint256 m = edges.length;
        unchecked {
            for (uint256 i = 0; i < m; i++) {
                if (i == skip) continue;
                uint256 num = 1;
                uint256 den = 1;
                uint256 xi = edges[i];
                for (uint256 j = 0; j < m; j++) {
                    if (j == i || j == skip) continue;
                    uint256 xj = edges[j];
                    num = mulmod(num, xj, P);
                    den = mulmod(den, xj + P - xi, P);
                }
                lambda[row * m + i] = mulmod(num, _inverse(den), P);
            }
        }
    }

    /// @dev Row `row` of `lambda` := mu_j = 1 / prod_{k != j} (x_j - x_k): sum_j mu_j y_j is the
    /// leading coefficient of the polynomial through all m points, 0 iff they lie on one of degree < m - 1.
    function _syndrome(uint8[] calldata edges, uint256[] memory lambda, uint256 row) internal view {
        uint256 m = edges.length;
        unchecked {
            for (uint256 j = 0; j < m; j++) {
                uint256 den = 1;
                for (uint256 k = 0; k < m; k++) {
                    if (k != j) den = mulmod(den, uint256(edges[j]) + P - edges[k], P);
                }
                lambda[row * m + j] = _inverse(den);
            }
        }
    }

    /// @dev sum_i lambda[row * m + i] * ys[i] mod p (rows of `lambda` have m = ys.length entries).
    function _combine(uint256[] memory lambda, uint256 row, uint256[] memory ys) internal pure returns (uint256 v) {
        assembly ("memory-safe") {
            let m := mload(ys)
            let lp := add(add(lambda, 32), shl(5, mul(row, m)))
            let yp := add(ys, 32)
            for { let i := 0 } lt(i, m) { i := add(i, 1) } {
                v := addmod(v, mulmod(mload(add(lp, shl(5, i))), mload(add(yp, shl(5, i))), P), P)
            }
        }
    }

    /// @dev Verdict for one coordinate: 0 = consistent, else the offending party (see docs/chain.md).
    /// t shares: `lambda` row 0 interpolates them. t + 1 shares: rows 0..m-1 are the leave-one-out
    /// interpolations, row m the consistency syndrome (checked first; the rows only on a mismatch).
    function _verdict(uint8[] calldata edges, uint256[] memory lambda, uint256 t_, uint256[] memory ys, uint256 a)
        internal
        pure
        returns (uint8)
    {
        uint256 m = ys.length;
        if (m == t_) return _combine(lambda, 0, ys) == a ? 0 : PARTY_UNATTRIBUTED;
        if (_combine(lambda, m, ys) == 0) {
            // the t + 1 shares are consistent: any t of them give the same value
            return _combine(lambda, m - 1, ys) == a ? 0 : PARTY_AGGREGATOR;
        }
        uint256 matches;
        uint256 matched;
        for (uint256 j = 0; j < m; j++) {
            if (_combine(lambda, j, ys) == a) {
                matches += 1;
                matched = j;
            }
        }
        return matches == 1 ? edges[matched] : PARTY_UNATTRIBUTED;
    }

    /// @notice Audit the posted aggregate: open the auditK drawn coordinates of the aggregate and
    /// of the aggregate shares of `edges` (t or t + 1 distinct edge indices, ascending).
    /// With depth = treeDepth(length), top = min(depth, 4) and low = depth - top:
    /// `frontiers` holds, for the aggregate and then each edge node, the 2^top tree nodes at
    /// height `low` (checked against the committed roots once); for each coordinate i, `chunks`
    /// holds the 128-byte chunk of the aggregate and then of each edge node, `siblings` their
    /// paths up to height `low` (low hashes each, leaf level first).
    /// Only before the audit deadline, only shares of edge nodes not reported as liars
    /// (ReportedLiar), and only until an audit passed (AlreadyDone: a later audit, e.g. by a liar
    /// with its own wrong share, cannot fail a passed round). A mismatch fails the round naming
    /// the offender; a t + 1 audit may also refine an unattributed failure.
    function audit(
        uint64 round,
        uint8[] calldata edges,
        bytes calldata chunks,
        bytes32[] calldata siblings,
        bytes32[] calldata frontiers
    ) external {
        Round storage r = rounds[round];
        bool refine = r.phase == Phase.Failed && r.failure == Failure.AuditMismatch && r.offender == PARTY_UNATTRIBUTED;
        if (r.phase != Phase.Aggregated && !refine) revert WrongPhase(round, r.phase);
        if (!refine) {
            if (r.auditPassed) revert AlreadyDone(round);
            _beforeDeadline(round, r);
        }
        uint256 m = edges.length;
        if (m < t || m > t + 1 || m > n) revert BadAuditSet(round, m);
        bytes32[] memory roots = new bytes32[](m + 1);
        roots[0] = r.aggregateRoot;
        for (uint256 i = 0; i < m; i++) {
            if (i > 0 && edges[i] <= edges[i - 1]) revert BadAuditSet(round, m);
            if (r.aggregateShares & (uint32(1) << edges[i]) == 0) revert ShareNotCommitted(round, edges[i]);
            if (r.reportedLiars & (uint32(1) << edges[i]) != 0) revert ReportedLiar(round, edges[i]);
            roots[i + 1] = aggregateShareRoots[round][edges[i]];
        }
        uint256 length = r.length;
        uint256 low = treeDepth(length);
        uint256 top = low < FRONTIER_LEVELS ? low : FRONTIER_LEVELS;
        low -= top;
        uint256 k = auditK;
        if (chunks.length != k * (m + 1) * CHUNK_BYTES) revert BadLength(chunks.length, k * (m + 1) * CHUNK_BYTES);
        if (siblings.length != k * (m + 1) * low) revert BadLength(siblings.length, k * (m + 1) * low);
        if (frontiers.length != (m + 1) << top) revert BadLength(frontiers.length, (m + 1) << top);
        for (uint256 j = 0; j <= m; j++) {
            if (_frontierRoot(frontiers, j << top, top) != roots[j]) {
                revert BadProof(round, type(uint256).max, j == 0 ? PARTY_AGGREGATOR : edges[j - 1]);
            }
        }
        bytes32 seed = r.auditSeed;
        if (seed == bytes32(0)) {
            seed = _seed(round, r.aggregatedAt, 2);
            r.auditSeed = seed;
        }
        uint256[] memory lambda;
        if (m == t) {
            lambda = new uint256[](m);
            _lagrange(edges, m, lambda, 0);
        } else {
            lambda = new uint256[]((m + 1) * m);
            for (uint256 j = 0; j < m; j++) _lagrange(edges, j, lambda, j);
            _syndrome(edges, lambda, m);
        }

        uint256[] memory ys = new uint256[](m);
        uint8 offender;
        uint256 coord;
        unchecked {
            for (uint256 i = 0; i < k && offender == 0; i++) {
                coord = _coordinate(seed, i, length);
                uint256 chunkIndex = coord / CHUNK;
                uint256 within = (coord % CHUNK) * 8;
                uint256 a;
                for (uint256 j = 0; j <= m; j++) {
                    uint256 slot = i * (m + 1) + j;
                    bytes32 node = _proveChunk(chunks, slot * CHUNK_BYTES, siblings, slot * low, low, chunkIndex);
                    if (node != frontiers[(j << top) + (chunkIndex >> low)]) {
                        revert BadProof(round, coord, j == 0 ? PARTY_AGGREGATOR : edges[j - 1]);
                    }
                    uint256 v = _value(chunks, slot * CHUNK_BYTES + within) % P;
                    if (j == 0) a = v;
                    else ys[j - 1] = v;
                }
                offender = _verdict(edges, lambda, t, ys, a);
            }
        }
        if (offender == 0) {
            if (!refine) {
                r.auditPassed = true;
                emit AuditPassed(round, edges);
            }
            return;
        }
        if (refine && offender == PARTY_UNATTRIBUTED) return;
        emit AuditFailed(round, coord, offender);
        _fail(round, r, Failure.AuditMismatch, offender);
    }

    /// @dev Fail `r`: a failed round keeps its aggregate root as evidence but links no model.
    function _fail(uint64 round, Round storage r, Failure failure, uint8 offender) internal {
        r.phase = Phase.Failed;
        r.failure = failure;
        r.offender = offender;
        r.newModelHash = bytes32(0);
        emit RoundFailed(round, failure, offender);
    }

    // ------------------------------------------------------------------ trust, anchor, liars, close

    function _recordable(uint64 round) internal view returns (Round storage r) {
        r = rounds[round];
        if (r.phase != Phase.Verified && r.phase != Phase.Aggregated && r.phase != Phase.Failed) {
            revert WrongPhase(round, r.phase);
        }
    }

    function _writeTrust(uint256[] calldata slots, uint256[] calldata words) internal {
        if (slots.length != words.length) revert BadLength(words.length, slots.length);
        uint256 maxSlot = (deviceAddresses.length + TRUST_LANES - 1) / TRUST_LANES;
        for (uint256 i = 0; i < slots.length; i++) {
            if (slots[i] >= maxSlot) revert BadSlot(slots[i]);
            uint256 w = words[i];
            for (uint256 lane = 0; lane < TRUST_LANES; lane++) {
                if ((w >> (16 * lane)) & 0xffff > TRUST_ONE) revert BadTrust(slots[i], lane);
            }
            trustWords[slots[i]] = w;
        }
    }

    /// @notice After round `round` closed or failed: anchor the Merkle root of the off-chain
    /// trust store's records of the round (once) and set the trust the round's update computed,
    /// which the next round weights with and derives PoW difficulty from. `words` are whole words
    /// of 16 uint16 Q1.15 scores (word w holds devices 16w .. 16w + 15, device 16w + j in bits
    /// 16j .. 16j + 15), each <= 1.0, written at `slots`. No one's word: `signatures` (65 bytes
    /// r || s || v each) must hold at least t distinct registered edge nodes' signatures of the
    /// kind-4 attestation of keccak256(abi.encode(root, slots, words)) -- with PoW refusals in the
    /// round, keccak256(abi.encode(root, slots, words, refusalDigest(round))), so the signers'
    /// update counted exactly the refusals on chain -- (see _attestation); each
    /// node computed the update itself (TrustNotAgreed otherwise). Anyone may relay.
    function commitTrust(uint64 round, bytes32 root, uint256[] calldata slots, uint256[] calldata words, bytes calldata signatures) external {
        Round storage r = rounds[round];
        if (r.phase != Phase.Closed && r.phase != Phase.Failed) revert WrongPhase(round, r.phase);
        if (r.anchor != bytes32(0)) revert AlreadyDone(round);
        if (root == bytes32(0)) revert ZeroRoot();
        bytes32 refused = refusalDigest(round); // the signers computed the update with exactly the chain's refusals
        bytes32 digest = refused == bytes32(0) ? keccak256(abi.encode(root, slots, words)) : keccak256(abi.encode(root, slots, words, refused));
        uint32 signers = _signers(KIND_TRUST, round, digest, signatures, 0);
        uint256 count;
        for (uint32 rest = signers; rest != 0; rest &= rest - 1) count += 1;
        if (count < t) revert TrustNotAgreed(round, count);
        _writeTrust(slots, words);
        r.anchor = root;
        emit Anchored(round, root);
        emit TrustCommitted(round, root, slots, words);
    }

    /// @notice Anchor the off-chain store's Merkle root for `round` (once).
    function anchor(uint64 round, bytes32 root) external onlyCoordinator {
        Round storage r = _recordable(round);
        if (r.anchor != bytes32(0)) revert AlreadyDone(round);
        if (root == bytes32(0)) revert ZeroRoot();
        r.anchor = root;
        emit Anchored(round, root);
    }

    /// @notice Record an edge node named by robust reconstruction as having sent a wrong share.
    function reportLiar(uint64 round, uint8 edgeIndex) external onlyCoordinator {
        Round storage r = _recordable(round);
        if (edgeIndex < 1 || edgeIndex > n) revert BadEdgeIndex(edgeIndex);
        if (r.reportedLiars & (uint32(1) << edgeIndex) != 0) revert AlreadyPosted(round, edgeIndex);
        r.reportedLiars |= uint32(1) << edgeIndex;
        emit LiarReported(round, edgeIndex);
    }

    /// @notice Close an aggregated round: only after a passed audit and before the audit deadline
    /// (after it the round can only be aborted).
    function closeRound(uint64 round) external onlyCoordinator {
        Round storage r = _inPhase(round, Phase.Aggregated);
        if (!r.auditPassed) revert AuditNotPassed(round);
        _beforeDeadline(round, r);
        r.phase = Phase.Closed;
        emit RoundClosed(round);
    }

    /// @notice Anyone may fail a round that is neither Closed nor Failed once the deadline of its
    /// current phase passed (block.number > deadline): Open (commit deadline), Committed (verify),
    /// Verified (aggregate) and Aggregated (audit; reason Unaudited when no audit passed, else
    /// Timeout: a passed round must be closed before its audit deadline). The next round can then open.
    function abortRound(uint64 round) external {
        Round storage r = rounds[round];
        Phase phase = r.phase;
        if (phase == Phase.None || phase == Phase.Closed || phase == Phase.Failed) revert WrongPhase(round, phase);
        if (block.number <= r.deadline) revert DeadlineNotReached(round, r.deadline);
        _fail(round, r, phase == Phase.Aggregated && !r.auditPassed ? Failure.Unaudited : Failure.Timeout, 0);
    }

    // ------------------------------------------------------------------ views

    function roundInfo(uint64 round) external view returns (Round memory) {
        return rounds[round];
    }

    function edgeNode(uint8 index) external view returns (address account, bytes32 tlsFingerprint) {
        EdgeNode storage e = edgeNodes[index];
        return (e.account, e.tlsFingerprint);
    }

    function deviceCount() external view returns (uint32) {
        return uint32(deviceAddresses.length);
    }

    /// @notice (registered, id, powBits) of `account`.
    function device(address account) external view returns (bool registered, uint32 id, uint8 powBits) {
        uint256 info = deviceInfo[account];
        if (info == 0) return (false, 0, 0);
        return (true, uint32((info & 0xffffffff) - 1), uint8(_powBitsNow(info)));
    }

    function deviceAddress(uint32 id) external view returns (address) {
        return deviceAddresses[id];
    }

    /// @notice Device `deviceId`'s bound commitment in `round` (zero: it did not commit in
    /// `round`, or is not registered). Only the device's latest entry is in storage: a round
    /// before a later one the device committed or was refused in reverts
    /// (CommitmentOverwritten; read that round's SharesCommitted events instead). Entry round 0
    /// (no entry yet: the slot holds the registration's NO_COMMITMENT) reads as zero for every round.
    function commitment(uint64 round, uint32 deviceId) public view returns (bytes32) {
        if (deviceId >= deviceAddresses.length) return bytes32(0);
        uint256 info = deviceInfo[deviceAddresses[deviceId]];
        uint64 entry = uint64(info >> 64);
        if (entry > round) revert CommitmentOverwritten(round, deviceId, entry);
        if (entry < round || entry == 0 || (info >> 128) & 1 != 0) return bytes32(0);
        return latestCommitment[deviceId];
    }

    /// The share commitments of `deviceIds` in `round` (zero where a device did not commit), in
    /// one call: what the relay reads to learn who committed (reverts as commitment).
    function commitmentsOf(uint64 round, uint32[] calldata deviceIds) external view returns (bytes32[] memory roots) {
        roots = new bytes32[](deviceIds.length);
        for (uint256 k = 0; k < deviceIds.length; ++k) {
            roots[k] = commitment(round, deviceIds[k]);
        }
    }

    /// @notice Whether device `deviceId`'s PoW stamp was refused in `round` (any past round).
    function powRefused(uint64 round, uint32 deviceId) external view returns (bool) {
        return (powRefusalWords[round][deviceId >> 8] >> (deviceId & 0xff)) & 1 != 0;
    }

    /// @notice The devices whose PoW stamp was refused in `round`, ascending.
    function powRefusals(uint64 round) external view returns (uint32[] memory ids) {
        uint256 words = (deviceAddresses.length + 255) >> 8;
        uint256 count;
        for (uint256 w = 0; w < words; ++w) {
            for (uint256 rest = powRefusalWords[round][w]; rest != 0; rest &= rest - 1) count += 1;
        }
        ids = new uint32[](count);
        count = 0;
        for (uint256 w = 0; w < words; ++w) {
            uint256 word = powRefusalWords[round][w];
            for (uint256 b = 0; word != 0; ++b) {
                if (word & (uint256(1) << b) != 0) {
                    ids[count++] = uint32((w << 8) | b);
                    word &= ~(uint256(1) << b);
                }
            }
        }
    }

    /// @notice Digest of the PoW refusals of `round` that a trust vote covers: zero when none,
    /// else h_k = keccak256(h_{k-1} || uint32 id_k) over the refused ids ascending, h_0 = 0.
    function refusalDigest(uint64 round) public view returns (bytes32 h) {
        uint256 words = (deviceAddresses.length + 255) >> 8;
        for (uint256 w = 0; w < words; ++w) {
            uint256 word = powRefusalWords[round][w];
            for (uint256 b = 0; word != 0; ++b) {
                if (word & (uint256(1) << b) != 0) {
                    h = keccak256(abi.encodePacked(h, uint32((w << 8) | b)));
                    word &= ~(uint256(1) << b);
                }
            }
        }
    }

    function aggregateShareRoot(uint64 round, uint8 edgeIndex) external view returns (bytes32) {
        return aggregateShareRoots[round][edgeIndex];
    }

    /// @notice Who holds the TLS certificate with `fingerprint`: role (0: never registered),
    /// index, and whether it is still active (false once revoked).
    function party(bytes32 fingerprint) external view returns (uint8 role, uint32 index, bool active) {
        uint256 info = parties[fingerprint];
        return (uint8(info), uint32(info >> 8), info >> 40 != 0);
    }

    /// @notice The fingerprint of the active certificate of party (`role`, `index`) (zero: none).
    function partyFingerprint(uint8 role, uint32 index) external view returns (bytes32) {
        return activeFingerprint[uint256(role) | (uint256(index) << 8)];
    }

    function trustWord(uint256 slot) external view returns (uint256) {
        return trustWords[slot];
    }

    function trustOf(uint32 deviceId) external view returns (uint16) {
        return uint16(trustWords[deviceId / TRUST_LANES] >> (16 * (deviceId % TRUST_LANES)));
    }
}
