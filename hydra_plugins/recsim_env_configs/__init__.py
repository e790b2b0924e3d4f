"""Hydra plugin of recsim-env: registers its structured configs (see recsim_env_configs.py)."""
