//! Loading GGUF v3 checkpoints: hyper-parameters and tokenizer from the metadata, tensors
//! dequantized to f32 and renamed to Hugging Face names.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use gpo_tokenizer::GgufTokenizerSpec;

use crate::config::{Architecture, LmConfig};
use crate::weights::WeightMap;
use crate::{Error, Result};

/// Quantisations gpo dequantizes. Others are refused with an error naming the tensor.
const SUPPORTED: [GgmlDType; 6] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q8_0,
];

/// Everything a GGUF file holds that gpo uses.
pub struct GgufCheckpoint {
    /// Hyper-parameters.
    pub config: LmConfig,
    /// Tensors in Hugging Face naming, f32 on the CPU.
    pub weights: WeightMap,
    /// The tokenizer described by the metadata.
    pub tokenizer: GgufTokenizerSpec,
}

/// Reads a GGUF file completely (metadata, tokenizer, every tensor dequantized to f32).
pub fn read_gguf(path: &Path) -> Result<GgufCheckpoint> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    read_gguf_from(&mut BufReader::new(file), path)
}

/// [`read_gguf`] on GGUF bytes from `reader`, read from its start; `path` names the file in
/// errors.
pub fn read_gguf_from<R: Read + Seek>(reader: &mut R, path: &Path) -> Result<GgufCheckpoint> {
    let content = read_header(reader, path)?;
    let config = read_config(&content, path)?;
    let tokenizer = GgufTokenizerSpec::from_metadata(&content.metadata)
        .map_err(|e| Error::bad(path, e.to_string()))?;
    let file_len = reader
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| Error::io(path, e))?;
    let mut tensors = HashMap::with_capacity(content.tensor_infos.len());
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let t = read_tensor(reader, &content, name, file_len, path)?;
        let Some(hf_name) = hf_name(name) else {
            tracing::debug!("{}: ignoring tensor `{name}`", path.display());
            continue;
        };
        let t = match (config.architecture, hf_name.rsplit('.').nth(1)) {
            // llama.cpp's converter permutes q/k rows for its interleaved RoPE; undo it so the
            // weights use Hugging Face's rotate-half layout (and LoRA adapters stay HF-compatible).
            (Architecture::Llama, Some("q_proj")) if hf_name.ends_with("weight") => {
                unpermute_rows(&t, config.num_attention_heads)?
            }
            (Architecture::Llama, Some("k_proj")) if hf_name.ends_with("weight") => {
                unpermute_rows(&t, config.num_key_value_heads)?
            }
            _ => t,
        };
        tensors.insert(hf_name, t);
    }
    Ok(GgufCheckpoint {
        config,
        weights: WeightMap::new(path, tensors),
        tokenizer,
    })
}

/// The header: metadata and the table of tensors.
fn read_header<R: Read + Seek>(reader: &mut R, path: &Path) -> Result<Content> {
    let rewind = |r: &mut R| {
        r.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| Error::io(path, e))
    };
    rewind(reader)?;
    if crate::gguf_alignment::declared_alignment(reader) == Some(0) {
        return Err(Error::bad(
            path,
            "general.alignment is 0; it must be a positive number of bytes (32 is usual)",
        ));
    }
    rewind(reader)?;
    Content::read(reader).map_err(|e| {
        Error::bad(
            path,
            format!("not a readable GGUF file ({e}); is it truncated?"),
        )
    })
}

/// The hyper-parameters the metadata gives, checked.
fn read_config(content: &Content, path: &Path) -> Result<LmConfig> {
    let md = Metadata {
        path,
        map: &content.metadata,
    };
    let arch_name = md.string("general.architecture")?;
    let architecture = Architecture::parse(&arch_name).ok_or_else(|| {
        Error::unsupported(
            path,
            format!("architecture `{arch_name}` is not supported (supported: llama, qwen2)"),
        )
    })?;
    let a = architecture.as_str();
    let embd = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| Error::MissingTensor {
            path: path.into(),
            name: "token_embd.weight".into(),
        })?;
    let hidden = md.usize(&format!("{a}.embedding_length"))?;
    let heads = md.usize(&format!("{a}.attention.head_count"))?;
    let config = LmConfig {
        architecture,
        vocab_size: embd.shape.dims().first().copied().unwrap_or(0),
        hidden_size: hidden,
        intermediate_size: md.usize(&format!("{a}.feed_forward_length"))?,
        num_hidden_layers: md.usize(&format!("{a}.block_count"))?,
        num_attention_heads: heads,
        num_key_value_heads: md.usize_or(&format!("{a}.attention.head_count_kv"), heads)?,
        head_dim: md.usize_or(&format!("{a}.attention.key_length"), hidden / heads.max(1))?,
        rms_norm_eps: md.f64_or(&format!("{a}.attention.layer_norm_rms_epsilon"), 1e-5)?,
        rope_theta: md.f64_or(&format!("{a}.rope.freq_base"), 10_000.0)?,
        max_position_embeddings: md.usize_or(&format!("{a}.context_length"), 2048)?,
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
    };
    config.validate(path)?;
    Ok(config)
}

/// Tensor `name`, dequantized to f32, after checking that the file holds the bytes its
/// shape declares (a corrupt shape must not size an allocation).
fn read_tensor<R: Read + Seek>(
    reader: &mut R,
    content: &Content,
    name: &str,
    file_len: u64,
    path: &Path,
) -> Result<Tensor> {
    let info = &content.tensor_infos[name];
    let dtype = info.ggml_dtype;
    if !SUPPORTED.contains(&dtype) {
        return Err(Error::unsupported(
            path,
            format!(
                "tensor `{name}` uses quantization {dtype:?}; supported: F32, F16, BF16, Q4_0, Q4_1, Q8_0"
            ),
        ));
    }
    let dims = info.shape.dims();
    let elems = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    if elems == Some(0) {
        // candle would view its empty buffer as blocks through a dangling, misaligned pointer.
        return Err(Error::bad(
            path,
            format!("tensor `{name}` declares shape {dims:?}, which holds no values"),
        ));
    }
    let start = content.tensor_data_offset.checked_add(info.offset);
    let available = start.map_or(0, |s| file_len.saturating_sub(s));
    let bytes = elems.and_then(|n| {
        n.div_ceil(dtype.block_size() as u64)
            .checked_mul(dtype.type_size() as u64)
    });
    if bytes.is_none_or(|b| b > available) {
        let size = bytes.map_or("more than 2^64".to_string(), |b| b.to_string());
        return Err(Error::bad(
            path,
            format!(
                "tensor `{name}` declares shape {dims:?} of {dtype:?} ({size} bytes) at data \
                 offset {}, but the file holds {available} bytes there; is it truncated or corrupt?",
                info.offset
            ),
        ));
    }
    let q = info
        .read(reader, content.tensor_data_offset, &Device::Cpu)
        .map_err(|e| {
            Error::bad(
                path,
                format!("tensor `{name}`: {e}; is the file truncated?"),
            )
        })?;
    Ok(q.dequantize(&Device::Cpu)?)
}

/// Inverse of llama.cpp's `permute(w, n_head)`: rows `(head, pair, half)` -> `(head, half, pair)`.
fn unpermute_rows(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let t = w
        .reshape((n_head, rows / n_head / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?;
    Ok(t.reshape((rows, cols))?)
}

/// Maps a GGUF tensor name to its Hugging Face name.
fn hf_name(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (module, kind) = rest.rsplit_once('.')?;
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Typed access to GGUF metadata with errors that name the file and key.
struct Metadata<'a> {
    path: &'a Path,
    map: &'a HashMap<String, Value>,
}

impl Metadata<'_> {
    fn bad(&self, key: &str, what: &str) -> Error {
        Error::bad(self.path, format!("metadata `{key}`: {what}"))
    }
    fn get(&self, key: &str) -> Result<&Value> {
        self.map.get(key).ok_or_else(|| self.bad(key, "missing"))
    }
    fn string(&self, key: &str) -> Result<String> {
        self.get(key)?
            .to_string()
            .cloned()
            .map_err(|_| self.bad(key, "expected a string"))
    }
    fn usize(&self, key: &str) -> Result<usize> {
        let v = self.get(key)?;
        let n = v
            .to_u64()
            .or_else(|_| v.to_u32().map(u64::from))
            .or_else(|_| v.to_i32().map(|x| x.max(0) as u64));
        n.map(|n| n as usize)
            .map_err(|_| self.bad(key, "expected an integer"))
    }
    fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.map.contains_key(key) {
            self.usize(key)
        } else {
            Ok(default)
        }
    }
    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.map.get(key) {
            None => Ok(default),
            // An f32 such as 1e-5 is read through its shortest decimal form, so the config
            // holds the value the model was written with rather than 9.999999747378752e-6.
            Some(v) => v
                .to_f64()
                .or_else(|_| {
                    v.to_f32()
                        .map(|x| x.to_string().parse().unwrap_or(f64::from(x)))
                })
                .map_err(|_| self.bad(key, "expected a float")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_map_to_hf_names() {
        assert_eq!(
            hf_name("blk.3.attn_q.weight").as_deref(),
            Some("model.layers.3.self_attn.q_proj.weight")
        );
        assert_eq!(
            hf_name("blk.0.attn_k.bias").as_deref(),
            Some("model.layers.0.self_attn.k_proj.bias")
        );
        assert_eq!(
            hf_name("blk.12.ffn_down.weight").as_deref(),
            Some("model.layers.12.mlp.down_proj.weight")
        );
        assert_eq!(
            hf_name("token_embd.weight").as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(hf_name("rope_freqs.weight"), None);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() -> Result<()> {
        // llama.cpp: w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (n_head, rows, cols) = (2usize, 8usize, 3usize);
        let w = Tensor::arange(0f32, (rows * cols) as f32, &Device::Cpu)?.reshape((rows, cols))?;
        let permuted = w
            .reshape((n_head, 2, rows / n_head / 2, cols))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((rows, cols))?;
        let back = unpermute_rows(&permuted, n_head)?;
        assert_eq!(back.to_vec2::<f32>()?, w.to_vec2::<f32>()?);
        Ok(())
    }
}
