"""Intrusion and anomaly detection for IoMT (DESIGN §7): data, a small LSTM, secure federated training.

* :mod:`ppbfl.ids.generator` -- seeded IoMT telemetry / network-flow windows with labelled attacks;
* :mod:`ppbfl.ids.loaders` -- WUSTL-EHMS-2020 and CICIoMT2024 CSV layouts;
* :mod:`ppbfl.ids.model` -- the LSTM classifier and the per-window :class:`~ppbfl.ids.detector.Detector`;
* :mod:`ppbfl.ids.federated` -- training through the secure pipeline, with baselines;
* :mod:`ppbfl.ids.metrics` -- per-class and macro detection metrics;
* :mod:`ppbfl.ids.reputation` -- per-device anomaly flags for the trust update.
"""
