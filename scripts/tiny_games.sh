#!/usr/bin/env bash
# Three tiny games for checking that a change leaves runs unchanged (docs/lab_notebook.md):
# the built-in preset cut to 4 steps of 2 seeds, LoRA rank 2 on q/v, 5-token answers, no warm
# start; played in the default mode, with `mixed` defender prompts and helpfulness 1, and as
# the RLHF-defender baseline. Compare two builds' outputs with scripts/compare_runs.py.
#
#   scripts/tiny_games.sh GPO_BINARY OUT      # writes OUT/gpo, OUT/mixed, OUT/rlhf
set -euo pipefail
bin=$1
out=$2
mkdir -p "$out"
common=(
    --set steps=4 --set batch_size=2 --set eval_every=2 --set snapshot_every=2
    --set checkpoint_every=2 --set data.eval_seeds=2 --set defender.warm_start.epochs=0
    --set 'models.lora={ rank = 2, alpha = 4.0, dropout = 0.0, target_modules = ["q_proj", "v_proj"] }'
    --set attacker.rl.sampling.max_new_tokens=5 --set defender.rl.sampling.max_new_tokens=5
    --set 'schedule={ kind = "alternate", defender_steps = 1, attacker_steps = 1 }'
)
play() { # NAME [--set ...]
    local name=$1
    shift
    "$bin" train --run-dir "$out/$name" "${common[@]}" "$@" >/dev/null 2>"$out/$name.err"
}
play gpo
play mixed --set 'defender.prompts={ kind = "mixed", seeds = 1, benign = 1 }' \
    --set defender.helpfulness=1
play rlhf --set mode=rlhf-defender
