//! The restricted unpickler (`toxicity::pickle::unpickle`) and the Keras tokenizer read from
//! its result (`KerasTokenizer::from_pickle`), then used on a text as the toxicity judge does.
#![no_main]

// Linked for its allocator, which caps single allocations (fuzz/src/lib.rs).
extern crate gpo_fuzz;

use std::path::Path;

use gpo_judge::toxicity::keras_tokenizer::KerasTokenizer;
use gpo_judge::toxicity::MAX_WORDS;
use gpo_keras::pickle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pickle::unpickle(data);
    if let Ok(tok) = KerasTokenizer::from_pickle(Path::new("tokenizer.pickle"), data) {
        let _ = tok.padded("The cat sat, on THE mat! ünï", MAX_WORDS);
        let _ = tok.vocab_len();
    }
});
