//! GGUF loading on small files written by the test: every supported quantization loads to
//! the values it encodes, and bad files fail with an error naming the file.

mod common;

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use gpo_lm::{read_gguf, Architecture, CausalLm, LmConfig, Pass, Trainable};

/// llama.cpp's `permute(w, n_head)`, applied by its converter to q/k rows.
fn permute(w: &Tensor, n_head: usize) -> Tensor {
    let (rows, cols) = w.dims2().unwrap();
    w.reshape((n_head, 2, rows / n_head / 2, cols))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((rows, cols))
        .unwrap()
}

fn gguf_name(hf: &str) -> String {
    let fixed = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = fixed.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, rest) = rest.split_once('.').unwrap();
    let (module, kind) = rest.rsplit_once('.').unwrap();
    let g = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        other => panic!("{other}"),
    };
    format!("blk.{layer}.{g}.{kind}")
}

/// Tiny config whose matrix widths are multiples of the 32-value quantization blocks.
fn cfg() -> LmConfig {
    LmConfig {
        hidden_size: 64,
        intermediate_size: 128,
        head_dim: 16,
        ..LmConfig::tiny(Architecture::Llama)
    }
}

/// Writes `model` as a GGUF file with matrices in `dtype` (norms stay F32) and returns the
/// file path.
fn write_gguf(model: &CausalLm, dtype: GgmlDType, arch: &str, dir: &Path) -> std::path::PathBuf {
    write_gguf_with(model, dtype, arch, dir, vec![])
}

/// [`write_gguf`] with `extra` metadata entries after the usual ones.
fn write_gguf_with(
    model: &CausalLm,
    dtype: GgmlDType,
    arch: &str,
    dir: &Path,
    extra: Vec<(String, Value)>,
) -> std::path::PathBuf {
    let c = model.config();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<_> = model.named_weights().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in names {
        let t = if name.ends_with("q_proj.weight") {
            permute(&t, c.num_attention_heads)
        } else if name.ends_with("k_proj.weight") {
            permute(&t, c.num_key_value_heads)
        } else {
            t
        };
        let q = if t.rank() == 1 {
            QTensor::quantize(&t, GgmlDType::F32)
        } else {
            QTensor::quantize(&t, dtype)
        };
        tensors.push((gguf_name(&name), q.unwrap()));
    }
    let tokens = Value::Array(
        (0..c.vocab_size)
            .map(|i| Value::String(format!("t{i}")))
            .collect(),
    );
    let a = |k: &str| format!("{arch}.{k}");
    let md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (a("embedding_length"), Value::U32(c.hidden_size as u32)),
        (
            a("feed_forward_length"),
            Value::U32(c.intermediate_size as u32),
        ),
        (a("block_count"), Value::U32(c.num_hidden_layers as u32)),
        (
            a("attention.head_count"),
            Value::U32(c.num_attention_heads as u32),
        ),
        (
            a("attention.head_count_kv"),
            Value::U32(c.num_key_value_heads as u32),
        ),
        (
            a("attention.layer_norm_rms_epsilon"),
            Value::F32(c.rms_norm_eps as f32),
        ),
        (a("rope.freq_base"), Value::F32(c.rope_theta as f32)),
        (
            a("context_length"),
            Value::U32(c.max_position_embeddings as u32),
        ),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens".into(), tokens),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
    ];
    let md: Vec<(String, Value)> = md.into_iter().chain(extra).collect();
    let path = dir.join(format!("tiny-{dtype:?}.gguf"));
    let mut f = std::fs::File::create(&path).unwrap();
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    path
}

#[test]
fn every_supported_quantization_loads_to_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(cfg(), 5, Trainable::Frozen, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[1u32, 5, 9, 2, 33, 17]], &Device::Cpu).unwrap();
    for dtype in [
        GgmlDType::F32,
        GgmlDType::F16,
        GgmlDType::BF16,
        GgmlDType::Q8_0,
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
    ] {
        let path = write_gguf(&model, dtype, "llama", dir.path());
        let ckpt = read_gguf(&path).unwrap_or_else(|e| panic!("{dtype:?}: {e}"));
        assert_eq!(&ckpt.config, model.config(), "{dtype:?}");
        assert_eq!(ckpt.tokenizer.tokens.len(), 64);
        let loaded = CausalLm::new(
            ckpt.config,
            ckpt.weights,
            Trainable::Frozen,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        // Expected: the same model with each matrix quantized and dequantized by candle (row
        // permutation commutes with row-wise block quantization).
        let mut map = std::collections::HashMap::new();
        for (name, t) in model.named_weights() {
            let q = if t.rank() == 1 {
                t
            } else {
                QTensor::quantize(&t, dtype)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap()
            };
            map.insert(name, q);
        }
        let expected = CausalLm::new(
            model.config().clone(),
            gpo_lm::WeightMap::new("expected", map),
            Trainable::Frozen,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let got = loaded.forward(&ids, None, &Pass::infer()).unwrap();
        let want = expected.forward(&ids, None, &Pass::infer()).unwrap();
        let d = common::max_abs_diff(&got, &want);
        assert!(d < 1e-6, "{dtype:?}: logits differ by {d}");
    }
}

#[test]
fn truncated_gguf_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(cfg(), 5, Trainable::Frozen, &Device::Cpu).unwrap();
    let path = write_gguf(&model, GgmlDType::Q8_0, "llama", dir.path());
    let bytes = std::fs::read(&path).unwrap();
    for keep in [10, 200, bytes.len() / 2, bytes.len() - 1] {
        let cut = dir.path().join(format!("cut{keep}.gguf"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let err = read_gguf(&cut)
            .err()
            .unwrap_or_else(|| panic!("{keep} bytes loaded"))
            .to_string();
        assert!(
            err.contains(&cut.display().to_string()) && err.contains("truncated"),
            "{keep}: {err}"
        );
    }
}

#[test]
fn unsupported_quantization_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(
        LmConfig {
            hidden_size: 256,
            intermediate_size: 256,
            head_dim: 64,
            ..cfg()
        },
        5,
        Trainable::Frozen,
        &Device::Cpu,
    )
    .unwrap();
    let path = write_gguf(&model, GgmlDType::Q5K, "llama", dir.path());
    let err = read_gguf(&path)
        .err()
        .expect("Q5_K must be refused")
        .to_string();
    assert!(
        err.contains("Q5K") && err.contains("supported: F32, F16, BF16, Q4_0, Q4_1, Q8_0"),
        "{err}"
    );
}

#[test]
fn a_zero_alignment_is_an_error_not_a_panic_in_candle() {
    // candle's GGUF reader divides by general.alignment; gpo checks it first.
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(cfg(), 5, Trainable::Frozen, &Device::Cpu).unwrap();
    let zero = vec![("general.alignment".to_string(), Value::U32(0))];
    let path = write_gguf_with(&model, GgmlDType::F32, "llama", dir.path(), zero);
    let err = read_gguf(&path)
        .err()
        .expect("alignment 0 must be refused")
        .to_string();
    assert!(
        err.contains("general.alignment is 0") && err.contains("tiny-"),
        "{err}"
    );
    // The usual 32 (which candle's writer uses) reads as before.
    let usual = vec![("general.alignment".to_string(), Value::U32(32))];
    let path = write_gguf_with(&model, GgmlDType::F32, "llama", dir.path(), usual);
    read_gguf(&path).unwrap();
}

#[test]
fn unsupported_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(cfg(), 5, Trainable::Frozen, &Device::Cpu).unwrap();
    let path = write_gguf(&model, GgmlDType::F32, "gptneox", dir.path());
    let err = read_gguf(&path)
        .err()
        .expect("gptneox must be refused")
        .to_string();
    assert!(
        err.contains("architecture `gptneox` is not supported"),
        "{err}"
    );
}

#[test]
fn truncated_safetensors_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(cfg(), 5, Trainable::Frozen, &Device::Cpu).unwrap();
    model.save_hf(dir.path()).unwrap();
    let st = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let err = gpo_lm::read_hf_dir(dir.path(), DType::F32)
        .expect_err("truncated file loaded")
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn unsupported_hf_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type":"gpt2","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2}"#).unwrap();
    let err = gpo_lm::read_hf_dir(dir.path(), DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("model_type `gpt2` is not supported"),
        "{err}"
    );
}

/// `bytes` with the on-disk dimensions of tensor `name` in its header replaced by `dims`
/// (same count).
fn with_dims(bytes: &[u8], name: &str, dims: &[u64]) -> Vec<u8> {
    let at = bytes
        .windows(name.len())
        .rposition(|w| w == name.as_bytes())
        .unwrap()
        + name.len();
    let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(n, dims.len());
    let mut out = bytes.to_vec();
    for (i, d) in dims.iter().enumerate() {
        let p = at + 4 + 8 * i;
        out[p..p + 8].copy_from_slice(&d.to_le_bytes());
    }
    out
}

#[test]
fn a_header_declaring_a_huge_tensor_is_a_one_line_error_before_any_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(cfg(), 5, Trainable::Frozen, &Device::Cpu).unwrap();
    let path = write_gguf(&model, GgmlDType::F32, "llama", dir.path());
    let bytes = std::fs::read(&path).unwrap();
    // 2^40 x 64 f32 (4 PiB) in a file of kilobytes, and a shape whose size overflows u64.
    for (dims, size) in [
        ([64, 1 << 40], "281474976710656 bytes"),
        ([1 << 40, 1 << 40], "more than 2^64 bytes"),
    ] {
        let huge = dir.path().join("huge.gguf");
        std::fs::write(&huge, with_dims(&bytes, "blk.0.attn_q.weight", &dims)).unwrap();
        let err = read_gguf(&huge)
            .err()
            .expect("a huge tensor loaded")
            .to_string();
        assert!(
            err.starts_with(&huge.display().to_string())
                && err.contains("tensor `blk.0.attn_q.weight` declares shape")
                && err.contains(size)
                && !err.contains('\n'),
            "{err}"
        );
    }
}

#[test]
fn a_tensor_with_no_values_is_an_error_not_a_misaligned_read_in_candle() {
    // Found by `fuzz/fuzz_targets/gguf.rs`: a dimension of 0 made candle view an empty,
    // dangling buffer as f32 blocks (undefined behaviour; an abort in debug builds).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/gguf-empty-tensor");
    let err = read_gguf(&path).err().expect("the file loaded").to_string();
    assert!(
        err.contains("gguf-empty-tensor: tensor `") && err.contains("which holds no values"),
        "{err}"
    );
}

#[test]
fn a_layer_count_beyond_the_tensors_is_an_error_not_an_allocation() {
    // Found by `fuzz/fuzz_targets/gguf.rs`: `llama.block_count` in the millions sized the
    // model's list of blocks (6.7 GB) before the first missing tensor was noticed.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/gguf-millions-of-layers");
    let ckpt = read_gguf(&path).unwrap();
    assert!(
        ckpt.config.num_hidden_layers > 1_000_000,
        "{}",
        ckpt.config.num_hidden_layers
    );
    let err = CausalLm::new(
        ckpt.config,
        ckpt.weights,
        Trainable::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .expect_err("a model of missing layers built")
    .to_string();
    assert!(
        err.contains("gguf-millions-of-layers: missing tensor `model.layers."),
        "{err}"
    );
}
