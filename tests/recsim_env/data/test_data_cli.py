"""recsim-data: fetch / path / list, exit codes and messages."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from recsim_env.data import cli
from recsim_env.data.fetch import FetchError

ROOT = Path(__file__).resolve().parents[3]


def test_console_script_declared() -> None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["recsim-data"] == "recsim_env.data.cli:main"


def test_path_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path))
    assert cli.main(["path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)
    assert cli.main(["path", "movielens-100k"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "movielens-100k")
    assert cli.main(["path", "movielens-100k", "--check"]) == 1
    err = capsys.readouterr().err
    assert "ml-100k.inter: missing" in err and "recsim-data fetch movielens-100k" in err
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"data home: {tmp_path}" in out and "movielens-100k: ml-100k.inter missing" in out
    assert "no redistribution" in out


def test_path_check_passes_on_verified_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import dataclasses

    from recsim_env.data.fetch import DATASETS

    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path))
    d = tmp_path / "movielens-100k"
    d.mkdir()
    sums = {}
    for f in DATASETS["movielens-100k"].files:
        (d / f).write_bytes(f.encode())
        sums[f] = hashlib.sha256(f.encode()).hexdigest()
    monkeypatch.setitem(
        DATASETS, "movielens-100k", dataclasses.replace(DATASETS["movielens-100k"], files=sums)
    )
    assert cli.main(["path", "movielens-100k", "--check"]) == 0
    assert cli.main(["list"]) == 0
    assert "movielens-100k: present, verified" in capsys.readouterr().out


def test_fetch_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    seen = {}

    def ok(name, **kwargs):
        seen.update(kwargs, name=name)
        return tmp_path / name

    monkeypatch.setattr(cli, "fetch", ok)
    assert cli.main(["fetch", "movielens-100k", "--force", "--quiet"]) == 0
    assert seen == {"name": "movielens-100k", "force": True, "quiet": True, "url": None}
    assert capsys.readouterr().out.strip() == str(tmp_path / "movielens-100k")

    def broken(name, **kwargs):
        raise FetchError("could not fetch 'movielens-100k'. Tried: ...")

    monkeypatch.setattr(cli, "fetch", broken)
    assert cli.main(["fetch", "movielens-100k"]) == 1
    assert "recsim-data: error: could not fetch 'movielens-100k'" in capsys.readouterr().err
    for argv in (["fetch", "ml-1m"], ["nope"], []):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
    assert "invalid choice: 'ml-1m'" in capsys.readouterr().err


def test_module_runs(tmp_path: Path) -> None:
    env = {"RECSIM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "recsim_env.data.cli", "path", "movielens-100k"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == str(tmp_path / "movielens-100k")
