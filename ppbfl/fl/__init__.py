"""Federated-learning simulation: datasets, partitioning, torch models, poisoning attacks,
plaintext robust aggregation baselines, the secure defence as one more rule, and the experiment
runner behind ``ppbfl experiment``.

Modules, one job each: :mod:`~ppbfl.fl.datasets` (shipped medical data and user CSVs),
:mod:`~ppbfl.fl.partition` (IID / Dirichlet splits over devices), :mod:`~ppbfl.fl.models`
(torch models and flat parameter vectors), :mod:`~ppbfl.fl.training` (local training and
evaluation), :mod:`~ppbfl.fl.attacks`, :mod:`~ppbfl.fl.aggregation` (the interface),
:mod:`~ppbfl.fl.aggregators` (the rules), :mod:`~ppbfl.fl.secure_aggregator` (the secure defence
as a rule), :mod:`~ppbfl.fl.reference` (FLTrust's root-set reference, as the edge nodes compute it), :mod:`~ppbfl.fl.config` (TOML), :mod:`~ppbfl.fl.runner` and :mod:`~ppbfl.fl.report` (CSV, Markdown, plots).
Imports are lazy: ``import ppbfl.fl`` does not import torch.
"""
