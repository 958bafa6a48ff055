#!/usr/bin/env bash
# gpo serve against llama.cpp's server (llama-cpp-python[server]) on the same GGUF and the
# same cores, back to back: chat completions at 1, 8 and 32 concurrent clients
# (scripts/serve_bench.py), one JSON line per server and concurrency.
#
#   scripts/serve_bench.sh VENV [GPO]
#
# VENV: a Python venv with llama-cpp-python[server] (python3 -m venv VENV &&
# VENV/bin/pip install 'llama-cpp-python[server]'; it compiles llama.cpp, some 10 minutes).
# GPO: the gpo binary (default target/release/gpo). Threads: all cores for both.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1
gpo=${2:-target/release/gpo}
threads=$(nproc)
gguf=$("$gpo" assets fetch smollm2-135m-instruct | sed -E 's/.*"path":"([^"]*)".*/\1/')
echo "machine: $threads cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ); gpo $(git rev-parse --short HEAD)"

wait_for() { # URL: until GET URL/models answers
    for _ in $(seq 1 300); do
        curl -sf "$1/models" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "no server at $1" >&2
    return 1
}

run() { # NAME URL MODEL
    python3 scripts/serve_bench.py "$2" "$3" --label "$1" --concurrency 1 --requests 8
    python3 scripts/serve_bench.py "$2" "$3" --label "$1" --concurrency 8 --requests 2
    python3 scripts/serve_bench.py "$2" "$3" --label "$1" --concurrency 32 --requests 1
}

RAYON_NUM_THREADS=$threads "$gpo" serve --port 8311 --served-model-name smollm2 \
    --max-concurrent 64 >/dev/null 2>&1 &
gpo_pid=$!
trap 'kill $gpo_pid 2>/dev/null || true; kill ${llama_pid:-} 2>/dev/null || true' EXIT
wait_for http://127.0.0.1:8311/v1
run gpo-serve http://127.0.0.1:8311/v1 smollm2
kill $gpo_pid; wait $gpo_pid 2>/dev/null || true

"$venv/bin/python" -m llama_cpp.server --model "$gguf" --n_threads "$threads" \
    --n_threads_batch "$threads" --n_ctx 2048 --port 8312 --model_alias smollm2 >/dev/null 2>&1 &
llama_pid=$!
wait_for http://127.0.0.1:8312/v1
run llama-cpp-python http://127.0.0.1:8312/v1 smollm2
