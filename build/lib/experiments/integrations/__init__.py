"""Adapters to tools outside the runner: W&B (a metric sink and a reader), Hydra callbacks."""
