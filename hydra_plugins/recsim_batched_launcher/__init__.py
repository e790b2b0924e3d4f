"""Hydra launcher plugin of recsim-env: ``hydra/launcher=batched`` (see batched_launcher.py)."""
