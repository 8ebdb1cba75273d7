"""ppbfl inside a Flower app (``flwr`` >= 1.42, Message API): a server workflow and a client mod.

Two lines turn a stock Flower app into a secure, poisoning-resistant one::

    # server_app.py: in place of FedAvg(...)
    strategy = PpbflWorkflow(t=2, n=3, edges=EDGES, creds="creds", reference_fn=root_update)
    # client_app.py
    app = ClientApp(mods=[PpbflMod()])

Without a root set: ``PpbflWorkflow(t=2, n=3, edges=EDGES, creds="creds", rule="flame")`` (FLAME
on shares, docs/defense.md); ``rescale=True`` gives the cosine rule FLTrust's norm rescaling.

The pair has the shape of Flower's SecAgg+ (``SecAggPlusWorkflow`` + ``secaggplus_mod``), but the
round is ppbfl's own (:mod:`ppbfl.protocol`): each ClientApp's mod is a
:class:`~ppbfl.protocol.device.Device` that shares its update and uploads the shares to the edge
nodes over mutual TLS; the workflow is the round's :class:`~ppbfl.protocol.round.Coordinator`.
Flower carries the announcement, receipts and the global model, never an update.
"""

from ppbfl.integrations.flower.mod import PpbflMod
from ppbfl.integrations.flower.records import FlowerRecordError, ModelLayout
from ppbfl.integrations.flower.workflow import PpbflWorkflow, ReferenceFn

__all__ = ["FlowerRecordError", "ModelLayout", "PpbflMod", "PpbflWorkflow", "ReferenceFn"]
