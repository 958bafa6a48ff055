//! The tokenizer keys of a GGUF header (`GgufTokenizerSpec`) given as values rather than
//! GGUF bytes, so that the fuzzer works on the tokenizer built from them
//! (`Tokenizer::from_gguf_spec`) instead of the GGUF framing. The input is text, fields
//! separated by NUL bytes (`gpo_fuzz::spec_fields` documents them).
#![no_main]

use gpo_tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tok) = Tokenizer::from_gguf_spec(gpo_fuzz::spec_from_fields(text)) {
        gpo_fuzz::exercise_tokenizer(&tok);
    }
});
