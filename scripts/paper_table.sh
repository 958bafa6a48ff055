#!/usr/bin/env bash
# GPO against the RLHF baselines in the shape of PAPER.md's table, on the built-in CPU preset.
#
#   scripts/paper_table.sh [OUT] [SEED] [GPO]
#
# OUT (default runs/paper-table) gets five `gpo train` runs (gpo, gpo-nodiv, rlhf-defender,
# rlhf-attacker, rlhf-attacker-nodiv), every `gpo eval` report under OUT/eval, times.txt (the
# wall time of each step) and table.md (the table). Everything is resumable: rerun the same
# command after an interruption and finished runs and reports are kept, an unfinished run
# continues from its last checkpoint (`gpo train --resume`). About two hours on 2 CPU cores.
#
# Defender columns: `gpo eval defender` on HarmBench's 200 prompts. Attacker columns:
# `gpo eval attacker --limit 100` (100 HarmBench seeds drawn with SEED), answered by the frozen
# initial defender. The judge is the embedded one the players were trained against.
set -euo pipefail

out=${1:-runs/paper-table}
seed=${2:-0}
gpo=${3:-target/release/gpo}
initial=smollm2-135m-instruct

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
    return ci(d["harmful"]["attack_success"]) if d else "—"

def attacker(name):
    a = load(name, "attacker")
    if not a:
        return ["—"] * 3
    target = a["targets"][0]
    return [ci(target["rates"]["attack_success"]), ci(a["diversity_self_bleu"]), ci(a["diversity_embedding"])]

rows = [
    ("initial SmolLM2-135M-Instruct", "initial", "initial", "—"),
    ("RLHF defender", "rlhf-defender", None, "`--set mode=rlhf-defender`"),
    ("RLHF attacker", None, "rlhf-attacker", "`--set mode=rlhf-attacker`"),
    ("RLHF attacker w/o diversity", None, "rlhf-attacker-nodiv",
     "`--set mode=rlhf-attacker --set attacker.w_bleu=0 --set attacker.w_emb=0`"),
    ("GPO w/o diversity", "gpo-nodiv", "gpo-nodiv", "`--set attacker.w_bleu=0 --set attacker.w_emb=0`"),
    ("GPO", "gpo", "gpo", "—"),
]
lines = [
    "| method | overrides | defender ASR (HarmBench 200) | attacker ASR vs initial defender (100 seeds) | diversity 1 - self-BLEU | diversity 1 - cosine |",
    "|---|---|---|---|---|---|",
]
for label, d, a, overrides in rows:
    dcol = defender(d) if d else "(defender not trained)"
    acols = attacker(a) if a else ["(attacker not trained)", "", ""]
    lines.append(f"| {label} | {overrides} | {dcol} | " + " | ".join(acols) + " |")
table = "\n".join(lines) + "\n"
open(f"{out}/table.md", "w").write(table)
print(table)
EOF
