"""``python -m mls.vectors FILE [FILE ...] [--kind KIND]``: checks vector files.

Prints ``FILE: N passed, M failed, K skipped`` per file with the first differing field of each
failure, then a total line; exits 1 if anything failed or a kind is not implemented.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import KINDS, SKIPS, KindNotImplemented, Mismatch, case_id, checker, kind_of, load_cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mls.vectors", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--kind", choices=sorted(KINDS), help="override the kind the file name implies")
    args = parser.parse_args(argv)
    total_pass = total_fail = total_skip = 0
    bad = False
    for path in args.files:
        try:
            kind = args.kind or kind_of(path)
            cases = load_cases(path)
            check = checker(kind)
        except KeyError:
            print(f"{path}: unknown vector kind; pass --kind")
            bad = True
            continue
        except KindNotImplemented:
            print(f"{path}: kind {kind!r} is not implemented yet")
            bad = True
            continue
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read: {exc}")
            bad = True
            continue
        passed = failed = skipped = 0
        for i, case in enumerate(cases):
            cid = case_id(path, i, case)
            reason = SKIPS.get((path.name, i))
            if reason:
                skipped += 1
                print(f"  {cid}: skipped: {reason}")
                continue
            try:
                check(case)
            except Mismatch as exc:
                failed += 1
                print(f"  {cid}: FAILED: {exc}")
            except Exception as exc:  # noqa: BLE001 - reported, then counted as a failure
                failed += 1
                print(f"  {cid}: FAILED: {type(exc).__name__}: {exc}")
            else:
                passed += 1
        print(f"{path}: {passed} passed, {failed} failed, {skipped} skipped")
        total_pass += passed
        total_fail += failed
        total_skip += skipped
    print(f"{total_pass} passed, {total_fail} failed" + (f", {total_skip} skipped" if total_skip else ""))
    return 1 if (total_fail or bad) else 0


if __name__ == "__main__":
    sys.exit(main())
