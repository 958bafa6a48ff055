//! A Hugging Face tokenizer directory (`Tokenizer::from_file`): `tokenizer.json` alone, or
//! one of it, `tokenizer_config.json`, `generation_config.json` and `chat_template.jinja`
//! fuzzed beside valid others. The first byte picks the file. The tokenizer is then used
//! once, as loading a model does.
#![no_main]

use std::sync::OnceLock;

use gpo_fuzz::companions::{CHAT_TEMPLATE, GENERATION_CONFIG, TOKENIZER_CONFIG, TOKENIZER_JSON};
use gpo_fuzz::Scratch;
use gpo_tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

/// The files of a full directory, in the order the first byte picks them.
const FILES: [(&str, &str); 4] = [
    ("tokenizer.json", TOKENIZER_JSON),
    ("tokenizer_config.json", TOKENIZER_CONFIG),
    ("generation_config.json", GENERATION_CONFIG),
    ("chat_template.jinja", CHAT_TEMPLATE),
];

fn scratch() -> &'static Scratch {
    static DIR: OnceLock<Scratch> = OnceLock::new();
    DIR.get_or_init(|| Scratch::new("tokenizer_json"))
}

fuzz_target!(|data: &[u8]| {
    let Some((pick, file)) = gpo_fuzz::pick(data, 5) else {
        return;
    };
    let s = scratch();
    for (i, (name, valid)) in FILES.iter().enumerate() {
        match usize::from(pick) {
            // tokenizer.json alone.
            4 if i > 0 => s.remove(name),
            4 => drop(s.write(name, file)),
            p if p == i => drop(s.write(name, file)),
            _ => drop(s.write(name, valid.as_bytes())),
        }
    }
    if let Ok(tok) = Tokenizer::from_file(s.dir()) {
        gpo_fuzz::exercise_tokenizer(&tok);
    }
});
