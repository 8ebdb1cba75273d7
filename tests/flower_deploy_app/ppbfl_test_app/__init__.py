"""The deployment-engine test's Flower app (see tests/test_flower_deployment.py)."""
