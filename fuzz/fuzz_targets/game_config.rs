//! A game configuration: TOML text and `--set key=value` overrides (`parse_config`), as
//! `gpo train CONFIG --set ...` reads them. The input is the TOML text, then each override
//! after a NUL byte.
#![no_main]

// Linked for its allocator, which caps single allocations (fuzz/src/lib.rs).
extern crate gpo_fuzz;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let toml = parts.next().unwrap_or_default();
    let overrides: Vec<String> = parts.map(str::to_string).collect();
    let _ = gpo_game::parse_config(toml, "fuzz.toml", &overrides);
});
