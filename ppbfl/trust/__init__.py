"""Reputation trust from observed behaviour, its off-chain store anchored on chain, trust-scaled PoW (DESIGN §7).

* :mod:`ppbfl.trust.config` -- the parameters (:class:`TrustConfig`);
* :mod:`ppbfl.trust.reputation` -- the beta-reputation update rule with forgetting and quarantine;
* :mod:`ppbfl.trust.evidence` -- a round's public record -> per-device evidence;
* :mod:`ppbfl.trust.step` -- one round's records and root (shared by the keeper and the edge nodes);
* :mod:`ppbfl.trust.witness` -- an edge node's own trust states and the update it signs;
* :mod:`ppbfl.trust.ids_reports` -- IDS flags as the edge nodes' signed reports, checked and combined.
"""

from ppbfl.trust.config import TrustConfig, load_trust_config
from ppbfl.trust.reputation import DeviceTrust, Evidence, initial_state, initial_trust, replay, update, update_all

__all__ = ["DeviceTrust", "Evidence", "TrustConfig", "initial_state", "initial_trust", "load_trust_config", "replay", "update", "update_all"]
