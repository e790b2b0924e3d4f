"""Validate a composed run config before anything is built, with messages a user can act on.

Hydra already rejects an unknown group option (``agent=dqnn``: it lists the available options) and an
override of a key that does not exist (``seeed=1``: "Key 'seeed' is not in struct"). What gets
through composition — a key added with ``+``, a misspelled key inside an experiment file, a value of
the right type but out of range — is caught here: each section becomes a typed dataclass whose
construction checks every value, and an unknown key is reported with the allowed ones and the
closest match. Agent and env kwargs are validated by their own constructors (``ValueError`` naming
the parameter); :func:`instantiate_checked` makes those messages name the config key too.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.analysis.schema import summary_metric_names
from experiments.run.secrets import redact
from recsim_env.validation import ConfigError, check_bool, check_int, check_keys, check_real, fail

# The conf dir by absolute path: "../conf" would be looked up as a Python package ("conf") when
# recsim-train is imported by its console script rather than run as a file.
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

__all__ = [
    "CONF_DIR",
    "ConfigError",
    "EnvConfig",
    "ProtocolConfig",
    "RunConfig",
    "TopLevelConfig",
    "check_keys",
    "explain_unknown_override",
    "instantiate_checked",
    "summary_metric_names",
    "validate",
]


# The sections below are the *schema* of the runner's config: the names, the types and the allowed
# values. Their values, defaults included, come from the YAML in conf/ (the one source of
# defaults): no field here has a default, so the two can never disagree.


@dataclass(frozen=True)
class ProtocolConfig:
    """The lifelong run protocol (``conf/protocol/*.yaml``). All step counts are user-steps."""

    total_steps: int
    log_every: int  # online metrics are aggregated over windows of this many user-steps
    eval_every: int  # 0: no periodic evaluation
    eval_episodes: int  # sessions (one per eval user, run in parallel) per evaluation
    eval_seed: int  # evaluation i draws its users with seed (eval_seed, i)
    final_eval: bool  # evaluate once more at the end (eval/* in summary.json)
    ndcg_k: int
    checkpoint_every: int  # 0: only at the end
    keep_checkpoints: int
    checkpoint_replay: bool  # agents whose save() can include their replay buffer do so
    lifelong_window: int  # smoothing window (user-steps) of the forgetting/plasticity metrics
    # drift recovery on ground truth (experiments/run/recovery.py; conf/protocol/default.yaml)
    recovery: bool
    recovery_baseline: int
    recovery_horizon: int
    recovery_sustain: int
    recovery_tolerance: float
    recovery_counterfactual: bool

    def __post_init__(self) -> None:
        check_int("protocol.total_steps", self.total_steps, 1)
        check_int("protocol.log_every", self.log_every, 1)
        check_int("protocol.eval_every", self.eval_every, 0)
        check_int("protocol.eval_episodes", self.eval_episodes, 1)
        check_int("protocol.eval_seed", self.eval_seed, 0)
        check_bool("protocol.final_eval", self.final_eval)
        check_int("protocol.ndcg_k", self.ndcg_k, 1)
        check_int("protocol.checkpoint_every", self.checkpoint_every, 0)
        check_int("protocol.keep_checkpoints", self.keep_checkpoints, 1)
        check_bool("protocol.checkpoint_replay", self.checkpoint_replay)
        check_int("protocol.lifelong_window", self.lifelong_window, 1)
        check_bool("protocol.recovery", self.recovery)
        check_int("protocol.recovery_baseline", self.recovery_baseline, 1)
        check_int("protocol.recovery_horizon", self.recovery_horizon, 1)
        check_int("protocol.recovery_sustain", self.recovery_sustain, 1, self.recovery_horizon)
        check_real("protocol.recovery_tolerance", self.recovery_tolerance, 0.0, 1.0, hi_open=True)
        check_bool("protocol.recovery_counterfactual", self.recovery_counterfactual)


@dataclass(frozen=True)
class EnvConfig:
    """``conf/env/*.yaml``: a registered id, the number of parallel users, simulator kwargs, and
    the training env's ``autoreset_mode`` (``same_step``, conf/'s default, as every run before it
    was an option; or ``next_step``, Gymnasium's: see recsim_env/core_autoreset.py)."""

    id: str
    num_envs: int
    kwargs: dict[str, Any]
    autoreset_mode: str

    def __post_init__(self) -> None:
        import gymnasium

        import recsim_env  # noqa: F401 — registers the ids

        registered = sorted(k for k in gymnasium.registry if k.startswith("recsim_env/"))
        if self.id not in gymnasium.registry:
            fail("env.id", self.id, f"a registered env id, one of {registered}")
        check_int("env.num_envs", self.num_envs, 1)
        if not isinstance(self.kwargs, Mapping):
            fail("env.kwargs", self.kwargs, "a mapping of simulator parameters")
        from recsim_env.core_autoreset import AUTORESET_MODES

        if self.autoreset_mode not in AUTORESET_MODES:
            fail("env.autoreset_mode", self.autoreset_mode, " or ".join(AUTORESET_MODES))

    def make_kwargs(self) -> dict[str, Any]:
        """The kwargs to pass to the simulator: ``null`` means "the simulator's default"."""
        return {k: v for k, v in self.kwargs.items() if v is not None}


@dataclass(frozen=True)
class TopLevelConfig:
    """The top-level keys of ``conf/config.yaml``."""

    seed: int
    torch_threads: int
    resume: bool | str
    optimize_metric: str
    progress: bool
    trust_checkpoints: bool  # load cloudpickled (SB3) checkpoints on resume: this command's choice

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("torch_threads", self.torch_threads, 1)
        if not isinstance(self.resume, bool | str):
            fail("resume", self.resume, "true, false or the path of a run directory")
        if isinstance(self.resume, str) and not Path(self.resume).is_dir():
            fail("resume", self.resume, "true, false or the path of an existing run directory")
        allowed = summary_metric_names()
        if self.optimize_metric not in allowed:
            fail("optimize_metric", self.optimize_metric, f"one of {allowed}")
        check_bool("progress", self.progress)
        check_bool("trust_checkpoints", self.trust_checkpoints)


TOP_LEVEL_SECTIONS = ("env", "agent", "logger", "protocol")
MAX_SEED = 2**32 - 1  # numpy's legacy global seed (np.random.seed) takes no more


def _target_importable(key: str, target: Any, *, optional_dependency: bool = False) -> None:
    """``target`` names an importable attribute. With ``optional_dependency`` a module that exists
    but needs a package that is not installed (the W&B sink without ``wandb``) passes: the runner
    skips that sink with a warning; a misspelled module or class is an error either way."""
    if not isinstance(target, str) or "." not in target:
        fail(key, target, "a dotted path 'package.module.Class'")
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        ours = module_name == missing or module_name.startswith(missing + ".") if missing else True
        if optional_dependency and not ours:
            return
        raise ConfigError(
            f"invalid config value {key}={target!r}: cannot import {module_name!r} ({exc})"
        ) from exc
    if not hasattr(module, attr):
        raise ConfigError(f"invalid config value {key}={target!r}: {module_name!r} has no {attr!r}")


def _check_flags(key: str, node: Mapping[str, Any]) -> None:
    """A value for a constructor parameter typed ``bool`` must be a boolean: ``'false'`` (a string,
    which Python's ``bool()`` would make True) and ``2`` are refused with the key named."""
    try:
        module_name, _, attr = str(node["_target_"]).rpartition(".")
        params = inspect.signature(getattr(importlib.import_module(module_name), attr)).parameters
    except Exception:  # not introspectable: the constructor checks its own values
        return
    for name, param in params.items():
        annotation = str(param.annotation).replace("Optional[bool]", "bool | None")
        if name in node and annotation in ("bool", "bool | None", "<class 'bool'>"):
            value = node[name]
            if value is None and "None" in annotation:
                continue
            check_bool(f"{key}.{name}", value)


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


@dataclass(frozen=True)
class RunConfig:
    """The typed sections of a run's config (``agent`` and ``logger`` are built by Hydra)."""

    top: TopLevelConfig
    env: EnvConfig
    protocol: ProtocolConfig


def _section(cls: type[Any], key: str, node: Mapping[str, Any]) -> Any:
    """``cls(**node)`` after checking that ``node`` has exactly ``cls``'s keys."""
    names = [f.name for f in fields(cls)]
    check_keys(key, node, names)
    missing = [n for n in names if n not in node]
    if missing:
        where = f"{key}." if key else ""
        raise ConfigError(
            f"the config does not set {', '.join(where + m for m in missing)} "
            f"(conf/{key or 'config'}{'/<option>' if key else ''}.yaml must)"
        )
    return cls(**{n: node[n] for n in names})


def validate(cfg: DictConfig) -> RunConfig:
    """Check a composed config; return its typed sections. Raises :class:`ConfigError`."""
    try:
        root = _plain(cfg)
    except Exception as exc:  # interpolation errors, missing mandatory values (???)
        raise ConfigError(f"cannot resolve the config: {exc}") from exc
    top_fields = [f.name for f in fields(TopLevelConfig)]
    check_keys("", root, [*top_fields, *TOP_LEVEL_SECTIONS])
    for section in TOP_LEVEL_SECTIONS:
        if section not in root or not isinstance(root[section], Mapping):
            raise ConfigError(
                f"the config has no {section!r} section (select one with {section}=<option>)"
            )
    top = _section(TopLevelConfig, "", {k: root[k] for k in top_fields if k in root})
    env = _section(EnvConfig, "env", root["env"])
    protocol_node = dict(root["protocol"])
    parts = protocol_node.pop("parts", None)  # built by experiments.run.parts (none: the default)
    protocol = _section(ProtocolConfig, "protocol", protocol_node)
    if parts is not None and not isinstance(parts, Mapping):
        fail("protocol.parts", parts, "a mapping of part name to part config")
    for name, part in (parts or {}).items():
        if part is None:
            continue  # a part switched off with protocol.parts.<name>=null
        if not isinstance(part, Mapping) or "_target_" not in part:
            fail(f"protocol.parts.{name}", redact(part), "a part config with a '_target_'")
        _target_importable(f"protocol.parts.{name}._target_", part["_target_"])

    agent = root["agent"]
    if "_target_" not in agent:
        raise ConfigError("agent has no '_target_' (select an agent with agent=<option>)")
    _target_importable("agent._target_", agent["_target_"])
    _check_flags("agent", agent)
    if isinstance(agent.get("inner"), Mapping) and "_target_" in agent["inner"]:
        _check_flags("agent.inner", agent["inner"])

    logger = root["logger"]
    check_keys("logger", logger, ["sinks"])
    sinks = logger.get("sinks") or {}
    if not isinstance(sinks, Mapping):
        fail("logger.sinks", sinks, "a mapping of sink name to sink config")
    for name, sink in sinks.items():
        if sink is None:
            continue  # a sink switched off with logger.sinks.<name>=null
        if not isinstance(sink, Mapping) or "_target_" not in sink:
            fail(f"logger.sinks.{name}", redact(sink), "a sink config with a '_target_'")
        _target_importable(
            f"logger.sinks.{name}._target_", sink["_target_"], optional_dependency=True
        )
    return RunConfig(top=top, env=env, protocol=protocol)


def instantiate_checked(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)`` with errors that name the config key.

    The runtime objects in ``kwargs`` (the env, a sink's context) are passed to the constructor as
    they are (through a partial), never merged into the config. An unexpected keyword (a misspelled
    hyperparameter) lists the accepted ones; a ``ValueError``/``TypeError`` from the constructor (a
    value out of range) is prefixed with the config section.
    """
    import hydra
    from hydra.errors import InstantiationException

    target = node.get("_target_", "?")
    try:
        factory = hydra.utils.instantiate(node, _partial_=True)
    except InstantiationException as exc:
        raise ConfigError(f"invalid {key} config ({key}._target_={target}): {exc}") from exc
    try:
        return factory(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            bad = str(exc).split("unexpected keyword argument")[-1].strip(" '\"")
            nested = _nested_unknown(node, key, str(target), bad, str(exc))
            if nested is not None:
                raise ConfigError(nested) from exc
            accepted = _accepted_kwargs(str(target))
            close = difflib.get_close_matches(bad, accepted, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown config key {key}.{bad} for {target}{hint}; accepted: {accepted}"
            ) from exc
        raise ConfigError(f"invalid {key} config for {target}: {_describe(exc)}") from exc
    except ValueError as exc:
        raise ConfigError(f"invalid {key} config for {target}: {_describe(exc)}") from exc


def _nested_unknown(node: Any, key: str, target: str, bad: str, message: str) -> str | None:
    """The message for a keyword that a *nested* mapping passed on (``agent.sb3_kwargs.foo`` →
    SB3's ``DQN``): it names the key's real path and what the mapping takes. ``None`` if ``bad``
    is a top-level key of ``node`` or in no nested mapping."""
    tree = _plain(node)
    if not isinstance(tree, Mapping) or bad in tree:
        return None
    paths: list[str] = []

    def walk(sub: Any, prefix: str) -> None:
        if isinstance(sub, Mapping):
            for k, v in sub.items():
                if k == bad and prefix:
                    paths.append(f"{prefix}{k}")
                walk(v, f"{prefix}{k}.")

    walk(tree, "")
    if not paths:
        return None
    path = f"{key}.{paths[0]}"
    section = path.rsplit(".", 1)[0]
    callee = message.split("()", 1)[0].strip().split()[-1] if "()" in message else ""
    owner = callee.rsplit(".", 1)[0] if callee.endswith("__init__") else callee
    receiver = _class_attribute_named(target, owner)
    if receiver is None:
        return f"unknown config key {path}: {callee or target} takes no argument {bad!r}"
    params = [
        p
        for p, spec in inspect.signature(receiver).parameters.items()
        if p not in ("self", "env", "policy")
        and not p.startswith("_")
        and p not in tree  # set through the section's own keys
        and spec.kind is not spec.VAR_KEYWORD
    ]
    close = difflib.get_close_matches(bad, params, n=1)
    hint = f" (did you mean {section}.{close[0]}?)" if close else ""
    name = f"{receiver.__module__.split('.')[0]}.{receiver.__qualname__}"
    return (
        f"unknown config key {path}: {name} takes no argument {bad!r}{hint}; {section} passes "
        f"arguments on to {name}, which takes (besides those {key}'s own keys set): {params}"
    )


def _class_attribute_named(target: str, name: str) -> Any:
    """The class that ``target``'s class refers to under the name ``name`` (e.g. SB3's ``DQN`` of
    our ``SB3DQN.algorithm``), or ``None``."""
    if not name:
        return None
    try:
        module_name, _, attr = target.rpartition(".")
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception:
        return None
    for value in vars(cls).values() if isinstance(cls, type) else ():
        if isinstance(value, type) and value.__name__ == name:
            return value
    for klass in getattr(cls, "__mro__", ())[1:]:
        for value in vars(klass).values():
            if isinstance(value, type) and value.__name__ == name:
                return value
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)


def _accepted_kwargs(target: str) -> list[str]:
    try:
        module_name, _, attr = target.rpartition(".")
        obj = getattr(importlib.import_module(module_name), attr)
        params = inspect.signature(obj).parameters
    except Exception:
        return []
    return [
        p
        for p, spec in params.items()
        if p not in ("self", "env") and spec.kind is not spec.VAR_KEYWORD
    ]


def explain_unknown_override(
    config_dir: str | Path, config_name: str, overrides: list[str]
) -> str | None:
    """A helpful message when a command-line override names a key that does not exist.

    Hydra's own message ("Key 'lrr' is not in struct") names the key but not the alternatives; this
    composes the command line's plain overrides once (sweeps and ``hydra.*`` left out) and, if a key
    is unknown, returns a message with the keys allowed at that place and the closest match.
    ``None`` when there is nothing to explain (Hydra reports any other problem itself).
    """
    import re

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if GlobalHydra.instance().is_initialized():
        return None
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None  # Hydra reports syntax errors itself
    plain = [
        o.input_line
        for o in parsed
        if o.input_line is not None
        and not o.is_sweep_override()
        and not o.key_or_group.startswith("hydra")
    ]
    try:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            try:
                compose(config_name, overrides=plain)
                return None
            except Exception as exc:
                text = f"{exc}\n{exc.__cause__}"
                match = re.search(r"Key '([^']+)' is not in struct\s+full_key: (\S+)", text)
                if match is None:
                    return None
                full_key = match.group(2)
                bad = [o for o in plain if o.split("=", 1)[0] == full_key]
                cfg = compose(config_name, overrides=[o for o in plain if o not in bad])
    except Exception:
        return None
    parent_key, _, leaf = full_key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    allowed = sorted(str(k) for k in parent) if isinstance(parent, DictConfig) else []
    close = difflib.get_close_matches(leaf, allowed, n=1)
    hint = (
        f"; did you mean {(parent_key + '.' if parent_key else '') + close[0]!r}?" if close else ""
    )
    where = f" in {parent_key}" if parent_key else " at the top level"
    target = OmegaConf.select(cfg, f"{parent_key}._target_") if parent_key else None
    if target:
        where += f" ({target})"
    return (
        f"unknown config key {full_key!r}{hint} allowed keys{where}: {allowed}. "
        f"(To add a key that the config does not list, prefix it with '+': +{full_key}=...)"
    )
