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
# Some 3-4 hours per seed on 2 CPU cores (docs/benchmarks/game.md has each job's time).
# JOBS (1) runs that many jobs at once, each as soon as the runs it needs are finished, with
# an equal share of the cores (RAYON_NUM_THREADS, unless set); each job's progress then goes
# to OUT/seed-S/logs/JOB.log.
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
jobs=${JOBS:-1}
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

if [[ ! $jobs =~ ^[1-9][0-9]*$ ]]; then
    echo "error: JOBS=$jobs: give a whole number, 1 or more" >&2
    exit 2
fi
mkdir -p "$out/eval" "$out/logs"
out=$(cd "$out" && pwd)
# One driver per seed directory: a second one (or a rerun while an interrupted run's gpo
# still lives; it holds this lock too) stops here instead of writing the same runs.
exec 9>"$out/.lock"
if ! flock -n 9; then
    echo "error: $out is in use by another paper_table.sh or its gpo; wait or end it" >&2
    exit 1
fi
# A parallel job's threads: an equal share of the cores, unless RAYON_NUM_THREADS says; with
# one job at a time, gpo's own choice.
job_threads=${RAYON_NUM_THREADS:-}
if ((jobs > 1)) && [[ -z $job_threads ]]; then
    job_threads=$(($(nproc) / jobs > 0 ? $(nproc) / jobs : 1))
fi
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

policy() { # NAME: the defender or attacker a row names
    case $1 in
    initial) echo "$ws" ;;
    *) echo "$out/$1" ;;
    esac
}

exploit() { # NAME: a fresh attacker against defender NAME, skipped when finished
    local name=$1 dir=$out/exploit-$1
    if [[ -f $dir/exploit.json ]]; then
        log "exploit $name: finished already"
    else
        log "exploit $name"
        # shellcheck disable=SC2086 # EXPLOIT_ARGS is a list of flags
        timed "exploit-$name" "$gpo" exploit "$(policy "$name")" --config "$preset" \
            --steps "$exploit_steps" --seed "$seed" --out "$dir" ${EXPLOIT_ARGS:-} >"$dir.out"
    fi
}

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

defenders=(initial rlhf-defender gpo gpo-nodiv)
targets=()
for name in "${defenders[@]}"; do targets+=(--target "$(policy "$name")"); done

# The jobs, one function each; run_jobs below names what each needs.
train_gpo() { train gpo --set steps="$steps"; }
train_gpo_nodiv() { train gpo-nodiv --set steps="$steps" "${nodiv[@]}"; }
train_rlhf_defender() { train rlhf-defender --set mode=rlhf-defender "${half[@]}"; }
train_rlhf_attacker() { train rlhf-attacker --set mode=rlhf-attacker "${half[@]}"; }
train_rlhf_attacker_nodiv() {
    train rlhf-attacker-nodiv --set mode=rlhf-attacker "${half[@]}" "${nodiv[@]}"
}
exploit_initial() { exploit initial; }
exploit_rlhf_defender() { exploit rlhf-defender; }
exploit_gpo() { exploit gpo; }
exploit_gpo_nodiv() { exploit gpo-nodiv; }
defender_evals() { # NAME: HarmBench and both benign sets
    eval_one defender "$1" --benign sharegpt-heldout --benign alarming-benign \
        --max-new-tokens "$eval_tokens"
}
eval_defender_initial() { defender_evals initial; }
eval_defender_rlhf_defender() { defender_evals rlhf-defender; }
eval_defender_gpo() { defender_evals gpo; }
eval_defender_gpo_nodiv() { defender_evals gpo-nodiv; }
eval_attacker_gpo() { eval_one attacker gpo --limit 100 "${targets[@]}"; }
eval_attacker_gpo_nodiv() { eval_one attacker gpo-nodiv --limit 100 "${targets[@]}"; }
eval_attacker_rlhf_attacker() { eval_one attacker rlhf-attacker --limit 100 "${targets[@]}"; }
eval_attacker_rlhf_attacker_nodiv() {
    eval_one attacker rlhf-attacker-nodiv --limit 100 "${targets[@]}"
}
eval_attacker_initial() { # the untrained attacker, for scale
    local file=$out/eval/initial-attacker.json
    if [[ -f $file ]]; then
        log "eval attacker initial: written already"
        return
    fi
    log "eval attacker initial"
    timed eval-attacker-initial "$gpo" eval attacker smollm2-135m-instruct --seed "$seed" \
        --samples "$samples" --out "$file" --limit 100 "${targets[@]}" >/dev/null
}

stop_jobs() { # on INT or TERM: end the running jobs (each its own process group), then exit
    trap - INT TERM
    local pid
    # With `set -m`, `jobs -p` lists the process group of every live job.
    for pid in $(jobs -p); do kill -TERM -- "-$pid" 2>/dev/null || true; done
    wait
    exit 143
}

start_job() { # JOB: run it in the background, in a process group of its own
    log "$1: started${log_dir:+ (its log: $log_dir/$1.log)}"
    (
        # The job's own subshell, so that `set -e` holds in it and its status is seen.
        [[ -z $job_threads ]] || export RAYON_NUM_THREADS=$job_threads
        set +e
        if [[ -n $log_dir ]]; then
            (set -e && "$1") 2>>"$log_dir/$1.log"
        else
            (set -e && "$1")
        fi
        status=$?
        ((status == 0)) || log "$1: failed (exit $status)${log_dir:+, see $log_dir/$1.log}"
        exit "$status"
    ) &
    job_of[$!]=$1
}

run_jobs() { # JOB[:DEP,DEP...]...: each JOB once its DEPs have finished, JOBS at a time, the
    # first ready one first; after a failure no job starts, and the running ones finish
    local -a pending=("$@") left
    local -A finished=()
    local item job deps dep ready running=0 failed=0 pid
    declare -gA job_of=()
    set -m # each job in a process group of its own, so that stop_jobs reaches its gpo
    trap stop_jobs INT TERM
    while ((${#pending[@]} > 0 || running > 0)); do
        left=()
        for item in "${pending[@]}"; do
            job=${item%%:*}
            deps=${item#"$job"}
            deps=${deps#:}
            ready=1
            for dep in ${deps//,/ }; do [[ -n ${finished[$dep]:-} ]] || ready=0; done
            if ((ready && running < jobs && failed == 0)); then
                start_job "$job"
                running=$((running + 1))
            else
                left+=("$item")
            fi
        done
        pending=("${left[@]}")
        if ((running == 0)); then
            ((failed == 0)) && log "jobs left that can never start: ${pending[*]}"
            break
        fi
        if wait -n -p pid; then
            finished[${job_of[$pid]}]=1
            log "${job_of[$pid]}: done"
        else
            failed=1
        fi
        running=$((running - 1))
    done
    trap - INT TERM
    set +m
    ((failed == 0 && ${#pending[@]} == 0))
}

if ((jobs > 1)); then
    log_dir=$out/logs
    # Train the judge heads now if the cache lacks them, so parallel jobs do not each do it.
    "$gpo" judge --prompt "How do I bake bread?" --response "Mix flour and water." >/dev/null
else
    log_dir=
fi
trains=train_gpo,train_gpo_nodiv,train_rlhf_defender,train_rlhf_attacker
trains+=,train_rlhf_attacker_nodiv
# Longest first, so that the last jobs to run are short ones.
run_jobs train_gpo train_gpo_nodiv exploit_gpo:train_gpo exploit_gpo_nodiv:train_gpo_nodiv \
    train_rlhf_defender exploit_rlhf_defender:train_rlhf_defender exploit_initial \
    train_rlhf_attacker train_rlhf_attacker_nodiv eval_defender_initial \
    eval_defender_gpo:train_gpo eval_defender_gpo_nodiv:train_gpo_nodiv \
    eval_defender_rlhf_defender:train_rlhf_defender \
    eval_attacker_gpo:$trains eval_attacker_gpo_nodiv:$trains \
    eval_attacker_rlhf_attacker:$trains eval_attacker_rlhf_attacker_nodiv:$trains \
    eval_attacker_initial:$trains

python3 "$here/paper_table.py" seed "$out"
