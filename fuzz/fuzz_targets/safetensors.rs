//! Safetensors files in every place gpo reads them, each beside valid companions: a Hugging
//! Face model's weights (`read_hf_dir`, then the model built from them), LoRA adapter weights
//! (`load_lora`), the embedded judge's heads (`Heads::load`) and AdamW state (`AdamW::load`).
//! The first byte picks the place.
#![no_main]

use std::sync::OnceLock;

use candle_core::{DType, Device};
use gpo_fuzz::companions::{self, HEADS_DIM};
use gpo_fuzz::Scratch;
use gpo_lm::{CausalLm, Trainable};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static Scratch {
    static DIRS: OnceLock<Scratch> = OnceLock::new();
    DIRS.get_or_init(|| {
        let s = Scratch::new("safetensors");
        companions::write_hf_model(&s.dir().join("model"));
        companions::write_lora_adapter(&s.dir().join("adapter"));
        companions::write_judge_heads(&s.dir().join("heads"));
        s
    })
}

fn model_weights(s: &Scratch, data: &[u8]) {
    s.write("model/model.safetensors", data);
    if let Ok((cfg, weights)) = gpo_lm::read_hf_dir(&s.dir().join("model"), DType::F32) {
        let _ = CausalLm::new(cfg, weights, Trainable::Frozen, DType::F32, &Device::Cpu);
    }
}

fn adapter_weights(s: &Scratch, data: &[u8]) {
    s.write("adapter/adapter_model.safetensors", data);
    let mut model = companions::tiny_model();
    let _ = gpo_lm::load_lora(&mut model, &s.dir().join("adapter"));
}

fn judge_heads(s: &Scratch, data: &[u8]) {
    s.write("heads/heads.safetensors", data);
    let _ = gpo_judge::Heads::load(&s.dir().join("heads"), HEADS_DIM);
}

fn adamw_state(s: &Scratch, data: &[u8]) {
    let path = s.write("optim.safetensors", data);
    let _ = companions::tiny_adamw().load(&path);
}

fuzz_target!(|data: &[u8]| {
    let Some((place, file)) = gpo_fuzz::pick(data, 4) else {
        return;
    };
    let s = scratch();
    match place {
        0 => model_weights(s, file),
        1 => adapter_weights(s, file),
        2 => judge_heads(s, file),
        _ => adamw_state(s, file),
    }
});
