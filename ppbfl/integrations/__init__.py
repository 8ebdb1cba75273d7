"""Integrations of ppbfl's round into other federated-learning frameworks.

* :mod:`ppbfl.integrations.flower` -- a server workflow and a client mod for Flower (``flwr`` >= 1.42,
  the Message API), the shape of Flower's own SecAgg+ pair. Needs the ``flower`` extra.
"""
