#!/usr/bin/env python3
"""Whether two run directories hold the same run: samples.jsonl, metrics.jsonl, eval.jsonl and
summary.json with wall times left out, and every snapshot and checkpoint file byte for byte.
Used to check that a refactoring changes nothing (docs/lab_notebook.md, 2026-12-07).

    scripts/compare_runs.py OLD_RUN NEW_RUN

Prints one line per file set and OK / NOT OK (snapshots and records must match; checkpoint
differences are listed, since a checkpoint format may change on purpose).
"""
import json, sys, os, hashlib, pathlib
TIME_KEYS={"times","tokens_per_s","train_seconds","wall_s","seconds","elapsed_s"}
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in TIME_KEYS and not k.endswith("_s")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
def lines(p):
    return [strip(json.loads(l)) for l in open(p) if l.strip()]
old, new = map(pathlib.Path, sys.argv[1:3])
ok = True
for f in ["samples.jsonl", "metrics.jsonl", "eval.jsonl"]:
    same = lines(old/f) == lines(new/f)
    ok &= same
    print(f, "same" if same else "DIFFERENT")
a = json.load(open(old/"summary.json")); b = json.load(open(new/"summary.json"))
same = strip(a) == strip(b); ok &= same; print("summary.json", "same" if same else "DIFFERENT")
def files(root, sub):
    d = root/sub
    return sorted(p.relative_to(root) for p in d.rglob("*") if p.is_file()) if d.exists() else []
for sub in ["snapshots", "checkpoint"]:
    fo, fn = files(old, sub), files(new, sub)
    if fo != fn:
        ok = False; print(sub, "file lists differ"); continue
    diff = [str(p) for p in fo if (old/p).read_bytes() != (new/p).read_bytes()]
    print(sub, len(fo), "files,", "all byte-identical" if not diff else f"differ: {diff}")
    if diff and sub == "snapshots": ok = False
print("OK" if ok else "NOT OK")
