"""The documentation site's structure: every id, agent option and page is where a reader looks for
it, the generated key tables read the real defaults, and (slow) the strict build passes."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_hooks"))
import recsim_docs  # noqa: E402  (the MkDocs hook, importable on its own)

sys.path.remove(str(DOCS / "_hooks"))


def _nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            out.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return out


def mkdocs_config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *a: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = _nav_pages(mkdocs_config()["nav"])
    assert all((DOCS / page).is_file() for page in nav), nav
    ours = [p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")]
    ours += [p.relative_to(DOCS).as_posix() for p in (DOCS / "reference").glob("*.md")]
    assert sorted(set(ours) - set(nav)) == []
    # each committed study's main page is linked from the nav
    for study in ("adaptive", "warm_start", "gamma", "recovery", "grounding", "sim2real"):
        assert any(p.startswith(f"studies/{study}/") for p in nav), study


def test_every_registered_id_is_on_the_envs_page():
    import recsim_env

    page = (DOCS / "envs.md").read_text()
    assert [i for i in recsim_env.ENV_IDS if f"`{i}`" not in page] == []


def test_every_agent_option_has_its_generated_key_table():
    from agents.catalog import AGENTS, agent_defaults

    page = (DOCS / "agents.md").read_text()
    marked = re.findall(r"<!--\s*agent-keys:\s*(\w+)\s*-->", page)
    assert sorted(marked) == sorted(AGENTS)
    assert "<!-- agent-options -->" in page
    # the table is what the catalogue says, key for key, with the source's notes
    table = recsim_docs.agent_keys_table("dqn")
    for key in agent_defaults("dqn"):
        assert f"| `{key}` |" in table
    assert "| `tau` | `0.005` | per target update: 1.0 hard copy" in table
    assert "constant \\| linear" in table  # a | of the source does not split the cell
    sb3 = recsim_docs.agent_keys_table("sb3_dqn")
    assert "`learning_rate`" in sb3 and "`buffer_size` | `100,000` |" in sb3
    adaptive = recsim_docs.agent_keys_table("adaptive_dqn")
    assert "every key of `agent=dqn`" in adaptive and "| `gamma` |" not in adaptive


def test_links_out_of_the_docs_name_files_that_exist():
    page = DOCS / "x.md"
    text, missing = recsim_docs.repo_links(
        "[the resume](../experiments/run/resume.py) and [gone](../no/such_file.py)", page
    )
    assert "`experiments/run/resume.py`" in text and missing == ["../no/such_file.py"]


def test_the_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if not re.match(r"^[a-z]+:", target):
            assert (ROOT / target).exists(), target
    assert "make run" in readme and "make test" in readme


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocstrings") is None
    ):
        pytest.skip('mkdocs is not installed (pip install -e ".[docs]")')
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip


@pytest.mark.slow
def test_the_strict_build_passes_and_fails_on_a_broken_link_or_api_reference(tmp_path):
    result = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "agents" / "index.html").is_file()
    # the same site with one bad page: a link to a page that does not exist, then an API
    # reference that does not resolve; each alone fails the strict build
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    for plugin in config["plugins"]:  # the API's source: this checkout, wherever the copy is
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    for name, page, expected in (
        ("link", "[gone](no-such-page.md)", "no-such-page.md"),
        ("api", "::: recsim_env.no_such_module", "recsim_env.no_such_module"),
    ):
        docs = tmp_path / name / "docs"
        shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("__pycache__"))
        (docs / "bad.md").write_text(f"# Bad\n\n{page}\n")
        config.update(docs_dir=str(docs), hooks=[str(DOCS / "_hooks" / "recsim_docs.py")])
        (tmp_path / name / "mkdocs.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
        result = _build(tmp_path / name / "mkdocs.yml", tmp_path / name / "site")
        assert result.returncode != 0, f"{name}: the strict build passed"
        assert expected in result.stderr + result.stdout, (result.stderr + result.stdout)[-3000:]
