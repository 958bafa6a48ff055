//! all-MiniLM-L6-v2 against sentence-transformers on the same model directory.
//! Reference: tests/fixtures/minilm_reference.json, made by tests/reference/make_fixtures.py
//! (sentence-transformers 6.2.0, torch 2.11 on CPU, f32).

use candle_core::Device;
use gpo_assets::{Asset, AssetCache};
use gpo_embed::{Pooling, SentenceEmbedder};

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    truncated: bool,
    embedding: Vec<f32>,
    /// Per encoder layer: the normalised mean of its hidden states over the first
    /// `opening_tokens` tokens after [CLS].
    openings: std::collections::BTreeMap<usize, Vec<f32>>,
    /// Per encoder layer: the normalised mean of its hidden states over every token after
    /// [CLS].
    layer_means: std::collections::BTreeMap<usize, Vec<f32>>,
}

#[derive(serde::Deserialize)]
struct Reference {
    opening_tokens: usize,
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
fn layer_poolings_match_hugging_face_hidden_states_at_each_layer() {
    let reference = reference();
    let e = embedder();
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let layers: Vec<usize> = reference.cases[0].openings.keys().copied().collect();
    assert!(layers.len() >= 2, "{layers:?}");
    let mut poolings = vec![Pooling::Mean];
    poolings.extend(layers.iter().map(|&layer| Pooling::Opening {
        tokens: reference.opening_tokens,
        layer,
    }));
    poolings.extend(layers.iter().map(|&layer| Pooling::LayerMean { layer }));
    let out = e.embed_pooled(&texts, &poolings).expect("embed");
    assert_eq!(out.len(), poolings.len());
    for (i, case) in reference.cases.iter().enumerate() {
        let d = max_abs_diff(out[0].row(i), &case.embedding);
        assert!(d < TOL, "mean {:?}: max |diff| {d}", case.text);
        for (j, layer) in layers.iter().enumerate() {
            let d = max_abs_diff(out[1 + j].row(i), &case.openings[layer]);
            assert!(
                d < TOL,
                "layer {layer} opening {:?}: max |diff| {d}",
                case.text
            );
            let d = max_abs_diff(out[1 + layers.len() + j].row(i), &case.layer_means[layer]);
            assert!(
                d < TOL,
                "layer {layer} mean {:?}: max |diff| {d}",
                case.text
            );
        }
    }
    assert_eq!(out[1].truncated(), out[0].truncated());
    let deeper = Pooling::Opening {
        tokens: 4,
        layer: 7,
    };
    let err = e.embed_pooled(&texts, &[deeper]).unwrap_err().to_string();
    assert!(err.contains("layer 7") && err.contains("0..=6"), "{err}");
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
fn rows_stay_in_input_order_across_several_forward_passes() {
    // The fixture's texts 12 times over: past the 4,096 tokens of one packed forward
    // pass (the over-long text alone is 256), so sequences are split across passes.
    let reference = reference();
    let e = embedder();
    let cases: Vec<&Case> = (0..12).flat_map(|_| &reference.cases).collect();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let tokens: usize = cases.iter().map(|c| c.ids.len()).sum();
    assert!(tokens > 4096, "{tokens} tokens");
    let out = e.embed(&texts).expect("embed");
    assert_eq!(out.len(), texts.len());
    for (i, case) in cases.iter().enumerate() {
        let d = max_abs_diff(out.row(i), &case.embedding);
        assert!(d < TOL, "row {i} {:?}: max |diff| {d}", case.text);
    }
}

#[test]
fn the_token_limit_moves_both_ways_up_to_the_position_table() {
    // all-MiniLM-L6-v2's config.json: max_position_embeddings 512.
    let e = embedder().with_max_tokens(64).unwrap();
    assert_eq!(e.max_tokens(), 64);
    let e = e.with_max_tokens(300).unwrap();
    assert_eq!(e.max_tokens(), 300);
    assert_eq!(e.with_max_tokens(10_000).unwrap().max_tokens(), 512);
}
