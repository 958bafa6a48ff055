//! Helpers shared by gpo's fuzz targets (`fuzz_targets/*.rs`).
//!
//! - [`CappedAlloc`] is every target's global allocator: one allocation larger than
//!   [`MAX_ALLOC`] aborts, so libFuzzer records the input. A length field trusted before it is
//!   checked against the file shows up even when the allocation would have succeeded lazily
//!   (calloc of untouched pages never reaches the RSS limit).
//! - [`Scratch`] holds files for the readers that take a path: the input is written under
//!   the name the reader expects, beside valid companions.
//! - [`exercise_tokenizer`] runs a freshly read tokenizer once, as loading a model does.

pub mod companions;
pub mod h5_writer;
pub mod pickle_writer;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};

/// The largest single allocation a target may make: far above what a valid input of
/// libFuzzer's `-max_len` needs, far below what a trusted length field asks for.
pub const MAX_ALLOC: usize = 256 << 20;

/// The system allocator, refusing any one allocation above [`MAX_ALLOC`] by aborting.
pub struct CappedAlloc;

fn check(size: usize) {
    if size > MAX_ALLOC {
        // eprintln! on an unbuffered stderr does not allocate.
        eprintln!("gpo-fuzz: one allocation of {size} bytes (cap {MAX_ALLOC}): a length field trusted before it was checked");
        std::process::abort();
    }
}

// SAFETY: forwards to `System` unchanged; only refuses sizes before calling it.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

/// A directory of this process for the files a path-taking reader opens. It lives under
/// `$TMPDIR` (`scripts/fuzz.sh` points that at a directory it deletes afterwards).
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A fresh directory named after `target` and this process.
    pub fn new(target: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("gpo-fuzz-{target}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the scratch directory");
        Scratch { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).expect("writing a scratch file");
        path
    }

    /// Removes `name` from the directory if it is there.
    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
    }
}

/// The first byte picks one of `n` variants; the rest is the input proper.
pub fn pick(data: &[u8], n: u8) -> Option<(u8, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((first % n, rest))
}

/// Encodes, decodes and renders a chat with a tokenizer that was just read, as loading a
/// model and generating does; errors are fine, panics are not.
pub fn exercise_tokenizer(tok: &gpo_tokenizer::Tokenizer) {
    if let Ok(ids) = tok.encode("Hello, world! 123 <|im_end|> ünï", true) {
        let _ = tok.decode(&ids, true);
        let _ = tok.decode(&ids, false);
    }
    let _ = tok.decode(&[0, 1, 2, u32::MAX], true);
    let chat = [
        gpo_tokenizer::ChatMessage::system("Be brief."),
        gpo_tokenizer::ChatMessage::user("hi"),
    ];
    let _ = tok.apply_chat_template(&chat, true);
}

/// A [`gpo_tokenizer::GgufTokenizerSpec`] from text fields separated by NUL bytes: model,
/// pre (empty: none), tokens (one per line), merges (one per line), token types (commas;
/// empty: none), the bos, eos, pad and unk ids (commas, each may be empty), add_bos and
/// add_eos (`1`/`0`, comma, each may be empty), then the chat template (absent: none).
/// Missing fields take their defaults; numbers that do not parse are left out.
pub fn spec_from_fields(text: &str) -> gpo_tokenizer::GgufTokenizerSpec {
    let f: Vec<&str> = text.split('\0').collect();
    let field = |i: usize| f.get(i).copied().unwrap_or_default();
    let lines = |i: usize| -> Vec<String> {
        let s = field(i);
        if s.is_empty() {
            Vec::new()
        } else {
            s.split('\n').map(str::to_string).collect()
        }
    };
    let list = |i: usize| -> Vec<&str> { field(i).split(',').collect() };
    let id = |i: usize, k: usize| list(i).get(k).and_then(|x| x.parse().ok());
    let flag = |k: usize| {
        list(6)
            .get(k)
            .and_then(|x| x.parse::<u8>().ok())
            .map(|x| x == 1)
    };
    let types = Some(field(4))
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect());
    gpo_tokenizer::GgufTokenizerSpec {
        model: field(0).to_string(),
        pre: Some(field(1)).filter(|s| !s.is_empty()).map(str::to_string),
        tokens: lines(2),
        merges: lines(3),
        token_types: types,
        bos_id: id(5, 0),
        eos_id: id(5, 1),
        pad_id: id(5, 2),
        unk_id: id(5, 3),
        add_bos: flag(0),
        add_eos: flag(1),
        chat_template: f.get(7).map(|s| s.to_string()),
    }
}
