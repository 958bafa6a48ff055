//! A GGUF file: header, metadata, tensor table and tensors (`gpo_lm::read_gguf_from`), then
//! what loading a GGUF model does with them: the tokenizer its metadata describes, and the
//! model built from the config and weights.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use candle_core::{DType, Device};
use gpo_lm::{CausalLm, Trainable};
use libfuzzer_sys::fuzz_target;

/// Models with longer contexts are valid but spend the input's time budget building their
/// RoPE table (bounded by `gpo_lm`'s own limit on positions), not reading the file.
const MAX_POSITIONS_BUILT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.gguf");
    let Ok(ckpt) = gpo_lm::read_gguf_from(&mut Cursor::new(data), path) else {
        return;
    };
    if let Ok(tok) = gpo_tokenizer::Tokenizer::from_gguf_spec(ckpt.tokenizer) {
        gpo_fuzz::exercise_tokenizer(&tok);
    }
    if ckpt.config.max_position_embeddings <= MAX_POSITIONS_BUILT {
        let _ = CausalLm::new(
            ckpt.config,
            ckpt.weights,
            Trainable::Frozen,
            DType::F32,
            &Device::Cpu,
        );
    }
});
