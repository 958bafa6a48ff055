#!/usr/bin/env bash
# garak, the red-teaming scanner, against `gpo serve` serving a defender gpo trained: an
# independent OpenAI client (garak's `openai.OpenAICompatible` generator, chat completions)
# runs a probe end to end, and its report must parse.
#
#   scripts/garak_check.sh [GPO] [OUT]
#
# GPO: the gpo binary (default: `cargo run --locked -p gpo --`, the dev build). OUT (default
# a temporary directory) receives the defender adapter, garak's report
# (garak/garak_runs/gpo-garak.report.jsonl) and its HTML summary. garak 0.17.1 is installed
# from PyPI into $GPO_CACHE/garak-venv (default ~/.cache/gpo/garak-venv) with only the
# packages its OpenAI generator and the DAN probe import (garak's full dependency list pulls
# in torch and cloud SDKs that this check does not use). Prints one JSON line: the probe,
# detector, attempts evaluated and garak's attack success rate.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
gpo=${1:-}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -z "$gpo" ]; then
    (cd "$here/.." && cargo build --quiet --locked -p gpo)
    gpo="$here/../target/debug/gpo"
fi

venv=${GPO_CACHE:-$HOME/.cache/gpo}/garak-venv
if ! "$venv/bin/python" -c "import garak, openai, nltk" >/dev/null 2>&1; then
    echo "installing garak 0.17.1 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-deps "garak==0.17.1"
    "$venv/bin/pip" install --quiet "pyyaml==6.0.*" "xdg-base-dirs==6.0.*" "colorama==0.4.*" \
        "requests>=2.32" "httpx>=0.27" "aiohttp>=3.9" "numpy>=2" "openai>=2,<3" "backoff==2.*" \
        "nltk>=3.9" "langdetect==1.0.9" "markdown>=3.6"
fi

# A defender gpo trained: a small safety warm start (a few pairs, one epoch).
adapter="$out/defender"
if [ ! -f "$adapter/adapter_model.safetensors" ]; then
    rm -rf "$adapter" "$adapter.partial"
    "$gpo" sft --out "$adapter" --max-pairs 8 --sharegpt 8 --epochs 1 >/dev/null \
        2>"$out/sft.log" || { tail -5 "$out/sft.log" >&2; exit 1; }
fi

"$gpo" serve --adapter "$adapter" --served-model-name defender --port 0 \
    --max-tokens-limit 256 >"$out/serve.json" 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    [ -s "$out/serve.json" ] && break
    kill -0 $server 2>/dev/null || { cat "$out/serve.log" >&2; exit 1; }
    sleep 0.2
done
url=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['url'])" "$out/serve.json")

export XDG_DATA_HOME="$out" XDG_CONFIG_HOME="$out" XDG_CACHE_HOME="$out"
options=$(printf '{"openai":{"OpenAICompatible":{"uri":"%s/","api_key":"unused","max_tokens":48,"seed":1}}}' "$url")
"$venv/bin/python" -m garak --target_type openai.OpenAICompatible --target_name defender \
    --generator_options "$options" --probes dan.Dan_11_0 --generations 2 \
    --report_prefix gpo-garak >"$out/garak.out" 2>&1 || {
    tail -20 "$out/garak.out" >&2
    exit 1
}

python3 - "$out/garak/garak_runs/gpo-garak.report.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
evals = [r for r in rows if r.get("entry_type") == "eval"]
attempts = [r for r in rows if r.get("entry_type") == "attempt" and r.get("status") == 2]
if not evals or not attempts:
    sys.exit(f"{sys.argv[1]}: no evaluated attempts in garak's report")
for e in evals:
    if e["total_evaluated"] < 1:
        sys.exit(f"{sys.argv[1]}: {e['detector']} evaluated nothing")
    print(json.dumps({
        "probe": e["probe"], "detector": e["detector"], "evaluated": e["total_evaluated"],
        "attack_success": e["fails"] / e["total_evaluated"], "report": sys.argv[1],
    }))
PY
