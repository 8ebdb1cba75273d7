"""A Flower app on scikit-learn's breast-cancer data, with ppbfl's secure robust aggregation."""
