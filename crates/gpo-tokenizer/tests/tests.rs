//! gpo-tokenizer's integration tests: agreement with Hugging Face on committed fixtures
//! (tests/fixtures/*.json, made by tests/reference/make_fixtures.py) and bad input.
//!
//! The SmolLM2 tests read the GGUF from the asset cache (`$GPO_CACHE`, default
//! `$XDG_CACHE_HOME/gpo` or `~/.cache/gpo`) and fail, saying what to run, when it is missing.

mod bad_input;
mod chat_templates;
mod gguf_tokenizer;
mod minilm;
mod util;
