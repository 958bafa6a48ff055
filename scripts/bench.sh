#!/usr/bin/env bash
# Runs gpo's bench and the PyTorch baseline (shared/bench/pytorch_baseline.py) back to back
# on the same GGUF, so BENCHMARKS.md compares numbers from one session on one machine.
# Usage: scripts/bench.sh [VENV]   (VENV: a Python venv with torch, transformers, gguf;
#        made with: python3 -m venv VENV && VENV/bin/pip install torch==2.11.0 transformers accelerate gguf numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-../venv}
cargo build --release --locked -p gpo
gguf=$(target/release/gpo assets fetch smollm2-135m-instruct | sed -E 's/.*"path":"([^"]*)".*/\1/')
threads=$(nproc)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "gpo:"
RAYON_NUM_THREADS=$threads target/release/gpo bench --json
echo "pytorch:"
OMP_NUM_THREADS=$threads "$venv/bin/python" ../shared/bench/pytorch_baseline.py "$(dirname "$gguf")" "$(basename "$gguf")" 2>/dev/null
