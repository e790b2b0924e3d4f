"""MkDocs hook of the recsim-env documentation (``hooks:`` in ``mkdocs.yml``).

Two jobs, both so that the pages cannot drift from the code:

* ``<!-- agent-keys: NAME -->`` in a page becomes the table of option ``NAME``'s config keys and
  defaults, read from where each default is defined (``agents/catalog.py`` says where: a config
  dataclass, an SB3 ``Param`` table or a baseline's ``__init__``); a dataclass field's note is the
  source comment beside it or just above it. ``<!-- agent-options -->`` becomes the table of every
  ``agent=`` option. Nothing is retyped: renaming a key renames it on the site.
* A relative link that leaves the docs folder (``../experiments/run/resume.py``) becomes the path
  in the repository as code, after checking that the file exists there: a link to a file that was
  moved or renamed fails the strict build instead of pointing nowhere.

The functions are importable on their own (``tests/docs`` uses them without MkDocs).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import logging
import re
import tokenize
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
log = logging.getLogger("mkdocs.hooks.recsim_docs")

_KEYS = re.compile(r"<!--\s*agent-keys:\s*([A-Za-z0-9_]+)\s*-->")
_OPTIONS = re.compile(r"<!--\s*agent-options\s*-->")
_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`" if value else "`''`"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | tuple):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, float) and value and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"`{value:g}`"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"`{value:_}`".replace("_", ",")
    return f"`{value}`"


def _cell(text: str) -> str:
    """Text for a table cell: a ``|`` of the source (``mse | huber``) must not end the cell."""
    return text.replace("|", "\\|")


def field_comments(cls: type) -> dict[str, str]:
    """Source comments of a dataclass's fields (inline, else the comment lines just above), over
    its MRO so that inherited fields keep the comment of the class that defines them."""
    notes: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        above: list[str] = []
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        lines = source.splitlines()
        comments = {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*[^=]+(=|$)", stripped)
            if stripped.startswith("#"):
                text = stripped.lstrip("#").strip()
                above = [] if text.startswith("---") else [*above, text]
                continue
            if match and line.startswith("    ") and not line.startswith("        "):
                inline = comments.get(number)
                if inline and not inline.lstrip("#").strip().startswith("type:"):
                    notes[match.group(1)] = inline.lstrip("#").strip()
                elif above:
                    notes[match.group(1)] = " ".join(above)
                above = []
            elif stripped:
                above = []
    return notes


def _source_of(name: str) -> tuple[Any, str]:
    from agents.catalog import AGENTS, _resolve

    option = AGENTS[name]
    return _resolve(option.defaults), option.defaults


def agent_keys_table(name: str) -> str:
    """The markdown table of option ``name``'s own keys (those of the option it extends are in
    that option's table)."""
    from agents.catalog import AGENTS, agent_defaults

    option = AGENTS[name]
    source, where = _source_of(name)
    defaults = agent_defaults(name, inherited=False)
    module, _, attr = where.partition(":")
    intro = f"`agent={name}` builds `{option.target}`; defaults defined in `{module}.{attr}`"
    if option.extends:
        intro += f"; it takes every key of `agent={option.extends}` as well, plus:"
    else:
        intro += ":"
    if dataclasses.is_dataclass(source):
        notes = field_comments(source)
        rows = [f"| `{k}` | {_fmt(v)} | {_cell(notes.get(k, ''))} |" for k, v in defaults.items()]
        head = "| key | default | note (from the source) |\n|---|---|---|"
    elif isinstance(source, dict):
        rows = []
        for key, value in defaults.items():
            param = source[key]
            sb3 = f"`{param.sb3_name}`" if getattr(param, "sb3_name", None) else ""
            sb3_default = (
                _fmt(param.sb3_default) if getattr(param, "sb3_default", None) is not None else ""
            )
            rows.append(f"| `{key}` | {_fmt(value)} | {sb3} | {sb3_default} |")
        head = "| key | default | SB3 name (if other) | SB3's default |\n|---|---|---|---|"
    else:
        rows = [f"| `{k}` | {_fmt(v)} |" for k, v in defaults.items()]
        head = "| key | default |\n|---|---|"
    if not rows:
        return intro.rstrip(":") + " (no keys of its own)."
    return intro + "\n\n" + head + "\n" + "\n".join(rows) + "\n"


def agent_options_table() -> str:
    """Every ``agent=`` option: its class, where its defaults live, what it extends."""
    from agents.catalog import AGENTS

    rows = [
        f"| `{name}` | `{o.target}` | `{o.defaults.replace(':', '.')}` | "
        f"{f'`{o.extends}`' if o.extends else ''} |"
        for name, o in AGENTS.items()
    ]
    return (
        "| `agent=` | class | defaults defined in | extends |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


_GROUPS = re.compile(r"<!--\s*conf-groups\s*-->")
GROUPS = ("env", "agent", "logger", "protocol", "experiment", "sweep", "hydra/launcher")


def _yaml_summary(path: Path) -> str:
    """The first sentence of a YAML file's leading comment (``# @package`` lines skipped)."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("@package"):
            continue
        if not text:
            break
        words.append(text)
    summary = " ".join(words)
    depth = 0
    for i, char in enumerate(summary):
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(char, 0)
        at_end = i + 1 == len(summary) or summary[i + 1] == " "
        if (
            depth == 0
            and char in ".;:"
            and at_end
            and not summary[: i + 1].endswith(("e.g.", "i.e."))
        ):
            return summary[:i]
    return summary.rstrip(".")


def conf_groups_table() -> str:
    """Every option of the command line's config groups (``conf/<group>/*.yaml``) with the first
    sentence of its own comment."""
    rows = []
    for group in GROUPS:
        for path in sorted((ROOT / "conf" / group).glob("*.yaml")):
            rows.append(f"| `{group}={path.stem}` | {_cell(_yaml_summary(path))} |")
    return "| option | what it is (from its YAML) |\n|---|---|\n" + "\n".join(rows) + "\n"


def expand_markers(markdown: str) -> str:
    markdown = _GROUPS.sub(lambda m: conf_groups_table(), markdown)
    markdown = _OPTIONS.sub(lambda m: agent_options_table(), markdown)
    return _KEYS.sub(lambda m: agent_keys_table(m.group(1)), markdown)


def _outside_code(markdown: str, fix: Any) -> str:
    out, in_code = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        out.append(line if in_code else fix(line))
    return "\n".join(out)


def repo_links(markdown: str, page_path: Path, docs: Path = DOCS) -> tuple[str, list[str]]:
    """Links out of ``docs/`` → the repository path as code; returns the text and the targets
    that do not exist (reported as warnings, i.e. errors under ``--strict``)."""
    missing: list[str] = []

    def fix(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:", target) or target.startswith("/"):
            return match.group(0)
        resolved = (page_path.parent / target).resolve()
        if resolved == docs or docs in resolved.parents:
            return match.group(0)  # inside the site: MkDocs checks it
        if ROOT not in resolved.parents or not resolved.exists():
            missing.append(target)
            return match.group(0)
        rel = resolved.relative_to(ROOT).as_posix()
        return f"`{rel}`" if text.strip("`") == rel else f"{text} (`{rel}`)"

    return _outside_code(markdown, lambda line: _LINK.sub(fix, line)), missing


_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)\)")
_ADJACENT_BRACKETS = re.compile(r"\]([ \t]+)\[")


def plain_brackets(markdown: str) -> str:
    """``[0.1, 0.2] [CI users]`` is two bracketed texts, not a reference link: keep Markdown (and
    mkdocs-autorefs, which would report an unknown reference) from reading it as one."""

    def fix(line: str) -> str:  # not inside `inline code`, where an entity would show as typed
        parts = line.split("`")
        parts[::2] = [_ADJACENT_BRACKETS.sub(r"]&#32;[", p) for p in parts[::2]]
        return "`".join(parts)

    return _outside_code(markdown, fix)


def uncommitted_figures(markdown: str, page_path: Path, docs: Path = DOCS) -> str:
    """A committed study's report lists every figure ``recsim-compare`` drew, but a study commits
    only the ones it discusses: under ``docs/studies/`` an image that is not in the repository is
    shown as a note instead of a broken link (any other missing target still fails the build)."""
    if docs / "studies" not in page_path.parents:
        return markdown

    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^[a-z]+:", target) or (page_path.parent / target).exists():
            return match.group(0)
        log.info("%s: figure %s is not committed", page_path.relative_to(docs), target)
        return f"*(figure not committed with the study: `{target}`)*"

    return _outside_code(markdown, lambda line: _IMAGE.sub(fix, line))


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = expand_markers(markdown)
    docs = Path(config["docs_dir"]).resolve()
    src = docs / page.file.src_path
    markdown = plain_brackets(uncommitted_figures(markdown, src, docs))
    markdown, missing = repo_links(markdown, src, docs)
    for target in missing:
        log.warning("%s links to %s, which is not in the repository", page.file.src_path, target)
    return markdown
