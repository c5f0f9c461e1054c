"""Fit a device call under its 64 MiB: leave out what a training slice does not read.

A call to the lent GPU machine sends every file git tracks, every untracked file it
does not ignore, and the carried folders, 64 MiB at most. The shipped weights (~32 MiB)
plus ``carry/`` (BSD400 and MiniLM, ~49 MiB) no longer fit. A restorer slice reads two
weight folders (the restorer it continues and the perception whose tokens it is
conditioned on), so ``on`` takes the other weight folders, the tests and the benchmarks
out of the index and ignores them in ``.git/info/exclude``; ``off`` puts both back. The
files themselves stay where they are, and no commit is touched.

    python scripts/device/slim.py size                        # what a call would send
    python scripts/device/slim.py on restorer perception-v1   # keep these weights
    ... the device call, carrying carry ...
    python scripts/device/slim.py off
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = Path("src/vlir/weights")
ALSO_LEFT_OUT = ("tests", "benchmarks")
CARRY = ROOT / "carry"
LIMIT_MIB = 64
MARK = "# scripts/device/slim.py: left out of device calls until `slim.py off`"
EXCLUDE = ROOT / ".git" / "info" / "exclude"


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def sent_mib() -> float:
    """What a call sends: the index's files, untracked files not ignored, and carry/."""
    listed = git("ls-files", "-z").split("\0") + git(
        "ls-files", "-z", "--others", "--exclude-standard"
    ).split("\0")
    paths = {ROOT / name for name in listed if name}
    paths |= {path for path in CARRY.rglob("*") if path.is_file()}
    return sum(path.stat().st_size for path in paths if path.is_file()) / 2**20


def excluded_lines() -> list[str]:
    return EXCLUDE.read_text().splitlines() if EXCLUDE.exists() else []


def left_out_now() -> list[str]:
    lines = excluded_lines()
    if MARK not in lines:
        return []
    return [line.strip("/") for line in lines[lines.index(MARK) + 1 :] if line.startswith("/")]


def slim(keep: list[str]) -> None:
    if left_out_now():
        raise SystemExit("already slimmed: run `slim.py off` first")
    if git("diff", "--cached", "--name-only").strip():
        raise SystemExit("the index has staged changes: commit or unstage them first")
    folders = sorted(p.name for p in (ROOT / WEIGHTS).iterdir() if p.is_dir())
    unknown = sorted(set(keep) - set(folders))
    if unknown:
        have = ", ".join(folders)
        raise SystemExit(f"no weight folder named {', '.join(unknown)} (have: {have})")
    paths = [str(WEIGHTS / name) for name in folders if name not in keep]
    paths += [name for name in ALSO_LEFT_OUT if (ROOT / name).exists()]
    git("rm", "-r", "-q", "--cached", "--", *paths)
    EXCLUDE.parent.mkdir(parents=True, exist_ok=True)
    lines = excluded_lines() + [MARK] + [f"/{path}/" for path in paths]
    EXCLUDE.write_text("\n".join(lines) + "\n")
    print(f"left out: {', '.join(paths)}")
    print("their removal is staged: commit nothing until `slim.py off`")


def unslim() -> None:
    paths = left_out_now()
    if not paths:
        print("nothing is left out")
        return
    git("reset", "-q", "--", *paths)
    lines = excluded_lines()
    EXCLUDE.write_text("".join(line + "\n" for line in lines[: lines.index(MARK)]))
    print(f"back in the index: {', '.join(paths)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("size")
    on = sub.add_parser("on")
    on.add_argument("keep", nargs="+", help="weight folders the slice reads")
    sub.add_parser("off")
    args = parser.parse_args(argv)
    if args.command == "on":
        slim(args.keep)
    elif args.command == "off":
        unslim()
    size = sent_mib()
    print(f"a device call now sends {size:.1f} MiB (limit {LIMIT_MIB})")
    if size > LIMIT_MIB:
        sys.exit(1)


if __name__ == "__main__":
    main()
