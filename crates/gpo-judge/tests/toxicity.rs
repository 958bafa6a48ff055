//! The Rust BiLSTM against Keras on the same weights.
//!
//! Expected ids and scores: tests/reference/toxicity.json, written by
//! tests/reference/make_fixtures.py (Keras 3.15.1, torch backend). Tolerance 1e-4 absolute.

use gpo_assets::{Asset, AssetCache};
use gpo_judge::toxicity::{ToxicityModel, MAX_WORDS};

#[test]
fn bilstm_matches_keras_within_1e_4() {
    let dir = AssetCache::from_env()
        .unwrap()
        .fetch(Asset::ToxicCommentClassifier)
        .unwrap();
    let model = ToxicityModel::load(&dir).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("reference/toxicity.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let got = model.predict(&texts);
    for (case, scores) in cases.iter().zip(&got) {
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let text = case["text"].as_str().unwrap();
        assert_eq!(model.tokenizer().padded(text, MAX_WORDS).0, ids, "{text:?}");
        for (k, want) in case["scores"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap() as f32;
            assert!(
                (scores[k] - want).abs() < 1e-4,
                "{text:?} label {k}: got {} want {want}",
                scores[k]
            );
        }
    }
}
