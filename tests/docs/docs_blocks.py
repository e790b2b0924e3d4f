"""The code blocks of the documentation (``docs/**/*.md`` and ``README.md``), for the tests that run
them.

A block is a fenced block with a language. Directives, in an HTML comment on the line just above
the fence (blank lines allowed between), tell the tests what to do with it:

* ``<!-- docs-test: skip REASON -->``: not run here, for the reason given (e.g. a block that is
  run by a test of its own with the data it needs, or a command that needs a network);
* ``<!-- docs-test: slow -->``: run only by ``make test-slow``.

``--8<-- "path"`` lines (pymdownx.snippets, relative to the repository's root) are replaced by the
file, as the site shows them: an included example is run as it is in the repository.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)[^\n]*$")
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<kind>skip|slow)\b\s*(?P<reason>.*?)\s*-->")
_SNIPPET = re.compile(r'^(?P<indent>[ \t]*)--8<--\s+"(?P<path>[^"]+)"\s*$')


@dataclass(frozen=True)
class Block:
    path: Path  # the markdown file
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    directive: str | None = None  # "skip" | "slow" | None
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def doc_files() -> list[Path]:
    return sorted([*DOCS.rglob("*.md"), ROOT / "README.md"])


def expand_snippets(code: str) -> str:
    out = []
    for line in code.split("\n"):
        match = _SNIPPET.match(line)
        if match:
            included = (ROOT / match.group("path")).read_text()
            out.extend(match.group("indent") + x for x in included.rstrip("\n").split("\n"))
        else:
            out.append(line)
    return "\n".join(out)


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text().split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent, lang = match.group("fence"), match.group("indent"), match.group("lang")
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            i += 1
        i += 1
        directive, reason = None, ""
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0:
            found = _DIRECTIVE.search(lines[j])
            if found:
                directive, reason = found.group("kind"), found.group("reason")
        if lang:
            code = expand_snippets("\n".join(body))
            blocks.append(Block(path, start + 1, lang.lower(), code, directive, reason))
    return blocks


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in blocks_of(path)]


def shell_commands(code: str) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and prompts dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for raw in joined.split("\n"):
        line = raw.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = shlex.split(line.split(" #", 1)[0])
        if words and words[-1] == "&":
            words = words[:-1]
        if words:
            commands.append(shlex.join(words))
    return commands
