#!/usr/bin/env bash
# Checks a CUDA build of gpo on one GPU (README, "GPU"; numbers in BENCHMARKS.md):
#   1. log-probs on the GPU against the CPU's, same binary and model;
#   2. seeded sampling on the GPU;
#   3. `gpo bench` on the GPU (f32, then bf16), then shared/bench/pytorch_baseline.py on the
#      same GPU;
#   4. a short `gpo rl` run (PPO, LoRA, the `short` reward) on the GPU.
# Usage: scripts/cuda_check.sh GPO_BINARY MODEL.gguf BASELINE.py OUT_DIR
# Results (a few small JSON files) go to OUT_DIR; the RL run and the cache to $WORK
# (default /tmp/gpo-cuda-check). Needs python3 with torch, transformers and gguf for the
# baseline.
set -uo pipefail
gpo=$1 model=$2 baseline=$3 out=$4
work=${WORK:-/tmp/gpo-cuda-check}
mkdir -p "$out" "$work"
export GPO_CACHE=${GPO_CACHE:-$work/cache}
step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)"; }

step "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

step "log-probs: CPU vs CUDA"
text="The capital of France is Paris. Photosynthesis turns light, water and carbon dioxide into sugar and oxygen; the sugar feeds the plant."
"$gpo" logprobs --model "$model" --device cpu --text "$text" >"$out/logprobs_cpu.json"
"$gpo" logprobs --model "$model" --device cuda --text "$text" >"$out/logprobs_cuda.json"
python3 - "$out/logprobs_cpu.json" "$out/logprobs_cuda.json" <<'EOF'
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:3])
assert a["ids"] == b["ids"], "token ids differ"
d = max(abs(x - y) for x, y in zip(a["logprobs"][1:], b["logprobs"][1:]))
same = sum(x == y for x, y in zip(a["top1"], b["top1"]))
print(json.dumps({"tokens": len(a["ids"]), "max_abs_logprob_diff": d,
                  "top1_agreement": f"{same}/{len(a['top1'])}"}))
EOF

step "sampling on CUDA (seed 1)"
"$gpo" generate --model "$model" --device cuda --chat --prompt "Name three colours." \
  --max-new-tokens 32 --seed 1 --n 2

step "gpo bench on CUDA"
"$gpo" bench --model "$model" --device cuda --json --reps 5 | tee "$out/bench_gpo_cuda.json"

step "gpo bench on CUDA in bf16"
"$gpo" bench --model "$model" --device cuda --dtype bf16 --json --reps 5 | tee "$out/bench_gpo_cuda_bf16.json"

step "PyTorch baseline on CUDA"
python3 "$baseline" "$(dirname "$model")" "$(basename "$model")" cuda | tee "$out/bench_torch_cuda.json"

step "gpo rl on CUDA: PPO, LoRA, reward short, 8 iterations"
"$gpo" rl --model "$model" --device cuda --estimator ppo --reward short --steps 8 \
  --out "$work/rl" | tee "$out/rl_cuda.jsonl"
step "done"
