//! all-MiniLM-L6-v2 against sentence-transformers on the same model directory.
//! Reference: tests/fixtures/minilm_reference.json, made by tests/reference/make_fixtures.py
//! (sentence-transformers 6.2.0, torch 2.11 on CPU, f32).

use std::time::Instant;

use candle_core::Device;
use gpo_assets::{Asset, AssetCache};
use gpo_embed::SentenceEmbedder;

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    truncated: bool,
    embedding: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

/// The same tolerance as the acceptance criterion of issue 3.
const TOL: f32 = 1e-4;

fn embedder() -> SentenceEmbedder {
    let dir = AssetCache::from_env()
        .and_then(|c| c.fetch(Asset::AllMiniLmL6V2))
        .expect("fetch all-minilm-l6-v2 (run `gpo assets fetch all-minilm-l6-v2`)");
    SentenceEmbedder::load(&dir, &Device::Cpu).expect("load all-MiniLM-L6-v2")
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("fixtures/minilm_reference.json")).expect("fixture")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn embeddings_match_sentence_transformers_in_one_batch() {
    let reference = reference();
    let e = embedder();
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let out = e.embed(&texts).expect("embed");
    assert_eq!(out.len(), texts.len());
    assert_eq!(out.dim(), 384);
    let want_truncated = reference.cases.iter().filter(|c| c.truncated).count();
    assert_eq!(want_truncated, 1, "the fixture has one over-long text");
    assert_eq!(out.truncated(), want_truncated);
    let mut worst = 0f32;
    for (i, case) in reference.cases.iter().enumerate() {
        let d = max_abs_diff(out.row(i), &case.embedding);
        assert!(d < TOL, "{:?}: max |diff| {d}", case.text);
        worst = worst.max(d);
    }
    eprintln!("worst max |diff| vs sentence-transformers: {worst:e}");
}

#[test]
fn each_text_alone_gives_the_same_embedding_as_in_a_batch() {
    let reference = reference();
    let e = embedder();
    for case in &reference.cases {
        let out = e.embed(&[case.text.as_str()]).expect("embed");
        let d = max_abs_diff(out.row(0), &case.embedding);
        assert!(d < TOL, "{:?}: max |diff| {d}", case.text);
        assert_eq!(out.truncated(), usize::from(case.truncated));
    }
}

#[test]
fn token_ids_match_the_reference_tokenizer_after_truncation() {
    let reference = reference();
    let e = embedder();
    for case in &reference.cases {
        assert_eq!(
            e.token_ids(&case.text).expect("encode"),
            case.ids,
            "{:?}",
            case.text
        );
    }
}

#[test]
fn empty_input_list_gives_no_rows() {
    let out = embedder().embed(&[]).expect("embed nothing");
    assert!(out.is_empty());
    assert_eq!(out.dim(), 384);
}

#[test]
fn batch_of_64_short_prompts_is_fast() {
    let e = embedder();
    let prompts: Vec<String> = (0..64)
        .map(|i| format!("Write a short story about a robot named Unit {i} who learns to paint."))
        .collect();
    let texts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    e.embed(&texts[..4]).expect("warm-up");
    let t = Instant::now();
    let out = e.embed(&texts).expect("embed");
    let secs = t.elapsed().as_secs_f64();
    eprintln!("64 short prompts: {secs:.3} s");
    assert_eq!(out.len(), 64);
    // Generous bound for a loaded 2-core CI machine in the test profile; BENCHMARKS.md has the
    // release-build number.
    assert!(secs < 10.0, "{secs} s");
}
