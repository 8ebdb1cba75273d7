"""Federated-learning simulation: datasets, partitioning, torch models, poisoning attacks,
plaintext robust aggregation baselines and the experiment runner behind ``ppbfl experiment``.

Modules, one job each: :mod:`~ppbfl.fl.datasets` (shipped medical data and user CSVs),
:mod:`~ppbfl.fl.partition` (IID / Dirichlet splits over devices), :mod:`~ppbfl.fl.models`
(torch models and flat parameter vectors), :mod:`~ppbfl.fl.training` (local training and
evaluation), :mod:`~ppbfl.fl.attacks`, :mod:`~ppbfl.fl.aggregators`, :mod:`~ppbfl.fl.config`
(TOML), :mod:`~ppbfl.fl.runner` and :mod:`~ppbfl.fl.report` (CSV, Markdown, plots).
Imports are lazy: ``import ppbfl.fl`` does not import torch.
"""
