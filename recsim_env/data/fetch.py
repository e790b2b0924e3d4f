"""Public data sets on the user's machine: where they live, and how the project's own code gets them.

GroupLens' terms forbid redistributing MovieLens, so the project never ships or commits it: every user
fetches it, into a per-user data directory (:func:`data_home`), never into the repository. Two
sources, tried in order, so that a machine that cannot reach one still gets the data:

1. GroupLens' own download (``ml-100k.zip``), converted to RecBole's atomic files;
2. the ``recbole==1.2.1`` wheel from PyPI (``pip download --no-deps``), which ships the same three
   files under ``recbole/dataset_example/ml-100k/``.

Whatever the source, the files written are byte-identical to the canonical ones: each is checked
against its SHA-256 before anything is written, and written atomically (temporary file, then rename)
so an interrupted fetch never leaves a half file that a later run would trust. This module needs
only the standard library (no pandas), so ``recsim-data`` starts fast.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recsim_env.validation import ConfigError

ENV_VAR = "RECSIM_DATA_DIR"
DEFAULT_TIMEOUT_S = 10.0
_CHUNK = 1 << 16


class FetchError(RuntimeError):
    """A data set could not be obtained; the message says what was tried and how to fix it."""


def data_home() -> Path:
    """Where data sets are cached: ``$RECSIM_DATA_DIR`` if set, else ``$XDG_DATA_HOME/recsim-env``,
    else ``~/.local/share/recsim-env`` (the XDG default). Not created here."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "recsim-env"


def dataset_dir(name: str) -> Path:
    """``data_home()/<name>``: where :func:`fetch` puts the data set's files."""
    return data_home() / _spec(name).name


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ MovieLens-100K: GroupLens zip

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_TITLE_YEAR = re.compile(r"^(.*) \(([^()]*)\)$")


def _member(zf: zipfile.ZipFile, basename: str) -> bytes:
    for info in zf.infolist():
        if info.filename == basename or info.filename.endswith("/" + basename):
            return zf.read(info)
    raise FetchError(f"the archive has no member {basename!r}")


def convert_grouplens_100k(archive: bytes) -> dict[str, bytes]:
    """GroupLens' ``ml-100k.zip`` -> the three RecBole atomic files, written the way RecBole 1.2.1
    ships them (so their checksums match): ``u.data`` as is under a typed header; ``u.item``'s
    title split into title and the year in its last parentheses, the genre flags as a
    space-separated ``class`` list in u.item's genre order, Latin-1 re-encoded as UTF-8; ``u.user``
    tab-separated. RecBole writes ``unkonwn`` (sic) for the one item without a title; so do we."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        data = _member(zf, "u.data").decode("ascii")
        item = _member(zf, "u.item").decode("latin-1")
        user = _member(zf, "u.user").decode("ascii")
    inter_lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter_lines += [line.rstrip("\r") for line in data.split("\n") if line.strip()]
    item_lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    for line in item.split("\n"):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 5 + len(ML100K_GENRES):
            raise FetchError(f"u.item: unexpected line {line!r}")
        m = _TITLE_YEAR.match(parts[1].strip())
        title, year = (m.group(1), m.group(2)) if m else ("unkonwn", "unkonwn")
        flags = parts[5:]
        genres = " ".join(g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1")
        item_lines.append(f"{parts[0]}\t{title}\t{year}\t{genres}")
    user_lines = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    user_lines += [
        line.rstrip("\r").replace("|", "\t") for line in user.split("\n") if line.strip()
    ]
    return {
        "ml-100k.inter": ("\n".join(inter_lines) + "\n").encode("utf-8"),
        "ml-100k.item": ("\n".join(item_lines) + "\n").encode("utf-8"),
        "ml-100k.user": ("\n".join(user_lines) + "\n").encode("utf-8"),
    }


# ------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Dataset:
    """A fetchable data set: its canonical files with their SHA-256, and where to get them."""

    name: str
    description: str
    files: Mapping[str, str]  # file name -> SHA-256 of its canonical bytes
    url: str | None = None  # the publisher's own download
    convert: Callable[[bytes], dict[str, bytes]] | None = None  # download -> {file name: bytes}
    wheel: str | None = None  # "package==version" on PyPI whose wheel ships the files
    wheel_filename: str | None = None
    wheel_sha256: str | None = None
    wheel_members: Mapping[str, str] = field(default_factory=dict)  # file name -> member path
    terms: str = ""


DATASETS: dict[str, Dataset] = {
    "movielens-100k": Dataset(
        name="movielens-100k",
        description=(
            "MovieLens-100K: 100,000 ratings 1-5 by 943 users of 1,682 movies (19 genres), "
            "users' age/gender/occupation, Sept 1997 - Apr 1998 (GroupLens)"
        ),
        files={
            "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
            "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
            "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
        },
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        convert=convert_grouplens_100k,
        wheel="recbole==1.2.1",
        wheel_filename="recbole-1.2.1-py3-none-any.whl",
        wheel_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        wheel_members={
            f"ml-100k.{ext}": f"recbole/dataset_example/ml-100k/ml-100k.{ext}"
            for ext in ("inter", "item", "user")
        },
        terms=(
            "GroupLens' terms: research use, no redistribution; cite Harper & Konstan (2015), "
            "The MovieLens Datasets, ACM TiiS. https://grouplens.org/datasets/movielens/100k/"
        ),
    ),
}


def _spec(name: str) -> Dataset:
    if name not in DATASETS:
        raise ConfigError(
            f"invalid dataset={name!r} (allowed: one of {', '.join(map(repr, DATASETS))})"
        )
    return DATASETS[name]


# ------------------------------------------------------------------------------------- helpers


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"recsim-data: {msg}", file=sys.stderr, flush=True)


def verify(name: str, directory: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Check a data set's files: {file name: "ok" | "missing" | "checksum mismatch (...)"}."""
    spec = _spec(name)
    d = Path(directory) if directory is not None else dataset_dir(name)
    status = {}
    for fname, digest in spec.files.items():
        p = d / fname
        if not p.is_file():
            status[fname] = "missing"
        else:
            got = sha256_file(p)
            status[fname] = "ok" if got == digest else f"checksum mismatch (sha256 {got})"
    return status


def is_present(name: str, directory: str | os.PathLike[str] | None = None) -> bool:
    """Every canonical file there, with the right SHA-256."""
    return all(v == "ok" for v in verify(name, directory).values())


def _check_files(spec: Dataset, files: Mapping[str, bytes], source: str) -> None:
    for fname, digest in spec.files.items():
        if fname not in files:
            raise FetchError(f"{source} gave no {fname}")
        got = sha256_bytes(files[fname])
        if got != digest:
            raise FetchError(f"{source}: {fname} has sha256 {got}, expected {digest}")


def _write_atomic(directory: Path, files: Mapping[str, bytes]) -> None:
    """Each file to a temporary name in the same directory, fsync'd, then renamed over the target:
    a reader sees the old file or the whole new one, never a half-written one. (Created with
    ``open(..., "xb")`` rather than mkstemp so the file gets the umask's usual permissions.)"""
    directory.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        tmp = directory / f".{fname}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, directory / fname)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _download(url: str, timeout: float, quiet: bool) -> bytes:
    """The body of ``url`` (in memory: the archives are a few MB), with byte-count progress."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = resp.headers.get("Content-Length")
        total_n = int(total) if total and total.isdigit() else None
        buf = io.BytesIO()
        next_report = 0
        while True:
            chunk = resp.read(_CHUNK)
            if not chunk:
                break
            buf.write(chunk)
            n = buf.tell()
            if n >= next_report:
                of = f" of {total_n:,}" if total_n else ""
                _say(quiet, f"  {n:,}{of} bytes")
                next_report = n + (1 << 20)
    data = buf.getvalue()
    if total_n is not None and len(data) != total_n:
        raise FetchError(f"download truncated: {len(data):,} of {total_n:,} bytes")
    _say(quiet, f"  downloaded {len(data):,} bytes")
    return data


def _pip_download(requirement: str, dest: Path, quiet: bool) -> None:
    """``python -m pip download --no-deps <requirement> -d <dest>`` with this interpreter's pip (so
    its index, proxy and certificate settings apply). Raises FetchError with pip's own words."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        requirement,
        "-d",
        str(dest),
    ]
    if quiet:
        cmd.append("-q")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FetchError(f"`{' '.join(cmd[1:4])} ...` could not run: {e}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FetchError(f"pip download exited with {proc.returncode}: {' | '.join(tail)}")


def _from_grouplens(spec: Dataset, url: str, timeout: float, quiet: bool) -> dict[str, bytes]:
    assert spec.convert is not None
    _say(quiet, f"trying GroupLens: {url} (timeout {timeout:g} s)")
    try:
        archive = _download(url, timeout, quiet)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(f"could not download {url}: {reason}") from None
    try:
        files = spec.convert(archive)
    except (zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise FetchError(f"{url} is not the expected archive: {e}") from None
    _check_files(spec, files, f"GroupLens ({url}, converted)")
    return files


def _from_wheel(spec: Dataset, quiet: bool) -> dict[str, bytes]:
    assert spec.wheel is not None
    _say(quiet, f"trying PyPI: pip download --no-deps {spec.wheel}")
    with tempfile.TemporaryDirectory(prefix="recsim-data-") as tmp:
        _pip_download(spec.wheel, Path(tmp), quiet)
        wheels = sorted(Path(tmp).glob("*.whl"))
        wanted = [w for w in wheels if w.name == spec.wheel_filename] or wheels
        if not wanted:
            raise FetchError(f"pip download of {spec.wheel} produced no wheel")
        wheel = wanted[0]
        data = wheel.read_bytes()
        _say(quiet, f"  got {wheel.name} ({len(data):,} bytes)")
    if spec.wheel_sha256 is not None:
        got = sha256_bytes(data)
        if got != spec.wheel_sha256:
            raise FetchError(
                f"{wheel.name} has sha256 {got}, expected {spec.wheel_sha256} (not the wheel the "
                "checksums were taken from)"
            )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            files = {fname: zf.read(member) for fname, member in spec.wheel_members.items()}
    except (zipfile.BadZipFile, KeyError) as e:
        raise FetchError(f"{wheel.name}: cannot extract the data files: {e}") from None
    _check_files(spec, files, f"{spec.wheel} wheel")
    return files


def _source_tree() -> Path | None:
    """The project's checkout when running from one (pyproject.toml beside the package), else None
    (an installed package lives in site-packages, where there is nothing to commit)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / ".git").exists() else None


def _refuse_repo(directory: Path) -> None:
    root = _source_tree()
    if root is not None and directory.resolve().is_relative_to(root):
        raise FetchError(
            f"refusing to write data into the repository ({directory} is under {root}): the "
            f"data's terms forbid committing it. Set {ENV_VAR} to a directory outside the checkout."
        )


def _manual_help(spec: Dataset, directory: Path) -> str:
    lines = [
        f"To fix: place the files in {directory} by hand (names and SHA-256):",
        *(f"  {fname}  {digest}" for fname, digest in spec.files.items()),
    ]
    if spec.wheel:
        members = ", ".join(spec.wheel_members.values())
        lines.append(
            f"  e.g. on a machine with internet: `pip download --no-deps {spec.wheel}` and unzip "
            f"{members} from the wheel"
        )
    lines.append(f"  or point {ENV_VAR} at a directory that holds {spec.name}/ with them.")
    return "\n".join(lines)


def fetch(
    name: str = "movielens-100k",
    *,
    force: bool = False,
    quiet: bool = False,
    url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    sources: tuple[str, ...] = ("grouplens", "pypi"),
) -> Path:
    """Make sure data set ``name`` is in ``data_home()/<name>/`` and return that directory.

    If its canonical files are there with the right SHA-256 (and not ``force``), nothing is
    downloaded. Otherwise the publisher's download (``url`` overrides it, e.g. a local mirror; short
    connect timeout ``timeout`` seconds so an unreachable host fails fast) and then the PyPI wheel
    are tried, in the order of ``sources``; the first whose files all match their checksums is
    written (atomically). Progress (source, bytes) goes to stderr unless ``quiet``. Raises
    :class:`FetchError` saying what was tried, why each failed, and how to place the files by hand.
    """
    spec = _spec(name)
    directory = dataset_dir(name)
    if not force:
        status = verify(name, directory)
        if all(v == "ok" for v in status.values()):
            _say(quiet, f"{name}: present and verified in {directory}")
            return directory
        bad = {f: s for f, s in status.items() if s != "ok" and s != "missing"}
        if bad:
            _say(quiet, f"{name}: refetching, {'; '.join(f'{f}: {s}' for f, s in bad.items())}")
    _refuse_repo(directory)
    unknown = [s for s in sources if s not in ("grouplens", "pypi")]
    if unknown or not sources:
        raise FetchError(f"invalid sources={sources!r} (allowed: 'grouplens', 'pypi')")
    tried: list[str] = []
    for source in sources:
        try:
            if source == "grouplens":
                if spec.url is None and url is None:
                    continue
                src_url = url or spec.url
                assert src_url is not None
                files = _from_grouplens(spec, src_url, timeout, quiet)
                label = f"GroupLens ({src_url})"
            else:
                if spec.wheel is None:
                    continue
                files = _from_wheel(spec, quiet)
                label = f"the {spec.wheel} wheel on PyPI"
        except FetchError as e:
            _say(quiet, f"  failed: {e}")
            tried.append(f"- {source}: {e}")
            continue
        _write_atomic(directory, files)
        total = sum(len(b) for b in files.values())
        _say(
            quiet, f"{name}: wrote {len(files)} files ({total:,} bytes) from {label} to {directory}"
        )
        if spec.terms:
            _say(quiet, spec.terms)
        return directory
    raise FetchError(
        f"could not fetch {name!r} into {directory}. Tried:\n"
        + "\n".join(tried)
        + "\n"
        + _manual_help(spec, directory)
    )
