#!/usr/bin/env bash
# Does GPO make a defender harder to break than RLHF? The paper's comparison on the built-in
# CPU preset, at matched defender updates, with exploitability (docs/benchmarks/game.md).
#
#   scripts/paper_table.sh [OUT] [SEEDS] [GPO]
#
# For each seed S (SEEDS: one, or several quoted, default "0 1 2"), OUT/seed-S gets:
#   warm-start/      the defender's safety warm start (`gpo sft --seed S`): every defender,
#                    trained or not, starts from it, so "initial" below means this adapter
#   gpo, gpo-nodiv   `gpo train` (STEPS steps, alternating 10 defender / 10 attacker steps)
#   rlhf-defender    `gpo train --set mode=rlhf-defender` for STEPS/2 steps: as many defender
#                    updates and episodes as GPO's defender gets
#   rlhf-attacker, rlhf-attacker-nodiv   the same for the attacker (STEPS/2 steps)
#   exploit-D        `gpo exploit D` for each defender D (initial, rlhf-defender, gpo,
#                    gpo-nodiv): a fresh attacker trained EXPLOIT_STEPS steps against it
#   eval/            `gpo eval defender` (HarmBench 200, both benign sets, SAMPLES answers per
#                    prompt) and `gpo eval attacker` (100 HarmBench seeds against the initial
#                    defender and every trained defender) reports
#   table.md, table.json   the seed's table with intervals
# and OUT/table.md gets each cell's mean and standard deviation over the seeds, and for the
# paper's two claims the paired difference over seeds with a 95% t interval.
#
# Everything is resumable: rerun the same command after an interruption; finished runs and
# reports are kept, an unfinished run or exploit continues from its last checkpoint, and a
# finished OUT reproduces the table without training. A finished seed's reports (JSON, no
# weights) are kept in git with `python3 scripts/paper_table.py keep OUT/seed-S
# docs/benchmarks/paper-table/seed-S`; copied into an OUT/seed-S, they stand for the seed.
# About 3 hours per seed on 2 CPU cores.
# STEPS (40), EXPLOIT_STEPS (40), SAMPLES (2), EVAL_TOKENS (24: the defender evaluations'
# answer length, as in docs/benchmarks/defender.md) and PRESET (the game every run starts from,
# default the built-in CPU preset's file) come from the environment; EXTRA_SET (space-separated
# KEY=VALUE) is added to every run, SFT_ARGS to `gpo sft` and EXPLOIT_ARGS to `gpo exploit`,
# e.g. to make a smoke run small.
set -euo pipefail

out=${1:-runs/paper-table}
seeds=${2:-"0 1 2"}
gpo=${3:-target/release/gpo}
steps=${STEPS:-40}
exploit_steps=${EXPLOIT_STEPS:-40}
samples=${SAMPLES:-2}
eval_tokens=${EVAL_TOKENS:-24}
preset=${PRESET:-$(dirname "$0")/../examples/cpu-smollm2.toml}
here=$(cd "$(dirname "$0")" && pwd)

read -r -a seed_list <<<"$seeds"
if ((${#seed_list[@]} > 1)); then
    for s in "${seed_list[@]}"; do
        "$0" "$out/seed-$s" "$s" "$gpo"
    done
    python3 "$here/paper_table.py" seeds "$out" "${seed_list[@]}"
    exit 0
fi
seed=${seed_list[0]}

mkdir -p "$out/eval"
out=$(cd "$out" && pwd)
log() { echo "[paper_table $(date -u +%H:%M:%S)] $*" >&2; }
timed() { # NAME COMMAND...: run it, append its wall time to times.txt
    local name=$1 t0
    shift
    t0=$(date +%s)
    "$@"
    echo "$name $(($(date +%s) - t0)) s" >>"$out/times.txt"
}

# When every report the table reads is written (a finished seed, or one restored from the
# reports committed under docs/benchmarks/paper-table/), no model is needed: only the table
# is made again.
if python3 "$here/paper_table.py" finished "$out"; then
    log "seed $seed: every report written already"
    python3 "$here/paper_table.py" seed "$out"
    exit 0
fi

extra=()
for kv in ${EXTRA_SET:-}; do extra+=(--set "$kv"); done

ws=$out/warm-start
if [[ -d $ws ]]; then
    log "warm start: finished already"
else
    log "warm start"
    # `gpo sft` continues from warm-start.partial/ when interrupted.
    # shellcheck disable=SC2086 # SFT_ARGS is a list of flags
    timed warm-start "$gpo" sft --out "$ws" --seed "$seed" ${SFT_ARGS:-} >"$out/warm-start.out"
fi

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
        timed "train-$name" "$gpo" train "$preset" --run-dir "$dir" --set seed="$seed" \
            --set "models.defender=\"$ws\"" --set defender.warm_start.epochs=0 \
            "${extra[@]}" "$@" >"$dir.out"
    fi
}

nodiv=(--set attacker.w_bleu=0 --set attacker.w_emb=0)
half=(--set steps=$((steps / 2)))
train gpo --set steps="$steps"
train gpo-nodiv --set steps="$steps" "${nodiv[@]}"
train rlhf-defender --set mode=rlhf-defender "${half[@]}"
train rlhf-attacker --set mode=rlhf-attacker "${half[@]}"
train rlhf-attacker-nodiv --set mode=rlhf-attacker "${half[@]}" "${nodiv[@]}"

policy() { # NAME: the defender or attacker a row names
    case $1 in
    initial) echo "$ws" ;;
    *) echo "$out/$1" ;;
    esac
}

defenders=(initial rlhf-defender gpo gpo-nodiv)
for name in "${defenders[@]}"; do
    dir=$out/exploit-$name
    if [[ -f $dir/exploit.json ]]; then
        log "exploit $name: finished already"
    else
        log "exploit $name"
        timed "exploit-$name" "$gpo" exploit "$(policy "$name")" --config "$preset" \
            --steps "$exploit_steps" --seed "$seed" --out "$dir" ${EXPLOIT_ARGS:-} >"$dir.out"
    fi
done

eval_one() { # defender|attacker NAME [ARGS...]: one report, skipped when written
    local kind=$1 name=$2 file
    shift 2
    file=$out/eval/$name-$kind.json
    if [[ -f $file ]]; then
        log "eval $kind $name: written already"
        return
    fi
    log "eval $kind $name"
    timed "eval-$kind-$name" "$gpo" eval "$kind" "$(policy "$name")" --seed "$seed" \
        --samples "$samples" --out "$file" "$@" >/dev/null
}

for name in "${defenders[@]}"; do
    eval_one defender "$name" --benign sharegpt-heldout --benign alarming-benign \
        --max-new-tokens "$eval_tokens"
done
targets=()
for name in "${defenders[@]}"; do targets+=(--target "$(policy "$name")"); done
for name in gpo gpo-nodiv rlhf-attacker rlhf-attacker-nodiv; do
    eval_one attacker "$name" --limit 100 "${targets[@]}"
done
# The untrained attacker, for scale.
if [[ ! -f $out/eval/initial-attacker.json ]]; then
    log "eval attacker initial"
    timed eval-attacker-initial "$gpo" eval attacker smollm2-135m-instruct --seed "$seed" \
        --samples "$samples" --out "$out/eval/initial-attacker.json" --limit 100 \
        "${targets[@]}" >/dev/null
fi

python3 "$here/paper_table.py" seed "$out"
