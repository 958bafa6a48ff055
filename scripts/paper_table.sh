#!/usr/bin/env bash
# GPO against the RLHF baselines in the shape of the paper's table (docs/method.md), on the
# built-in CPU preset.
#
#   scripts/paper_table.sh [OUT] [SEEDS] [GPO]
#
# OUT (default runs/paper-table) gets five `gpo train` runs (gpo, gpo-nodiv, rlhf-defender,
# rlhf-attacker, rlhf-attacker-nodiv), every `gpo eval` report under OUT/eval, times.txt (the
# wall time of each step), table.md (the table) and table.json (its point estimates).
# Everything is resumable: rerun the same command after an interruption and finished runs and
# reports are kept, an unfinished run continues from its last checkpoint (`gpo train
# --resume`). About two hours per seed on 2 CPU cores.
#
# SEEDS is one seed (default 0) or several, quoted: "0 1 2" plays each seed in OUT/seed-S and
# writes OUT/table.md with each cell's mean and standard deviation over the seeds, the
# variation the single-seed intervals do not cover.
#
# Defender columns: `gpo eval defender` on HarmBench's 200 prompts. Attacker columns:
# `gpo eval attacker --limit 100` (100 HarmBench seeds drawn with SEED), answered by the frozen
# initial defender. The judge is the embedded one the players were trained against.
set -euo pipefail

out=${1:-runs/paper-table}
seeds=${2:-0}
gpo=${3:-target/release/gpo}
initial=smollm2-135m-instruct

read -r -a seed_list <<<"$seeds"
if ((${#seed_list[@]} > 1)); then
    for s in "${seed_list[@]}"; do
        "$0" "$out/seed-$s" "$s" "$gpo"
    done
    python3 - "$out" "${seed_list[@]}" <<'EOF'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
tables = [json.load(open(f"{out}/seed-{s}/table.json")) for s in seeds]
lines = [f"Mean (standard deviation) over seeds {', '.join(seeds)}; each seed's table, with its intervals, is {out}/seed-S/table.md.", ""]
lines += tables[0]["header"]
for i, row in enumerate(tables[0]["rows"]):
    cells = []
    for j, text in enumerate(row["text"]):
        xs = [t["rows"][i]["values"][j] for t in tables]
        if any(x is None for x in xs):
            cells.append(text if row["values"][j] is None else "—")
        else:
            cells.append(f"{statistics.mean(xs):.3f} ({statistics.stdev(xs):.3f})")
    lines.append(f"| {row['label']} | {row['overrides']} | " + " | ".join(cells) + " |")
table = "\n".join(lines) + "\n"
open(f"{out}/table.md", "w").write(table)
print(table)
EOF
    exit 0
fi
seed=${seed_list[0]}

mkdir -p "$out/eval"
log() { echo "[paper_table $(date -u +%H:%M:%S)] $*" >&2; }
timed() { # NAME COMMAND...: run it, append its wall time to times.txt
    local name=$1 t0
    shift
    t0=$(date +%s)
    "$@"
    echo "$name $(($(date +%s) - t0)) s" >>"$out/times.txt"
}

train() { # NAME --set ...: one run, skipped when finished, resumed when interrupted
    local name=$1 dir=$out/$1
    shift
    if [[ -f $dir/summary.json ]]; then
        log "$name: finished already"
    elif [[ -f $dir/config.toml ]]; then
        log "$name: resuming"
        timed "train-$name(resumed)" "$gpo" train --resume "$dir" >"$dir.out"
    else
        log "$name: training"
        timed "train-$name" "$gpo" train --run-dir "$dir" --set seed="$seed" "$@" >"$dir.out"
    fi
}

eval_one() { # defender|attacker NAME POLICY [ARGS...]: one report, skipped when written
    local kind=$1 name=$2 policy=$3 file
    shift 3
    file=$out/eval/$name-$kind.json
    if [[ -f $file ]]; then
        log "eval $kind $name: written already"
        return
    fi
    log "eval $kind $name"
    timed "eval-$kind-$name" "$gpo" eval "$kind" "$policy" --seed "$seed" --out "$file" "$@" >/dev/null
}

nodiv=(--set attacker.w_bleu=0 --set attacker.w_emb=0)
train gpo
train gpo-nodiv "${nodiv[@]}"
train rlhf-defender --set mode=rlhf-defender
train rlhf-attacker --set mode=rlhf-attacker
train rlhf-attacker-nodiv --set mode=rlhf-attacker "${nodiv[@]}"

for name in initial gpo gpo-nodiv rlhf-defender; do
    policy=$out/$name
    [[ $name == initial ]] && policy=$initial
    eval_one defender "$name" "$policy"
done
for name in initial gpo gpo-nodiv rlhf-attacker rlhf-attacker-nodiv; do
    policy=$out/$name
    [[ $name == initial ]] && policy=$initial
    eval_one attacker "$name" "$policy" --limit 100 --target "$initial"
done

python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]

def load(name, kind):
    try:
        return json.load(open(f"{out}/eval/{name}-{kind}.json"))
    except FileNotFoundError:
        return None

def ci(s):
    return f"{s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]"

def defender(name):
    d = load(name, "defender")
    return [d["harmful"]["attack_success"] if d else None]

def attacker(name):
    a = load(name, "attacker")
    if not a:
        return [None] * 3
    return [a["targets"][0]["rates"]["attack_success"], a["diversity_self_bleu"], a["diversity_embedding"]]

rows = [
    ("initial SmolLM2-135M-Instruct", "initial", "initial", "—"),
    ("RLHF defender", "rlhf-defender", None, "`--set mode=rlhf-defender`"),
    ("RLHF attacker", None, "rlhf-attacker", "`--set mode=rlhf-attacker`"),
    ("RLHF attacker w/o diversity", None, "rlhf-attacker-nodiv",
     "`--set mode=rlhf-attacker --set attacker.w_bleu=0 --set attacker.w_emb=0`"),
    ("GPO w/o diversity", "gpo-nodiv", "gpo-nodiv", "`--set attacker.w_bleu=0 --set attacker.w_emb=0`"),
    ("GPO", "gpo", "gpo", "—"),
]
header = [
    "| method | overrides | defender ASR (HarmBench 200) | attacker ASR vs initial defender (100 seeds) | diversity 1 - self-BLEU | diversity 1 - cosine |",
    "|---|---|---|---|---|---|",
]
lines, json_rows = list(header), []
for label, d, a, overrides in rows:
    # Not-trained cells have no value; missing reports (a run still going) show as "—".
    stats = (defender(d) if d else [None]) + (attacker(a) if a else [None] * 3)
    text = [ci(s) if s else "—" for s in stats]
    if not d:
        text[0] = "(defender not trained)"
    if not a:
        text[1:] = ["(attacker not trained)", "", ""]
    lines.append(f"| {label} | {overrides} | " + " | ".join(text) + " |")
    values = [s["mean"] if s else None for s in stats]
    json_rows.append({"label": label, "overrides": overrides, "text": text, "values": values})
table = "\n".join(lines) + "\n"
open(f"{out}/table.md", "w").write(table)
json.dump({"header": header, "rows": json_rows}, open(f"{out}/table.json", "w"), indent=1)
print(table)
EOF
