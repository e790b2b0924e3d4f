"""fetch: cache check, GroupLens download (a fake zip on a loopback http.server), the recbole wheel
(a fake wheel; pip is monkeypatched), checksums, atomic writes, clear errors. No network outside
127.0.0.1 except the slow test, which fetches the real MovieLens-100K."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import importlib
import io
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from recsim_env.data import DATASETS, FetchError, data_home, fetch, verify
from recsim_env.data.fetch import convert_grouplens_100k

fetch_mod = importlib.import_module(
    "recsim_env.data.fetch"
)  # the module (the package's `fetch` is the function)

NAME = "movielens-100k"
GENRES = "|".join(["0"] * 19)

U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
U_USER = "1|24|M|technician|85711\n2|53|F|other|05201\n"


def _flags(*on: int) -> str:
    f = ["0"] * 19
    for i in on:
        f[i] = "1"
    return "|".join(f)


U_ITEM = (
    f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags(3, 4, 5)}\n"
    f"267|unknown||||{_flags(0)}\n"
    f"543|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|{_flags(8, 12)}\n"
    f"1412|Land Before Time III: The Time of the Great Giving (1995) (V)|01-Jan-1995||x|{_flags(3, 4)}\n"
    f"1682|Scream of Stone (Schrei aus Stein) (1991)|08-Mar-1996||x|{_flags(8)}\n"
)
# what RecBole 1.2.1 ships for these lines (written out by hand from its ml-100k.item)
EXPECTED = {
    "ml-100k.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + U_DATA,
    "ml-100k.item": (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "267\tunkonwn\tunkonwn\tunknown\n"
        "543\tMisérables, Les\t1995\tDrama Musical\n"
        "1412\tLand Before Time III: The Time of the Great Giving (1995)\tV\tAnimation Children's\n"
        "1682\tScream of Stone (Schrei aus Stein)\t1991\tDrama\n"
    ),
    "ml-100k.user": (
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t05201\n"
    ),
}
EXPECTED_BYTES = {k: v.encode("utf-8") for k, v in EXPECTED.items()}
SUMS = {k: hashlib.sha256(v).hexdigest() for k, v in EXPECTED_BYTES.items()}


def _grouplens_zip(u_item: str = U_ITEM) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", U_DATA)
        zf.writestr("ml-100k/u.item", u_item.encode("latin-1"))
        zf.writestr("ml-100k/u.user", U_USER)
        zf.writestr("ml-100k/README", "fake")
    return buf.getvalue()


def _wheel(files: dict[str, bytes] = EXPECTED_BYTES) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
        for fname, data in files.items():
            zf.writestr(f"recbole/dataset_example/ml-100k/{fname}", data)
    return buf.getvalue()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """data_home() in tmp_path; the registry's checksums are those of the fake files; pip must not
    run unless a test says so; loopback never goes through a proxy."""
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    spec = dataclasses.replace(DATASETS[NAME], files=SUMS)
    monkeypatch.setitem(DATASETS, NAME, spec)

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run in this test")

    monkeypatch.setattr(fetch_mod, "_pip_download", no_pip)
    return tmp_path / "data"


class _Server:
    """A loopback HTTP server: path -> bytes; counts requests."""

    def __init__(self, routes: dict[str, bytes]) -> None:
        self.routes = routes
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = outer.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made: list[_Server] = []

    def start(routes: dict[str, bytes]) -> _Server:
        s = _Server(routes)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


def test_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert data_home() == tmp_path / "a"
    monkeypatch.delenv("RECSIM_DATA_DIR")
    assert data_home() == tmp_path / "x" / "recsim-env"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert data_home() == tmp_path / "h" / ".local" / "share" / "recsim-env"


def test_converter_writes_recbole_format() -> None:
    assert convert_grouplens_100k(_grouplens_zip()) == EXPECTED_BYTES


def test_grouplens_download(home: Path, server, capsys) -> None:
    srv = server({"/ml-100k.zip": _grouplens_zip()})
    out = fetch(NAME, url=srv.url + "/ml-100k.zip")
    assert out == home / NAME
    assert {p.name: p.read_bytes() for p in out.iterdir()} == EXPECTED_BYTES  # no temp files left
    err = capsys.readouterr().err
    assert "trying GroupLens: http://127.0.0.1" in err and "bytes" in err and "wrote 3 files" in err
    assert srv.hits == 1
    # present and verified: no download
    assert fetch(NAME, url=srv.url + "/ml-100k.zip", quiet=True) == out and srv.hits == 1
    assert capsys.readouterr().err == ""
    # a corrupted file is noticed and fetched again; force fetches even when all is well
    (out / "ml-100k.user").write_text("user_id:token\n1\n")
    fetch(NAME, url=srv.url + "/ml-100k.zip", quiet=True)
    assert srv.hits == 2 and verify(NAME) == dict.fromkeys(SUMS, "ok")
    fetch(NAME, url=srv.url + "/ml-100k.zip", force=True, quiet=True)
    assert srv.hits == 3


def test_grouplens_checksum_mismatch_then_no_wheel(home: Path, server) -> None:
    tampered = U_ITEM.replace("Toy Story", "Toy Storey")
    srv = server({"/ml-100k.zip": _grouplens_zip(tampered)})
    with pytest.raises(FetchError) as e:
        fetch(NAME, url=srv.url + "/ml-100k.zip", quiet=True, sources=("grouplens",))
    msg = str(e.value)
    assert "ml-100k.item has sha256" in msg and f"expected {SUMS['ml-100k.item']}" in msg
    # the fix is spelled out: where to put which file with which checksum
    assert f"place the files in {home / NAME} by hand" in msg
    assert all(f"{f}  {s}" in msg for f, s in SUMS.items())
    assert not (home / NAME).exists() or not any((home / NAME).iterdir())  # nothing written


def test_unreachable_grouplens_falls_through_to_the_wheel(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    wheel = _wheel()
    spec = dataclasses.replace(DATASETS[NAME], wheel_sha256=hashlib.sha256(wheel).hexdigest())
    monkeypatch.setitem(DATASETS, NAME, spec)
    calls = []

    def fake_pip(requirement: str, dest: Path, quiet: bool) -> None:
        calls.append(requirement)
        (dest / "recbole-1.2.1-py3-none-any.whl").write_bytes(wheel)

    monkeypatch.setattr(fetch_mod, "_pip_download", fake_pip)
    with socket.socket() as s:  # a port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    out = fetch(NAME, url=f"http://127.0.0.1:{port}/ml-100k.zip")
    assert time.perf_counter() - t0 < 5
    assert calls == ["recbole==1.2.1"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == EXPECTED_BYTES
    err = capsys.readouterr().err
    assert "failed: could not download" in err and "trying PyPI: pip download --no-deps" in err


def test_a_host_that_never_answers_times_out(home: Path) -> None:
    with socket.socket() as s:  # listens (the kernel completes the handshake) but never replies
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        t0 = time.perf_counter()
        with pytest.raises(FetchError, match="could not download"):
            fetch(
                NAME,
                url=f"http://127.0.0.1:{s.getsockname()[1]}/x.zip",
                timeout=0.5,
                quiet=True,
                sources=("grouplens",),
            )
        assert time.perf_counter() - t0 < 5


def test_wheel_checksum_and_pip_failures(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_pip(requirement: str, dest: Path, quiet: bool) -> None:
        (dest / "recbole-1.2.1-py3-none-any.whl").write_bytes(_wheel())

    monkeypatch.setattr(fetch_mod, "_pip_download", fake_pip)
    # the registry's wheel checksum is the real wheel's: a different wheel is refused
    with pytest.raises(
        FetchError, match=r"recbole-1.2.1-py3-none-any.whl has sha256 .*expected 9c99"
    ):
        fetch(NAME, quiet=True, sources=("pypi",))
    # right wheel checksum, wrong member: refused too
    bad = _wheel({**EXPECTED_BYTES, "ml-100k.inter": b"tampered"})
    spec = dataclasses.replace(DATASETS[NAME], wheel_sha256=hashlib.sha256(bad).hexdigest())
    monkeypatch.setitem(DATASETS, NAME, spec)
    monkeypatch.setattr(
        fetch_mod,
        "_pip_download",
        lambda r, d, q: (d / "recbole-1.2.1-py3-none-any.whl").write_bytes(bad),
    )
    with pytest.raises(FetchError, match=r"recbole==1\.2\.1 wheel: ml-100k\.inter has sha256"):
        fetch(NAME, quiet=True, sources=("pypi",))

    # pip itself fails (no network): both sources are reported, then the manual fix
    def failing_pip(requirement: str, dest: Path, quiet: bool) -> None:
        raise FetchError("pip download exited with 1: ERROR: No matching distribution found")

    monkeypatch.setattr(fetch_mod, "_pip_download", failing_pip)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError) as e:
        fetch(NAME, quiet=True, url=f"http://127.0.0.1:{port}/z.zip")
    msg = str(e.value)
    assert "- grouplens: could not download" in msg
    assert "- pypi: pip download exited with 1: ERROR: No matching distribution" in msg
    assert "pip download --no-deps recbole==1.2.1" in msg and "RECSIM_DATA_DIR" in msg


def test_pip_download_runs_this_interpreter(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import subprocess
    import sys

    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network is unreachable\n")

    monkeypatch.setattr(fetch_mod.subprocess, "run", fake_run)
    with pytest.raises(FetchError, match="exited with 1: ERROR: network is unreachable"):
        fetch_mod._pip_download("recbole==1.2.1", tmp_path, True)
    assert seen["cmd"][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert "recbole==1.2.1" in seen["cmd"] and str(tmp_path) in seen["cmd"]


def test_interrupted_write_leaves_no_half_file(home: Path, monkeypatch, server) -> None:
    srv = server({"/ml-100k.zip": _grouplens_zip()})
    real_replace = fetch_mod.os.replace
    done = []

    def flaky_replace(src, dst):
        if len(done) == 1:
            raise KeyboardInterrupt  # interrupted between the first and second file
        done.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(fetch_mod.os, "replace", flaky_replace)
    with pytest.raises(KeyboardInterrupt):
        fetch(NAME, url=srv.url + "/ml-100k.zip", quiet=True, sources=("grouplens",))
    names = sorted(p.name for p in (home / NAME).iterdir())
    assert names == ["ml-100k.inter"]  # whole, verified; no .part file, no half file
    assert verify(NAME)["ml-100k.inter"] == "ok" and verify(NAME)["ml-100k.item"] == "missing"


def test_never_writes_into_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(fetch_mod.__file__).resolve().parents[2]
    if fetch_mod._source_tree() is None:
        pytest.skip("not running from a checkout")
    monkeypatch.setenv("RECSIM_DATA_DIR", str(root / "data"))
    monkeypatch.setattr(fetch_mod, "_pip_download", lambda *a: pytest.fail("pip ran"))
    with pytest.raises(FetchError, match="refusing to write data into the repository"):
        fetch(NAME, quiet=True)
    assert not (root / "data").exists()


def test_unknown_name() -> None:
    with pytest.raises(
        ValueError, match=r"invalid dataset='ml-1m' \(allowed: one of 'movielens-100k'\)"
    ):
        fetch("ml-1m")


@pytest.mark.slow
def test_real_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real thing: GroupLens if reachable, else the recbole wheel from PyPI."""
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path))
    try:
        out = fetch(NAME, timeout=10)
    except FetchError as e:
        pytest.skip(f"MovieLens-100K cannot be fetched from this machine: {e}")
    assert verify(NAME) == dict.fromkeys(DATASETS[NAME].files, "ok")
    assert sorted(p.name for p in out.iterdir()) == sorted(DATASETS[NAME].files)
