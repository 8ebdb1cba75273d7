"""Party ids (TLS identities, certificate common names) of the roles of a deployment."""

from __future__ import annotations

__all__ = ["COORDINATOR_PARTY", "DEALER_PARTY", "device_party", "edge_party"]

COORDINATOR_PARTY = "coordinator"
DEALER_PARTY = "dealer"


def edge_party(index: int) -> str:
    """The party id of edge node ``index``: ``"edge-<index>"``."""
    return f"edge-{index}"


def device_party(index: int) -> str:
    """The party id of device ``index``: ``"device-<index>"``."""
    return f"device-{index}"
