//! A Jinja chat template (`ChatTemplate::new`), rendered for a short conversation as
//! applying it to a prompt does. A template's loops and string repeats must stay within
//! the render budget: the per-input timeout and allocation cap catch one that does not.
#![no_main]

// Linked for its allocator, which caps single allocations (fuzz/src/lib.rs).
extern crate gpo_fuzz;

use gpo_tokenizer::{ChatMessage, ChatTemplate, SpecialTokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = ChatTemplate::new(source, "fuzz") else {
        return;
    };
    let chat = [
        ChatMessage::system("Be brief."),
        ChatMessage::user("Hi {{ there }}"),
        ChatMessage::assistant("Hello."),
        ChatMessage::user("Bye"),
    ];
    let special = SpecialTokens {
        bos: Some("<s>".into()),
        eos: Some("</s>".into()),
        unk: None,
        pad: None,
    };
    let _ = template.render(&chat, true, &special);
    let _ = template.render(&chat[1..2], false, &SpecialTokens::default());
});
