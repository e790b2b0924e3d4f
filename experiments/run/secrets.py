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
* :func:`scrub` (by value): any text that contains the value of a secret-looking environment
  variable (``WANDB_API_KEY``, ``HF_TOKEN``, the ``RECSIM_SECRET_*`` that the first defence set)
  has it replaced by ``***``: config values under innocent names (``${oc.env:WANDB_API_KEY}``),
  error messages that echo an input (``error.txt``, ``summary.json``), and every log record
  (``train.log``, the console: :func:`install_log_filter`).

Every form of an override is covered: ``key=value``, ``+key``/``++key``, and a mapping value
(``'++hydra.job.env_set={WANDB_API_KEY:...}'``), whose secret entries become
``${oc.env:VAR}`` one by one.
"""

from __future__ import annotations

import logging
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

MIN_SECRET_LEN = 6  # shorter values (a "1", "true") are not scrubbed by value

__all__ = [
    "REDACTED",
    "SECRET_KEY_PATTERN",
    "hide_secret_overrides",
    "install_log_filter",
    "is_secret_key",
    "redact",
    "redact_overrides",
    "scrub",
    "secret_values",
]


def is_secret_key(key: str) -> bool:
    """Whether the config key (dotted, ``+``/``~`` prefix allowed) names a credential."""
    return bool(SECRET_KEY_PATTERN.search(key.lstrip("+~").rsplit(".", 1)[-1]))


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment's secret-looking variables, longest first."""
    environ = os.environ if environ is None else environ
    values = {
        v
        for k, v in environ.items()
        if (k.startswith(ENV_PREFIX) or SECRET_KEY_PATTERN.search(k))
        and isinstance(v, str)
        and len(v) >= MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret value of the environment (:func:`secret_values`) as ``***``."""
    if not isinstance(text, str):
        return text
    for value in secret_values(environ):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact(tree: Any) -> Any:
    """A copy of a plain config tree with the values under secret keys replaced by ``***`` and
    secret values found anywhere else scrubbed (:func:`scrub`)."""
    if isinstance(tree, Mapping):
        return {
            k: REDACTED if is_secret_key(str(k)) and v is not None else redact(v)
            for k, v in tree.items()
        }
    if isinstance(tree, list | tuple):
        return [redact(v) for v in tree]
    if isinstance(tree, str):
        return scrub(tree)
    return tree


class _ScrubFilter(logging.Filter):
    """Scrubs secret values from a log record's message (args merged into it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = scrub(str(record.exc_info[1]))
            if text != str(record.exc_info[1]):
                record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = _ScrubFilter()


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Scrub secret values from every record the handlers of ``logger`` (root) and of the
    project's loggers write (``train.log``, the console). Idempotent."""
    roots = [logger or logging.getLogger()]
    for root in roots:
        for handler in root.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def redact_overrides(overrides: Sequence[str]) -> list[str]:
    """Overrides with the value of every secret key replaced by ``***`` (and secret values found
    in others, e.g. resolved from ``${oc.env:...}``, scrubbed)."""
    out = []
    for override in overrides:
        key, sep, _ = override.partition("=")
        out.append(f"{key}={REDACTED}" if sep and is_secret_key(key) else scrub(override))
    return out


def _env_name(key: str) -> str:
    bare = key.lstrip("+~")
    if bare.startswith(ENV_SET):  # the job's own variable: set it, reference it
        return bare[len(ENV_SET) :]
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", bare).upper()


def _format(value: Any) -> str:
    """A parsed Hydra override value written back as override text."""
    if isinstance(value, _EnvRef):
        return f"${{oc.env:{value.name}}}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    text = str(value)
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"


class _EnvRef:
    def __init__(self, name: str) -> None:
        self.name = name


def _hide_in_mapping(
    key: str, value: Mapping[str, Any], environ: MutableMapping[str, str]
) -> tuple[Any, bool]:
    """``value`` with its secret entries moved into ``environ``; whether any was."""
    changed = False
    out: dict[str, Any] = {}
    bare = key.lstrip("+~")
    for k, v in value.items():
        path = f"{bare}.{k}"
        if isinstance(v, Mapping):
            out[k], sub = _hide_in_mapping(path, v, environ)
            changed |= sub
        elif (
            is_secret_key(str(k))
            and v is not None
            and not (isinstance(v, str) and v.startswith("${"))
        ):
            name = _env_name(path)
            environ[name] = str(v)
            out[k] = _EnvRef(name)
            changed = True
        else:
            out[k] = v
    return out, changed


def _parse_mapping(arg: str) -> Mapping[str, Any] | None:
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        override = OverridesParser.create().parse_override(arg)
        value = override.value()
    except Exception:
        return None
    return value if isinstance(value, Mapping) else None


def hide_secret_overrides(
    argv: Sequence[str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """``key=value`` with a secret key → ``key=${oc.env:VAR}``, ``VAR=value`` in ``environ``.

    ``VAR`` is the variable itself for ``hydra.job.env_set.VAR`` (the job gets it either way),
    ``RECSIM_SECRET_<KEY>`` otherwise. A mapping value (``'++hydra.job.env_set={KEY: ...}'``,
    ``'+logger.sinks.x={token: ...}'``) has each secret entry replaced the same way. Values that
    already are interpolations, flags and the program name are left as they are.
    """
    environ = os.environ if environ is None else environ
    out = [argv[0]] if argv else []
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if not sep or arg.startswith("-"):
            out.append(arg)
            continue
        if value.lstrip().startswith("{"):
            mapping = _parse_mapping(arg)
            if mapping is not None:
                hidden, changed = _hide_in_mapping(key, mapping, environ)
                out.append(f"{key}={_format(hidden)}" if changed else arg)
                continue
        if not is_secret_key(key) or value.startswith("${"):
            out.append(arg)
            continue
        name = _env_name(key)
        environ[name] = value
        out.append(f"{key}=${{oc.env:{name}}}")
    return out
