"""Ray token authentication for the Ray launchers (configured under ``hydra.callbacks``).

Ray ≥ 2.5x authenticates clients with a token (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN_PATH`` or
``RAY_AUTH_TOKEN``) when the cluster runs in token mode — which ``ray start`` turns on by itself
when the user has a token, and ``ray.init()`` of a private instance always does. The *client* side
is not symmetric: ``ray.init(address="auto")`` switches to token mode when a token exists, but an
explicit address (``hydra.launcher.ray.init.address=<head>:6379``) never does, so with a token in
the user's home the ``ray_cluster`` preset failed with ``InvalidAuthToken … RAY_AUTH_MODE is
currently 'disabled'``.

:class:`RayTokenAuth` runs in the launcher's process before the Ray launcher connects
(``on_multirun_start``) and, only for a Ray launcher and only when the user has not chosen a mode
(``RAY_AUTH_MODE`` unset), sets ``RAY_AUTH_MODE=token`` if a token exists — what ``address: auto``
does by itself. A cluster without authentication accepts such a client as well. Without a token
nothing changes. An explicit ``RAY_AUTH_MODE`` (``token`` or ``disabled``) is always respected.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("experiments.run")

AUTH_MODE = "RAY_AUTH_MODE"


def ray_token_available(environ: dict[str, str] | None = None, home: Path | None = None) -> bool:
    """Whether Ray would find an auth token: ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH``
    names, or ``~/.ray/auth_token`` (Ray's own lookup order)."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return True
    path = env.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return _non_empty(Path(path).expanduser())
    return _non_empty((home or Path.home()) / ".ray" / "auth_token")


def _non_empty(path: Path) -> bool:
    try:
        return path.is_file() and bool(path.read_text().strip())
    except OSError:
        return False


def is_ray_launcher(config: DictConfig) -> bool:
    target = str(OmegaConf.select(config, "hydra.launcher._target_") or "")
    batched_on_ray = OmegaConf.select(config, "hydra.launcher.backend") == "ray"
    return target.endswith("RayLauncher") or (target.endswith("BatchedLauncher") and batched_on_ray)


class RayTokenAuth(Callback):
    """Token mode for a Ray launcher's client when the user has a token (see the module doc)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_ray_launcher(config) or os.environ.get(AUTH_MODE) is not None:
            return
        if ray_token_available():
            os.environ[AUTH_MODE] = "token"
            log.info(
                "Ray: an auth token is available, so the launcher connects with %s=token "
                "(set %s=disabled to opt out)",
                AUTH_MODE,
                AUTH_MODE,
            )
