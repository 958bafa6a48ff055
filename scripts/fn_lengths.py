#!/usr/bin/env python3
"""Functions longer than a limit (default 120 lines), tests aside.

    scripts/fn_lengths.py [--max N] [CRATE_DIR ...]   # default: every crates/*

A function runs from its `fn` line to the closing brace at the same indentation. Prints
`lines path:line name` for each one over the limit and exits 1 if there is one.
"""
import pathlib
import re
import sys

FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def long_functions(path, limit):
    lines = path.read_text().splitlines()
    out, i = [], 0
    in_tests = None
    while i < len(lines):
        line = lines[i]
        if re.match(r"^\s*#\[cfg\(test\)\]", line):
            in_tests = len(line) - len(line.lstrip())
        m = FN.match(line)
        if m and not line.rstrip().endswith(";"):
            indent = m.group(1)
            end = i + 1
            while end < len(lines) and not re.match(rf"^{indent}}}", lines[end]):
                end += 1
            n = end - i + 1
            if n > limit and in_tests is None:
                out.append((n, f"{path}:{i + 1}", m.group(2)))
            i = end + 1 if indent == "" else i + 1
            continue
        i += 1
    return out


def main():
    args = sys.argv[1:]
    limit = 120
    if args[:1] == ["--max"]:
        limit, args = int(args[1]), args[2:]
    crates = [pathlib.Path(a) for a in args] or sorted(pathlib.Path("crates").glob("*"))
    found = []
    for crate in crates:
        for p in sorted((crate / "src").rglob("*.rs")):
            found += long_functions(p, limit)
    for n, where, name in sorted(found, reverse=True):
        print(f"{n:5d} {where} {name}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
