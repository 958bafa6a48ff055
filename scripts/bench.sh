#!/usr/bin/env bash
# Runs gpo's bench and a PyTorch baseline script back to back on the same GGUF, so
# BENCHMARKS.md compares numbers from one session on one machine.
# Usage: scripts/bench.sh [VENV [BASELINE.py]]
#   VENV: a Python venv with torch, transformers, gguf (default ../venv); made with:
#     python3 -m venv VENV && VENV/bin/pip install torch==2.11.0 transformers accelerate gguf numpy
#   BASELINE.py: the PyTorch baseline (called as BASELINE.py GGUF_DIR GGUF_FILE); default
#     $GPO_TORCH_BASELINE, else ../shared/bench/pytorch_baseline.py beside the repository.
#     It is not part of the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-../venv}
baseline=${2:-${GPO_TORCH_BASELINE:-../shared/bench/pytorch_baseline.py}}
if [[ ! -f $baseline ]]; then
    echo "error: no PyTorch baseline at $baseline (from $PWD): pass its path as the second" \
        "argument or in GPO_TORCH_BASELINE" >&2
    exit 2
fi
if [[ ! -x $venv/bin/python ]]; then
    echo "error: no Python at $venv/bin/python: pass a venv as the first argument (see the" \
        "usage at the top of $0)" >&2
    exit 2
fi
cargo build --release --locked -p gpo
gguf=$(target/release/gpo assets fetch smollm2-135m-instruct | sed -E 's/.*"path":"([^"]*)".*/\1/')
threads=$(nproc)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "gpo:"
RAYON_NUM_THREADS=$threads target/release/gpo bench --json
echo "pytorch:"
OMP_NUM_THREADS=$threads "$venv/bin/python" "$baseline" "$(dirname "$gguf")" "$(basename "$gguf")" 2>/dev/null
