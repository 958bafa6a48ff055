"""The tables of scripts/paper_table.sh, from its reports (standard library only).

    python3 scripts/paper_table.py seed OUT/seed-S        one seed's table, with intervals
    python3 scripts/paper_table.py seeds OUT S1 S2 ...    mean (sd) over seeds, paired claims
    python3 scripts/paper_table.py keep OUT/seed-S DIR    copy the reports a seed's table reads
                                                          (JSON, no weights) to DIR, to commit
    python3 scripts/paper_table.py finished OUT/seed-S    exit 0 when every such report is written

A report still missing (a run going on) shows as "—"; nothing here trains or evaluates.
"""

import json
import os
import shutil
import statistics
import sys

DEFENDERS = ["initial", "rlhf-defender", "gpo", "gpo-nodiv"]
ATTACKERS = ["initial", "rlhf-attacker", "rlhf-attacker-nodiv", "gpo-nodiv", "gpo"]
LABELS = {
    "initial": "initial (SmolLM2-135M-Instruct; defender: its warm start)",
    "rlhf-defender": "RLHF defender",
    "rlhf-attacker": "RLHF attacker",
    "rlhf-attacker-nodiv": "RLHF attacker w/o diversity",
    "gpo-nodiv": "GPO w/o diversity",
    "gpo": "GPO",
}
DEFENDER_COLUMNS = [
    ("harmbench", "HarmBench attack success"),
    ("exploitability", "exploitability (fresh attacker)"),
    ("over_refusal_sharegpt", "over-refusal sharegpt-heldout"),
    ("over_refusal_alarming", "over-refusal alarming-benign"),
]
TARGETS = {"initial": "the initial defender", "rlhf-defender": "the RLHF defender",
           "gpo": "the GPO defender", "gpo-nodiv": "the GPO w/o diversity defender"}
ATTACKER_COLUMNS = [(f"vs_{d}", f"success vs {TARGETS[d]}") for d in DEFENDERS] + [
    ("self_bleu", "1 - self-BLEU"),
    ("cosine", "1 - cosine"),
]
# The paper's claims: (row kind, method, baseline, metric, the sign of method - baseline that
# supports the claim, what it says).
CLAIMS = [
    ("defender", "gpo", "rlhf-defender", "exploitability", -1,
     "the GPO defender is less exploitable than the RLHF defender"),
    ("defender", "gpo", "rlhf-defender", "harmbench", -1,
     "the GPO defender has lower HarmBench attack success than the RLHF defender"),
    ("attacker", "gpo", "rlhf-attacker", "vs_initial", 1,
     "the GPO attacker succeeds more often than the RLHF attacker (against the initial defender)"),
    ("attacker", "gpo", "rlhf-attacker", "self_bleu", 1,
     "the GPO attacker is more diverse than the RLHF attacker (1 - self-BLEU)"),
    ("attacker", "gpo", "rlhf-attacker", "cosine", 1,
     "the GPO attacker is more diverse than the RLHF attacker (1 - cosine)"),
]
# Two-sided 95% Student t quantiles by degrees of freedom (standard tables); 2.0 beyond 30.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
       9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
       17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069,
       24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def defender_cells(out, name):
    """Each defender column as {mean, lo, hi} (None when its report is missing)."""
    cells = {key: None for key, _ in DEFENDER_COLUMNS}
    d = load(f"{out}/eval/{name}-defender.json")
    if d:
        cells["harmbench"] = d["harmful"]["attack_success"]
        for s in d.get("benign_sets", []):
            key = {"sharegpt-heldout": "over_refusal_sharegpt",
                   "alarming-benign": "over_refusal_alarming"}.get(s["name"])
            if key:
                cells[key] = s["over_refusal"]
    e = load(f"{out}/exploit-{name}/exploit.json")
    if e:
        cells["exploitability"] = e["exploitability"]
    return cells


def attacker_cells(out, name):
    cells = {key: None for key, _ in ATTACKER_COLUMNS}
    a = load(f"{out}/eval/{name}-attacker.json")
    if a:
        # The targets are the defenders in DEFENDERS' order (scripts/paper_table.sh).
        if len(a["targets"]) != len(DEFENDERS):
            sys.exit(f"{out}/eval/{name}-attacker.json: {len(a['targets'])} targets, "
                     f"expected {len(DEFENDERS)} ({', '.join(DEFENDERS)}): rerun its evaluation")
        for d, t in zip(DEFENDERS, a["targets"]):
            cells[f"vs_{d}"] = t["rates"]["attack_success"]
        cells["self_bleu"] = a["diversity_self_bleu"]
        cells["cosine"] = a["diversity_embedding"]
    return cells


def text(cell):
    if cell is None:
        return "—"
    if "lo" in cell:
        return f"{cell['mean']:.3f} [{cell['lo']:.3f}, {cell['hi']:.3f}]"
    return f"{cell['mean']:.3f}"


def markdown(title, columns, rows):
    lines = [f"| {title} | " + " | ".join(c for _, c in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, cells in rows:
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells[k] for k, _ in columns) + " |")
    return lines


def one_seed(out):
    table = {"defender": {}, "attacker": {}}
    d_rows, a_rows = [], []
    for name in DEFENDERS:
        cells = defender_cells(out, name)
        table["defender"][name] = {k: c and c["mean"] for k, c in cells.items()}
        d_rows.append((name, {k: text(c) for k, c in cells.items()}))
    for name in ATTACKERS:
        cells = attacker_cells(out, name)
        table["attacker"][name] = {k: c and c["mean"] for k, c in cells.items()}
        a_rows.append((name, {k: text(c) for k, c in cells.items()}))
    lines = markdown("defender", DEFENDER_COLUMNS, d_rows) + [""]
    lines += markdown("attacker", ATTACKER_COLUMNS, a_rows)
    md = "\n".join(lines) + "\n"
    with open(f"{out}/table.md", "w") as f:
        f.write(md)
    with open(f"{out}/table.json", "w") as f:
        json.dump(table, f, indent=1)
    print(md)


def mean_sd(xs):
    if any(x is None for x in xs) or not xs:
        return "—"
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ({statistics.stdev(xs):.3f})"


def claim_line(tables, kind, method, base, metric, sign, says):
    diffs = []
    for t in tables:
        a, b = t[kind][method][metric], t[kind][base][metric]
        if a is None or b is None:
            return f"| {says} | — | (reports missing) |"
        diffs.append(a - b)
    n = len(diffs)
    m = statistics.mean(diffs)
    if n < 2:
        return f"| {says} | {m:+.3f} (one seed) | cannot decide (one seed) |"
    half = T95.get(n - 1, 2.0) * statistics.stdev(diffs) / n ** 0.5
    lo, hi = m - half, m + half
    if lo <= 0 <= hi:
        verdict = "cannot decide (the interval includes 0)"
    elif (m > 0) == (sign > 0):
        verdict = "supported"
    else:
        verdict = "contradicted"
    return f"| {says} | {m:+.3f} [{lo:+.3f}, {hi:+.3f}] | {verdict} |"


def seeds(out, seed_names):
    tables = [load(f"{out}/seed-{s}/table.json") for s in seed_names]
    if any(t is None for t in tables):
        missing = [s for s, t in zip(seed_names, tables) if t is None]
        sys.exit(f"no table.json for seed(s) {', '.join(missing)}: run those seeds first")
    lines = [f"Mean (standard deviation) over seeds {', '.join(seed_names)}; each seed's "
             f"table, with its intervals, is {out}/seed-S/table.md.", ""]
    for kind, names, columns in [("defender", DEFENDERS, DEFENDER_COLUMNS),
                                 ("attacker", ATTACKERS, ATTACKER_COLUMNS)]:
        rows = [(n, {k: mean_sd([t[kind][n][k] for t in tables]) for k, _ in columns})
                for n in names]
        lines += markdown(kind, columns, rows) + [""]
    lines += ["Paired over seeds (method minus baseline, mean and 95% t interval):", "",
              "| claim | difference | verdict |", "|---|---|---|"]
    lines += [claim_line(tables, *c) for c in CLAIMS]
    md = "\n".join(lines) + "\n"
    with open(f"{out}/table.md", "w") as f:
        f.write(md)
    print(md)


def report_paths():
    """The files, relative to a seed's directory, that its table is made from."""
    paths = [f"eval/{n}-defender.json" for n in DEFENDERS]
    paths += [f"exploit-{n}/exploit.json" for n in DEFENDERS]
    return paths + [f"eval/{n}-attacker.json" for n in ATTACKERS]


def missing_reports(out):
    return [p for p in report_paths() if not os.path.exists(f"{out}/{p}")]


def keep(out, dest):
    missing = missing_reports(out)
    if missing:
        sys.exit(f"{out}: not finished, missing {', '.join(missing)}")
    for p in report_paths() + ["times.txt"]:
        if os.path.exists(f"{out}/{p}"):
            os.makedirs(os.path.dirname(f"{dest}/{p}") or dest, exist_ok=True)
            shutil.copyfile(f"{out}/{p}", f"{dest}/{p}")
    one_seed(dest)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "seed":
        one_seed(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "seeds":
        seeds(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 3 and sys.argv[1] == "finished":
        sys.exit(1 if missing_reports(sys.argv[2]) else 0)
    elif len(sys.argv) == 4 and sys.argv[1] == "keep":
        keep(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
