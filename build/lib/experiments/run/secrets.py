"""Credentials never reach a file: config values and overrides under secret-looking names.

Why: a run dir is shared (copied, uploaded to W&B, attached to a bug report); an API key given on the
command line (``+hydra.job.env_set.WANDB_API_KEY=...``, ``+logger.sinks.x.token=...``) would
otherwise be written in plain text to ``.hydra/*.yaml``, ``config.yaml``, ``run.json`` and the W&B
run's config and metadata.

A key is secret when its last name (``WANDB_API_KEY`` of ``hydra.job.env_set.WANDB_API_KEY``)
looks like a credential (:data:`SECRET_KEY_PATTERN`: ``api_key``, ``*_key``, ``token``, ``secret``,
``password``, ``credential``). Two defences:

* :func:`hide_secret_overrides` (``recsim-train``, before Hydra sees the command line): the value
  moves into the process environment and the override becomes ``key=${oc.env:VAR}``, so Hydra's
  ``.hydra/`` files, ``sys.argv`` (which W&B records) and the override list hold only the
  variable's name; the job resolves it in memory (``env_set`` variables are set as asked).
* :func:`redact` / :func:`redact_overrides` (the runner, on what it writes): values under secret
  keys become ``***`` in ``config.yaml``, ``run.json`` and the metric sinks' copy of the config.
  A resumed run gets such values again from its command line or its environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

REDACTED = "***"
SECRET_KEY_PATTERN = re.compile(
    r"(api[_-]?key|(^|[_\-])key$|token|secret|passw(or)?d|credential)", re.IGNORECASE
)
ENV_PREFIX = "RECSIM_SECRET_"
ENV_SET = "hydra.job.env_set."

__all__ = [
    "REDACTED",
    "SECRET_KEY_PATTERN",
    "hide_secret_overrides",
    "is_secret_key",
    "redact",
    "redact_overrides",
]


def is_secret_key(key: str) -> bool:
    """Whether the config key (dotted, ``+``/``~`` prefix allowed) names a credential."""
    return bool(SECRET_KEY_PATTERN.search(key.lstrip("+~").rsplit(".", 1)[-1]))


def redact(tree: Any) -> Any:
    """A copy of a plain config tree with the values under secret keys replaced by ``***``."""
    if isinstance(tree, Mapping):
        return {
            k: REDACTED if is_secret_key(str(k)) and v is not None else redact(v)
            for k, v in tree.items()
        }
    if isinstance(tree, list | tuple):
        return [redact(v) for v in tree]
    return tree


def redact_overrides(overrides: Sequence[str]) -> list[str]:
    """Overrides with the value of every secret key replaced by ``***``."""
    out = []
    for override in overrides:
        key, sep, _ = override.partition("=")
        out.append(f"{key}={REDACTED}" if sep and is_secret_key(key) else override)
    return out


def _env_name(key: str) -> str:
    bare = key.lstrip("+~")
    if bare.startswith(ENV_SET):  # the job's own variable: set it, reference it
        return bare[len(ENV_SET) :]
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", bare).upper()


def hide_secret_overrides(
    argv: Sequence[str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """``key=value`` with a secret key → ``key=${oc.env:VAR}``, ``VAR=value`` in ``environ``.

    ``VAR`` is the variable itself for ``hydra.job.env_set.VAR`` (the job gets it either way),
    ``RECSIM_SECRET_<KEY>`` otherwise. Values that already are interpolations, flags and the
    program name are left as they are.
    """
    environ = os.environ if environ is None else environ
    out = [argv[0]] if argv else []
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if not sep or arg.startswith("-") or not is_secret_key(key) or value.startswith("${"):
            out.append(arg)
            continue
        name = _env_name(key)
        environ[name] = value
        out.append(f"{key}=${{oc.env:{name}}}")
    return out
