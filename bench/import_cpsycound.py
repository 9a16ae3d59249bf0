"""Time parsing the CPsyCounD folder (3,134 files) with annotation.parsers.parse_path.

Usage: python bench/import_cpsycound.py [--repeat N] [--data DIR]
The data folder defaults to $MI_SHARED_DATA or <repo>/../shared/data. Prints dialogues, rounds,
content duplicates and seconds per parse (best and median of N), and the ratio of the best time
to the 10-second budget the import issue sets.

With ``--worker`` (issue 13) it times the whole background import instead: a zip of the folder is
uploaded to the import page (Django's test client, in this process: no network transfer) on PostgreSQL,
and the ``annotation.run_import`` task imports it — see ``bench/import_worker.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a plain script from anywhere

from annotation.parsers import content_duplicate_groups, find_content_duplicates, parse_path  # noqa: E402

BUDGET_SECONDS = 10.0


def main() -> int:
    default_data = Path(os.environ.get("MI_SHARED_DATA") or REPO / ".." / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed parses (default 5)")
    parser.add_argument("--data", type=Path, default=default_data, help="shared data folder")
    parser.add_argument("--worker", action="store_true",
                        help="time the upload request and the import task on PostgreSQL (bench/import_worker.py; "
                             "its options follow, see --worker --help)")
    args, rest = parser.parse_known_args()
    if args.worker:
        import import_worker

        return import_worker.main(["--data", str(args.data), "--repeat", str(args.repeat), *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    folder = args.data / "CPsyCounD" / "Data"
    if not folder.is_dir():
        print(f"CPsyCounD not found at {folder}; set MI_SHARED_DATA or pass --data", file=sys.stderr)
        return 2

    seconds = []
    result = None
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        result = parse_path(folder)
        seconds.append(time.perf_counter() - start)

    dialogues = result.dialogues
    best = min(seconds)
    print(f"folder        {folder.resolve()}")
    print(f"dialogues     {len(dialogues)}")
    print(f"rounds        {sum(d.rounds for d in dialogues)}")
    groups = content_duplicate_groups(dialogues)
    print(
        f"content dups  {len(find_content_duplicates(dialogues))} repeats of an earlier dialogue "
        f"({sum(map(len, groups))} files in {len(groups)} group(s))"
    )
    print(f"seconds       best {best:.3f}  median {statistics.median(seconds):.3f}  (n={len(seconds)})")
    print(f"dialogues/s   {len(dialogues) / best:,.0f}")
    print(f"best / budget {best / BUDGET_SECONDS:.3f}  (budget {BUDGET_SECONDS:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
