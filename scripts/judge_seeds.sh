#!/usr/bin/env bash
# Trains the embedded judge's heads with several seeds and prints each seed's held-out AUCs
# and their mean and standard deviation (the numbers in BENCHMARKS.md "Judges").
# Usage: scripts/judge_seeds.sh [GPO_BINARY] [SEEDS...]   (default: target/release/gpo, 0-4)
# With CONFIG=FILE.toml in the environment, every seed trains with `--config FILE.toml`.
set -euo pipefail
gpo=${1:-target/release/gpo}
shift || true
seeds=${*:-0 1 2 3 4}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for s in $seeds; do
    "$gpo" judge train ${CONFIG:+--config "$CONFIG"} --seed "$s" --out "$out/heads-$s" > "$out/card-$s.json" 2> "$out/log-$s.txt" ||
        { echo "seed $s failed:" >&2; tail -5 "$out/log-$s.txt" >&2; exit 1; }
done
python3 - "$out" $seeds <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
cards = [json.load(open(f"{out}/card-{s}.json"))["metrics"] for s in seeds]
print(f"{'metric':36s} " + " ".join(f"seed {s:>3s}" for s in seeds) + "    mean     sd")
for k in cards[0]:
    v = [c[k]["auc"] for c in cards]
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"{k + ' AUC':36s} " + " ".join(f"{x:8.3f}" for x in v) + f"  {statistics.mean(v):.3f}  {sd:.3f}")
PY
