"""Every code block of the documentation is executed or checked (issue 20), so that a renamed key,
module or argument breaks a test, not a reader:

* ``python`` blocks run as written (each on its own, in a temporary working directory);
* ``yaml`` blocks parse;
* ``bash`` blocks: every ``recsim-train`` command line is composed with Hydra's compose API against
  ``conf/`` with its overrides (each value of a swept key in turn, the sweeper's own grid of an
  ``experiment=`` preset included) and checked for unknown keys by the runner's own
  :func:`~experiments.run.config.explain_unknown_override`, without running the experiment;
  ``recsim-compare`` / ``recsim-tune`` / ``recsim-data`` / ``recsim-calibrate`` lines are parsed by
  their own argument parsers; ``python -m MODULE`` / ``python path.py`` lines must name a module or
  file that exists.

A block can opt out with ``<!-- docs-test: skip REASON -->`` above it (the reason shows in the
skip), or be marked ``<!-- docs-test: slow -->``. ``docs_blocks.py`` finds the blocks.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex

import pytest
import yaml
from docs_blocks import ROOT, Block, all_blocks, shell_commands
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from experiments.run.config import CONF_DIR, explain_unknown_override

BLOCKS = all_blocks()
SHELL = ("bash", "sh", "shell", "console")
# launchers of the optional extras ([ray], [slurm]): their lines are checked where installed
LAUNCHER_PLUGINS = {
    "ray": "hydra_plugins.hydra_ray_launcher",
    "ray_cluster": "hydra_plugins.hydra_ray_launcher",
    "slurm": "hydra_plugins.hydra_submitit_launcher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
}


def _param(block: Block):
    marks = []
    if block.directive == "skip":
        marks.append(pytest.mark.skip(reason=f"{block.id}: {block.reason or 'marked skip'}"))
    elif block.directive == "slow":
        marks.append(pytest.mark.slow)
    return pytest.param(block, id=block.id, marks=marks)


def _of(*langs: str) -> list:
    return [_param(b) for b in BLOCKS if b.lang in langs]


def test_the_docs_have_blocks_of_each_kind():
    langs = {b.lang for b in BLOCKS}
    assert {"python", "bash", "yaml"} <= langs, langs
    # a skip marker always says why
    assert all(b.reason for b in BLOCKS if b.directive == "skip")


@pytest.mark.parametrize("block", _of("python", "py"))
def test_python_block_runs(block: Block, tmp_path, monkeypatch):
    # a block may refer to the repository's files (examples/plugin) or write its own (logs/)
    for name in ("examples", "conf"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.syspath_prepend(str(ROOT))
    namespace = {"__name__": "__docs__"}
    exec(compile(block.code, block.id, "exec"), namespace)


@pytest.mark.parametrize("block", _of("yaml", "yml"))
def test_yaml_block_parses(block: Block):
    assert yaml.safe_load(block.code) is not None or not block.code.strip()


# --- shell blocks -----------------------------------------------------------------------------


def _placeholders(word: str) -> str:
    """``<date>``, ``<dir>``, ``$PWD``: stand-ins a reader replaces, here a plain word."""
    word = word.replace("$PWD", str(ROOT)).replace("'$PWD'", str(ROOT))
    return re.sub(r"<[^<>\s]*>", "x", word)


def _train_overrides(words: list[str]) -> list[str] | None:
    """The Hydra overrides of a ``recsim-train`` line, or ``None`` for a line with nothing to
    compose (``--help``)."""
    if any(w in ("--help", "-h", "--hydra-help") for w in words):
        return None
    overrides = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in ("--cfg", "-c", "--package", "-p"):
            skip_next = True
            continue
        if re.fullmatch(r"<[^<>]*>", word):
            continue  # a stand-in for the reader's own overrides
        if word.startswith("-"):
            continue  # -m / --multirun: the sweep's values are composed one by one below
        word = _placeholders(word)
        if word.startswith("resume="):
            value = word.split("=", 1)[1]
            # a path: the run's own groups come from its run.json (cli.route_resume_argv)
            word = "resume=true" if value.lower() not in ("true", "false") else word
        overrides.append(word)
    return overrides


@functools.cache
def _composed(overrides: tuple[str, ...]):
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def _compose(overrides: list[str]):
    try:
        return _composed(tuple(overrides))
    except Exception as exc:  # the runner's own explanation of an unknown key, where it has one
        plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
        message = explain_unknown_override(CONF_DIR, "config", plain)
        raise AssertionError(f"{shlex.join(overrides)}: {message or exc}") from exc


def _expand_sweeps(overrides: list[str]) -> list[list[str]]:
    """One override list per value of each swept config group (``agent=dqn,linucb``: each option
    composes), the others at their first value; a swept key (``agent.lr=1e-3,1e-4``) needs one
    value to show that the key exists. Never the product of the grid."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    firsts, choices = [], []
    for text, override in zip(overrides, parsed, strict=True):
        if override.is_sweep_override():
            key = override.get_key_element()
            values = [f"{key}={v}" for v in override.sweep_string_iterator()]
            if "." in key.lstrip("+~"):
                values = values[:1]
            firsts.append(values[0])
            choices.append(values)
        else:
            firsts.append(text)
            choices.append([text])
    lists = [firsts]
    for i, values in enumerate(choices):
        for value in values[1:]:
            lists.append([*firsts[:i], value, *firsts[i + 1 :]])
    return lists


def check_recsim_train(words: list[str]) -> str | None:
    """Compose a ``recsim-train`` command line; ``None`` if checked, else why it was not."""
    overrides = _train_overrides(words)
    if overrides is None:
        return None
    for word in overrides:
        if word.startswith("hydra/launcher="):
            plugin = LAUNCHER_PLUGINS.get(word.split("=", 1)[1])
            if plugin and importlib.util.find_spec(plugin) is None:
                return f"{word} needs {plugin} (an optional extra), not installed here"
    for one in _expand_sweeps(overrides):
        cfg = _compose(one)
        # an experiment preset's own grid: each of its values composes too
        grid = {str(k): str(v) for k, v in (cfg.hydra.sweeper.get("params") or {}).items()}
        for key, values in grid.items():
            for value in _expand_sweeps([f"{key}={values}"]):
                _compose([*one, *value])
    return None


def _parser(module: str):
    mod = importlib.import_module(module)
    for name in ("build_parser", "make_parser", "parser", "_parser", "_build_parser"):
        factory = getattr(mod, name, None)
        if callable(factory):
            return factory()
    return None


TOOLS = {
    "recsim-compare": "experiments.analysis.compare.cli",
    "recsim-tune": "experiments.tune.cli",
    "recsim-data": "recsim_env.data.cli",
    "recsim-calibrate": "recsim_env.calibrate.cli",
    "recsim-bench": "experiments.bench.cli",
}


def check_tool(head: str, args: list[str]) -> str | None:
    parser = _parser(TOOLS[head])
    if parser is None:
        return f"{TOOLS[head]} exposes no argument parser to check against"
    if head == "recsim-tune":  # Hydra overrides after the options: compose them too
        known, rest = parser.parse_known_args([_placeholders(a) for a in args])
        if rest:
            check_recsim_train(rest)
        return None
    try:
        parser.parse_args([_placeholders(a) for a in args])
    except SystemExit as exc:
        pytest.fail(f"{head} {shlex.join(args)}: rejected by its parser (exit {exc.code})")
    return None


def check_command(command: str) -> str | None:
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words:
        return None
    head = words[0].removeprefix(".venv/bin/")
    if head == "recsim-train":
        return check_recsim_train(words[1:])
    if head in TOOLS:
        return check_tool(head, words[1:])
    if head == "make":  # the targets exist
        makefile = (ROOT / "Makefile").read_text()
        for target in (w for w in words[1:] if "=" not in w and not w.startswith("-")):
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make target {target}"
        return None
    if head in ("python", "python3") and len(words) > 1:
        if words[1] == "-m":
            module = words[2]
            assert importlib.util.find_spec(module) is not None, f"{command}: no module {module}"
        elif words[1].endswith(".py"):
            assert (ROOT / words[1]).is_file(), f"{command}: no file {words[1]}"
        return None
    return f"{head}: not checked"


@pytest.mark.parametrize("block", _of(*SHELL))
def test_shell_block_commands_compose(block: Block, monkeypatch):
    monkeypatch.chdir(ROOT)  # file:// search paths in the docs are relative to the repository
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin"))
    unchecked = []
    for command in shell_commands(block.code):
        why = check_command(command)
        if why:
            unchecked.append(why)
    if len(unchecked) == len(shell_commands(block.code)):
        pytest.skip("; ".join(unchecked))
