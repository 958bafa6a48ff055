//! The JSON configs read beside weights, each beside valid companions: PEFT's
//! `adapter_config.json` (`load_lora`, `adapter_base_model`), a Hugging Face model's
//! `config.json` (`read_hf_dir`) and the judge heads' `card.json` (`Heads::load`). The first
//! byte picks the file.
#![no_main]

use std::sync::OnceLock;

use candle_core::DType;
use gpo_fuzz::companions::{self, HEADS_DIM};
use gpo_fuzz::Scratch;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static Scratch {
    static DIRS: OnceLock<Scratch> = OnceLock::new();
    DIRS.get_or_init(|| {
        let s = Scratch::new("json_configs");
        companions::write_hf_model(&s.dir().join("model"));
        companions::write_lora_adapter(&s.dir().join("adapter"));
        companions::write_judge_heads(&s.dir().join("heads"));
        s
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((file, text)) = gpo_fuzz::pick(data, 3) else {
        return;
    };
    let s = scratch();
    match file {
        0 => {
            s.write("adapter/adapter_config.json", text);
            let dir = s.dir().join("adapter");
            let _ = gpo_lm::adapter_base_model(&dir);
            let mut model = companions::tiny_model();
            let _ = gpo_lm::load_lora(&mut model, &dir);
        }
        1 => {
            s.write("model/config.json", text);
            let _ = gpo_lm::read_hf_dir(&s.dir().join("model"), DType::F32);
        }
        _ => {
            s.write("heads/card.json", text);
            let _ = gpo_judge::Heads::load(&s.dir().join("heads"), HEADS_DIM);
        }
    }
});
