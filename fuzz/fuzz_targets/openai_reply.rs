//! A reply from an OpenAI-compatible server: the body read as JSON (`gpo_openai::parse_reply`),
//! then what the `server` judge reads from it (`verdict_distribution`) and what a served
//! policy reads (`choices[0].message.content`).
#![no_main]

// Linked for its allocator, which caps single allocations (fuzz/src/lib.rs).
extern crate gpo_fuzz;

use gpo_judge::fuzzing::verdict_distribution;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(reply) = gpo_openai::parse_reply(&text) else {
        return;
    };
    if let Ok(Some(verdict)) = verdict_distribution(&reply) {
        let p = verdict.p_unsafe();
        assert!((0.0..=1.0).contains(&p), "P(unsafe) = {p}");
    }
    let _ = reply.pointer("/choices/0/message/content");
});
