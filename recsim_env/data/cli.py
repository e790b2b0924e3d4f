"""``recsim-data``: fetch public data sets into the user's data directory and say where they are.

    recsim-data fetch movielens-100k [--force] [--quiet]   # download, verify, cache
    recsim-data path [NAME]                                 # print data_home() or its NAME dir
    recsim-data list                                        # known data sets, present or not

Exit codes: 0 done; 1 the fetch failed (the message says what was tried and how to fix it) or a
data set is missing/corrupt for ``path --check``; 2 a usage error (unknown command or name).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recsim_env.data.fetch import DATASETS, ENV_VAR, FetchError, data_home, fetch, verify


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recsim-data",
        description="Fetch public interaction logs (never committed: their terms forbid it) into "
        f"the user's data directory (${ENV_VAR}, else $XDG_DATA_HOME/recsim-env, else "
        "~/.local/share/recsim-env).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{fetch,path,list}")
    f = sub.add_parser("fetch", help="download and verify a data set (GroupLens, else PyPI)")
    f.add_argument("name", choices=sorted(DATASETS), metavar="NAME", help=", ".join(DATASETS))
    f.add_argument("--force", action="store_true", help="download again even if present")
    f.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    f.add_argument(
        "--url", default=None, help="download from this URL instead of the publisher's (a mirror)"
    )
    pa = sub.add_parser("path", help="print the data directory, or a data set's directory")
    pa.add_argument("name", nargs="?", choices=sorted(DATASETS), metavar="NAME")
    pa.add_argument(
        "--check", action="store_true", help="exit 1 unless the data set's files are verified"
    )
    sub.add_parser("list", help="list the known data sets and whether each is present")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "fetch":
        try:
            path = fetch(args.name, force=args.force, quiet=args.quiet, url=args.url)
        except FetchError as e:
            print(f"recsim-data: error: {e}", file=sys.stderr)
            return 1
        print(path)
        return 0
    if args.command == "path":
        if args.name is None:
            print(data_home())
            return 0
        print(data_home() / args.name)
        if args.check:
            status = verify(args.name)
            bad = {f: s for f, s in status.items() if s != "ok"}
            if bad:
                for f, s in bad.items():
                    print(f"recsim-data: {f}: {s}", file=sys.stderr)
                print(f"recsim-data: run `recsim-data fetch {args.name}`", file=sys.stderr)
                return 1
        return 0
    # list
    print(f"data home: {data_home()}")
    for name, spec in DATASETS.items():
        status = verify(name)
        state = (
            "present, verified"
            if all(s == "ok" for s in status.values())
            else ", ".join(f"{f} {s}" for f, s in status.items() if s != "ok")
        )
        print(f"{name}: {state}\n  {spec.description}\n  {spec.terms}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
