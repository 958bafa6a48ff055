//! The machine a benchmark ran on, and how close to its limits a phase ran: its CPU, the
//! kernel each product ran with ([`gpo_lm::cpu`]), an estimate of its FMA peak, and its
//! memory read bandwidth measured by a stream-like sum.

use std::time::Instant;

use gpo_lm::LmConfig;
use rayon::prelude::*;
use serde::Serialize;

/// Bytes the bandwidth measurement reads (far above any last-level cache).
const READ_BYTES: usize = 512 << 20;

/// What `gpo bench --json` records of the machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// The CPU's model name (`/proc/cpuinfo`), or `unknown`.
    pub cpu_model: String,
    /// Logical CPUs the OS reports.
    pub logical_cpus: usize,
    /// Worker threads the measurements used (rayon's pool).
    pub threads: usize,
    /// The GEMM kernel ([`gpo_lm::cpu::gemm_path`]).
    pub gemm_path: &'static str,
    /// gpo's decoding kernel ([`gpo_lm::cpu::decode_path`]).
    pub decode_path: &'static str,
    /// The clock `/proc/cpuinfo` reports for the first CPU, in GHz (a virtual machine's may
    /// be nominal).
    pub clock_ghz: Option<f64>,
    /// f32 FMA peak of `threads` cores at `clock_ghz` with two FMA pipes per core of the
    /// GEMM path's width ([`fma_peak_gflops`]): an estimate, not a measurement.
    pub fma_peak_gflops: Option<f64>,
    /// Memory read bandwidth of `threads` threads summing a 512 MiB buffer, median of 3.
    pub read_gbs: f64,
}

impl Machine {
    /// Describes this machine (takes about a second: the bandwidth is measured).
    pub fn describe() -> Machine {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |key: &str| {
            info.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let clock_ghz = field("cpu MHz")
            .and_then(|v| v.parse::<f64>().ok())
            .map(|mhz| mhz / 1000.0);
        let threads = rayon::current_num_threads();
        let gemm_path = gpo_lm::cpu::gemm_path();
        Machine {
            cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads,
            gemm_path,
            decode_path: gpo_lm::cpu::decode_path(),
            clock_ghz,
            fma_peak_gflops: clock_ghz.map(|ghz| fma_peak_gflops(gemm_path, threads, ghz)),
            read_gbs: read_bandwidth_gbs(READ_BYTES, 3),
        }
    }
}

/// f32 lanes of one register of a GEMM path.
fn lanes(gemm_path: &str) -> f64 {
    match gemm_path {
        "avx512f" => 16.0,
        "fma" => 8.0,
        "neon" => 4.0,
        _ => 1.0,
    }
}

/// `cores x GHz x 2 pipes x lanes x 2` GFLOP/s: two FMA pipes per core (AMD Zen 4/5, most
/// Intel server cores; some Intel parts have one 512-bit pipe, half this).
pub fn fma_peak_gflops(gemm_path: &str, cores: usize, ghz: f64) -> f64 {
    cores as f64 * ghz * 2.0 * lanes(gemm_path) * 2.0
}

/// GB/s of a parallel read of `bytes`, the median of `reps` passes after one warm-up pass.
/// The words are summed with wrapping integer adds, which the compiler vectorises (a float
/// sum is one dependency chain, bound by the adder rather than by memory), and the sum is
/// kept so the loads cannot be skipped.
pub fn read_bandwidth_gbs(bytes: usize, reps: usize) -> f64 {
    let data = vec![1u64; bytes / 8];
    let pass = || {
        let t = Instant::now();
        let s: u64 = data
            .par_chunks(1 << 15)
            .map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x)))
            .reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(s);
        t.elapsed().as_secs_f64()
    };
    pass();
    let times = (0..reps.max(1)).map(|_| pass()).collect();
    bytes as f64 / crate::median(times) / 1e9
}

/// Parameters that enter a matrix product per token: every projection of every block and
/// the LM head (embedding lookups and norms excluded).
pub fn matmul_params(cfg: &LmConfig) -> usize {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let q = cfg.num_attention_heads * cfg.head_dim;
    let kv = cfg.num_key_value_heads * cfg.head_dim;
    let block = h * q + 2 * h * kv + q * h + 3 * h * i;
    cfg.num_hidden_layers * block + cfg.vocab_size * h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_and_parameter_counts_follow_their_formulas() {
        // Two cores at 2.5 GHz, AVX-512: 2 x 2.5 x 2 pipes x 16 lanes x 2 = 320 GFLOP/s.
        assert_eq!(fma_peak_gflops("avx512f", 2, 2.5), 320.0);
        assert_eq!(fma_peak_gflops("fma", 2, 2.5), 160.0);
        // SmolLM2-135M (ASSETS.md): 30 blocks of width 576, FFN 1536, 9 query / 3 key-value
        // heads of 64, vocab 49152: 30 * (576*576 + 2*576*192 + 576*576 + 3*576*1536)
        // + 49152*576 = 134,479,872.
        let cfg = LmConfig {
            architecture: gpo_lm::Architecture::Llama,
            vocab_size: 49152,
            hidden_size: 576,
            intermediate_size: 1536,
            num_hidden_layers: 30,
            num_attention_heads: 9,
            num_key_value_heads: 3,
            head_dim: 64,
            rms_norm_eps: 1e-5,
            rope_theta: 1e5,
            max_position_embeddings: 8192,
            tie_word_embeddings: true,
        };
        assert_eq!(matmul_params(&cfg), 134_479_872);
    }

    #[test]
    fn a_read_is_measured_in_plausible_units() {
        let gbs = read_bandwidth_gbs(8 << 20, 1);
        assert!(gbs.is_finite() && gbs > 0.01, "{gbs}");
    }
}
