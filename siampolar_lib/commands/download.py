"""The full DAVIS-2016 (480p) for a learner who has none: `siampolar-download` (what `make data` runs).

The command line over `siampolar_lib.data.download`: arguments, output checks, one call into the library."""
from __future__ import annotations

import os
from pathlib import Path

from siampolar_lib.commands.cli import ArgumentParser, cli_main
from siampolar_lib.data.download import ARCHIVE_NAME, DAVIS_URL, download_davis
from siampolar_lib.errors import UserError
from siampolar_lib.paths import LOCAL_DAVIS, davis_available, davis_root


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input or no connection, with one line)."""
    ap = ArgumentParser(prog="siampolar-download", description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default=None, help=f"where the DAVIS folder goes (default: {LOCAL_DAVIS})")
    ap.add_argument("--archive", default=None, help=f"a {ARCHIVE_NAME} you already have: verify and unpack it, "
                                                     "download nothing")
    ap.add_argument("--url", default=DAVIS_URL, help=f"where to download from (default: {DAVIS_URL})")
    ap.add_argument("--overwrite", action="store_true", help="replace the DAVIS folder already at --dest")
    ap.add_argument("--if-missing", action="store_true",
                    help="do nothing when the course already finds a DAVIS folder (at --dest, else "
                         "paths.davis_root()); what `make data` runs")
    ap.add_argument("--retries", type=int, default=3, help="tries to resume after a broken connection (default 3)")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = ap.parse_args(argv)
    if args.retries < 0:
        raise UserError(f"--retries {args.retries}: give 0 or more")
    found = davis_root(args.dest)
    if args.if_missing and davis_available(found):
        print(f"DAVIS is already at {found}; nothing to download")
        return 0
    done = download_davis(args.dest, url=args.url, archive=args.archive, overwrite=args.overwrite,
                          progress=not args.no_progress, retries=args.retries)
    print(done.describe())
    if Path(os.path.abspath(davis_root())) != done.dest:
        print(f"note: the course reads {davis_root()} ($SIAMPOLAR_DAVIS_ROOT); set SIAMPOLAR_DAVIS_ROOT={done.dest} "
              "to use this copy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
