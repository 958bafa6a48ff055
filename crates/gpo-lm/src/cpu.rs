//! Which instruction set each CPU kernel runs with on this machine, chosen at run time: one
//! binary serves every x86-64 (no `-C target-cpu` needed).
//!
//! - Matrix products (the training GEMMs, prefill, and decoding above
//!   the decoding kernel's row limit) go through candle to the `gemm` crate, built with its
//!   `x86-v4` feature: AVX-512F where the CPU has it, else AVX2 + FMA, else scalar (NEON on
//!   aarch64). `gemm` detects this itself; [`gemm_path`] reports its choice by the same test.
//! - Decoding's few-row products use gpo's own kernel ([`decode_path`]): AVX2 + FMA, else
//!   scalar. An AVX-512 variant measured no faster on an AVX-512 machine (BENCHMARKS.md,
//!   issue 26): the kernel is bound there neither by its FMAs nor by memory bandwidth.
//! - A bf16 model's frozen weights ([`bf16_path`]): AVX512-BF16 dot products where the CPU
//!   has them, else the model computes in f32.

/// The `gemm` crate's kernel on this CPU: `avx512f`, `fma`, `neon` or `scalar`.
pub fn gemm_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "fma";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return "neon";
        }
    }
    "scalar"
}

/// gpo's decoding kernel on this CPU: `avx2+fma` or `scalar`.
pub fn decode_path() -> &'static str {
    if crate::small_matmul::has_avx2_fma() {
        "avx2+fma"
    } else {
        "scalar"
    }
}

/// The kernel of a CPU model loaded in bf16: `avx512bf16`, or `f32` where the CPU lacks it.
pub fn bf16_path() -> &'static str {
    if crate::bf16_kernel::has_avx512_bf16() {
        "avx512bf16"
    } else {
        "f32"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_are_named() {
        assert!(["avx512f", "fma", "neon", "scalar"].contains(&gemm_path()));
        assert!(["avx2+fma", "scalar"].contains(&decode_path()));
        assert!(["avx512bf16", "f32"].contains(&bf16_path()));
    }
}
