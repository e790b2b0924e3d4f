"""Registers recsim-env's structured configs before Hydra composes (see
``experiments/integrations/hydra_configs.py``). Hydra imports every module under the
``hydra_plugins`` namespace package when it starts and calls each search-path plugin, so the
``schema/agent`` and ``schema/env`` nodes exist for ``recsim-train``, ``recsim-tune`` and the compose
API alike, without any of them importing this first."""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class RecsimEnvConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from experiments.integrations.hydra_configs import register_configs

        register_configs()
