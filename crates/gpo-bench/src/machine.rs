//! The machine a benchmark ran on, and how close to its limits a phase ran: its CPU, the
//! kernel each product ran with ([`gpo_lm::cpu`]), an estimate of its FMA peak, and its
//! memory read bandwidth measured by a stream-like sum.

use std::time::Instant;

use gpo_lm::LmConfig;
use rayon::prelude::*;
use serde::Serialize;

use crate::{SamplingBench, TrainBench};

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
    /// The products of a bf16 model ([`gpo_lm::cpu::bf16_path`]); their peak is twice the
    /// f32 FMA peak (`vdpbf16ps` does two multiply-adds per lane).
    pub bf16_path: &'static str,
    /// The clock `/proc/cpuinfo` reports for the first CPU, in GHz (a virtual machine's may
    /// be nominal).
    pub clock_ghz: Option<f64>,
    /// f32 FMA peak of the physical cores the threads can use (`threads`, at most the
    /// `cpu cores` `/proc/cpuinfo` reports: SMT siblings share their core's FMA pipes) at
    /// `clock_ghz`, with two FMA pipes per core of the GEMM path's width
    /// (`fma_peak_gflops`): an estimate, not a measurement.
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
        let cores = field("cpu cores")
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(threads, |c| c.min(threads));
        let gemm_path = gpo_lm::cpu::gemm_path();
        Machine {
            cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads,
            gemm_path,
            decode_path: gpo_lm::cpu::decode_path(),
            bf16_path: gpo_lm::cpu::bf16_path(),
            clock_ghz,
            fma_peak_gflops: clock_ghz.map(|ghz| fma_peak_gflops(gemm_path, cores, ghz)),
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

/// `cores x GHz x 2 pipes x lanes x 2` GFLOP/s: two FMA pipes of the path's full width per core
/// (AMD Zen 5, most Intel server cores; Zen 4 and some Intel parts run 512-bit FMAs at half
/// this rate).
pub(crate) fn fma_peak_gflops(gemm_path: &str, cores: usize, ghz: f64) -> f64 {
    cores as f64 * ghz * 2.0 * lanes(gemm_path) * 2.0
}

/// GB/s of a parallel read of `bytes`, the median of `reps` passes after one warm-up pass.
/// The words are summed with wrapping integer adds, which the compiler vectorises (a float
/// sum is one dependency chain, bound by the adder rather than by memory), and the sum is
/// kept so the loads cannot be skipped.
pub(crate) fn read_bandwidth_gbs(bytes: usize, reps: usize) -> f64 {
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

/// What each phase of `gpo bench` achieved, to set beside [`Machine`]'s limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Achieved {
    /// The full fine-tuning step: 6 FLOPs per matmul parameter per token (forward 2,
    /// backward 4; attention's own products, about 3% at 128 tokens, left out).
    pub train_step_gflops: Option<f64>,
    /// The LoRA step: 4 FLOPs per matmul parameter per token (the frozen weights get no
    /// gradient; the adapters' own products are negligible).
    pub lora_step_gflops: Option<f64>,
    /// GB/s of weights decoding streams: each new token reads every matmul weight once for the
    /// whole batch. The prefill's time is included, so this is a lower bound.
    pub decode_weight_gbs: f64,
}

impl Achieved {
    /// From the model's matmul parameters ([`matmul_params`]), the bytes of one weight in its
    /// compute dtype, and the measurements.
    pub fn of(
        matmul_params: usize,
        weight_bytes: usize,
        gen: &SamplingBench,
        full: Option<&TrainBench>,
        lora: Option<&TrainBench>,
    ) -> Achieved {
        let p = matmul_params as f64;
        let gflops = |b: &TrainBench, per_token: f64| {
            per_token * p * (b.batch * b.seq_len) as f64 / b.step_s / 1e9
        };
        Achieved {
            train_step_gflops: full.map(|b| gflops(b, 6.0)),
            lora_step_gflops: lora.map(|b| gflops(b, 4.0)),
            decode_weight_gbs: gen.new_tokens as f64 * p * weight_bytes as f64 / gen.seconds / 1e9,
        }
    }
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
        // SmolLM2-135M (docs/assets.md): 30 blocks of width 576, FFN 1536, 9 query / 3 key-value
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
    fn achieved_rates_follow_their_formulas() {
        // 1e9 matmul parameters, 8 x 128 tokens in 6.144 s: 6 * 1e9 * 1024 / 6.144 s = 1e12
        // FLOP/s = 1000 GFLOP/s; a LoRA step as long: 4/6 of that. 64 new tokens in 2.56 s of
        // 4-byte weights: 64 * 4e9 B / 2.56 s = 100 GB/s.
        let train = TrainBench {
            batch: 8,
            seq_len: 128,
            trainable_params: 1,
            step_s: 6.144,
            forward_s: 0.0,
            backward_s: 0.0,
            optimizer_s: 0.0,
        };
        let gen = SamplingBench {
            batch: 8,
            new_tokens: 64,
            seconds: 2.56,
            tokens_per_s: 200.0,
        };
        let a = Achieved::of(1_000_000_000, 4, &gen, Some(&train), Some(&train));
        assert!((a.train_step_gflops.unwrap() - 1000.0).abs() < 1e-9);
        assert!((a.lora_step_gflops.unwrap() - 1000.0 * 4.0 / 6.0).abs() < 1e-9);
        assert!((a.decode_weight_gbs - 100.0).abs() < 1e-9);
        // bf16 weights stream half the bytes.
        assert!(
            (Achieved::of(1_000_000_000, 2, &gen, None, None).decode_weight_gbs - 50.0).abs()
                < 1e-9
        );
    }

    #[test]
    fn a_read_is_measured_in_plausible_units() {
        let gbs = read_bandwidth_gbs(8 << 20, 1);
        assert!(gbs.is_finite() && gbs > 0.01, "{gbs}");
    }
}
