//! SmolLM2-135M-Instruct from its GGUF against PyTorch + transformers on the same file.
//! Reference: tests/fixtures/smollm2_reference.json, made by tests/reference/make_smollm2_reference.py.

mod common;

use gpo_lm::{load_model, score_sequence, LoadOptions};

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    logprobs: Vec<Option<f32>>,
    top1: Vec<u32>,
    top1_margin: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[test]
fn logits_match_transformers_on_the_same_gguf() {
    let reference: Reference =
        serde_json::from_str(include_str!("fixtures/smollm2_reference.json")).expect("fixture");
    let lm = load_model(&common::smollm2_gguf(), &LoadOptions::default()).expect("load SmolLM2");
    for case in &reference.cases {
        let ids = lm.tokenizer.encode(&case.text, false).expect("encode");
        assert_eq!(ids, case.ids, "token ids of {:?}", case.text);
        let (logprobs, top1) = score_sequence(&lm.model, &case.ids).expect("score");
        for (i, (ours, theirs)) in logprobs.iter().zip(&case.logprobs).enumerate() {
            match (ours, theirs) {
                (None, None) => {}
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() < 1e-3,
                    "{:?} position {i}: log-prob {a} vs transformers {b}",
                    case.text
                ),
                _ => panic!("position {i}: null mismatch"),
            }
        }
        for (i, (a, b)) in top1.iter().zip(&case.top1).enumerate() {
            assert_eq!(
                a, b,
                "{:?} position {i}: top-1 {a} vs transformers {b} (reference margin {})",
                case.text, case.top1_margin[i]
            );
        }
    }
}
