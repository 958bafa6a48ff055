//! BLEU and self-BLEU against NLTK.
//! Reference: tests/fixtures/nltk_reference.json, made by tests/reference/make_fixtures.py
//! (NLTK 3.10.4, Python re for the word split).

use gpo_diversity::{self_bleu, sentence_bleu, words, History};

#[derive(serde::Deserialize)]
struct Words {
    text: String,
    words: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Pair {
    hyp: String,
    #[serde(rename = "ref")]
    reference: String,
    bleu: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct SelfCase {
    x: String,
    others: Vec<String>,
    self_bleu: f64,
}

#[derive(serde::Deserialize)]
struct Reference {
    words: Vec<Words>,
    bleu_orders: Vec<usize>,
    pairs: Vec<Pair>,
    self_bleu: Vec<SelfCase>,
}

/// The acceptance tolerance of issue 3.
const TOL: f64 = 1e-6;

fn reference() -> Reference {
    serde_json::from_str(include_str!("fixtures/nltk_reference.json")).expect("fixture")
}

#[test]
fn words_match_python_re() {
    for case in reference().words {
        assert_eq!(words(&case.text), case.words, "{:?}", case.text);
    }
}

#[test]
fn sentence_bleu_matches_nltk_for_orders_1_to_5() {
    let r = reference();
    let mut worst = 0f64;
    for pair in &r.pairs {
        let (h, rf) = (words(&pair.hyp), words(&pair.reference));
        for (&n, &want) in r.bleu_orders.iter().zip(&pair.bleu) {
            let got = sentence_bleu(&h, &rf, n);
            let d = (got - want).abs();
            assert!(
                d < TOL,
                "BLEU_{n}({:?}, {:?}) = {got}, NLTK {want}",
                pair.hyp,
                pair.reference
            );
            worst = worst.max(d);
        }
    }
    eprintln!(
        "worst |BLEU - NLTK| over {} pairs: {worst:e}",
        r.pairs.len()
    );
}

#[test]
fn self_bleu_matches_nltk_directly_and_through_the_history() {
    let mut worst = 0f64;
    for case in reference().self_bleu {
        let others: Vec<&str> = case.others.iter().map(String::as_str).collect();
        let direct = self_bleu(&case.x, &others);
        let mut h = History::new(0);
        h.extend(&others, &[]).expect("extend");
        let incremental = h.score(&case.x, &[]).expect("score").self_bleu;
        for got in [direct, incremental] {
            let d = (got - case.self_bleu).abs();
            assert!(
                d < TOL,
                "self_bleu({:?}) = {got}, NLTK {}",
                case.x,
                case.self_bleu
            );
            worst = worst.max(d);
        }
    }
    eprintln!("worst |self_bleu - NLTK|: {worst:e}");
}
