//! SmolLM2's tokenizer built from its GGUF header against transformers' (fixtures/smollm2_gguf.json)
//! and the other pre-tokenizers against transformers' GGUF converter (fixtures/pre_tokenizers.json).

use std::collections::BTreeMap;

use gpo_tokenizer::{GgufTokenizerSpec, Tokenizer};
use serde::Deserialize;

use crate::util::{fixture, smollm2, smollm2_metadata, smollm2_spec};

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    ids_with_special: Vec<u32>,
    tokens: Vec<String>,
    decoded: String,
    decoded_skip_special: String,
}

#[derive(Deserialize)]
struct Special {
    bos: Option<String>,
    eos: Option<String>,
    unk: Option<String>,
    pad: Option<String>,
}

#[derive(Deserialize)]
struct Smollm2Fixture {
    special: Special,
    vocab_size: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct IdsCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct PreFixture {
    pre: BTreeMap<String, Vec<IdsCase>>,
}

#[test]
fn from_metadata_reads_what_the_header_says() {
    let spec = GgufTokenizerSpec::from_metadata(smollm2_metadata()).unwrap();
    assert_eq!(spec, smollm2_spec());
    assert_eq!(
        (spec.model.as_str(), spec.pre.as_deref()),
        ("gpt2", Some("smollm"))
    );
    assert_eq!(spec.tokens.len(), 49152);
}

#[test]
fn ids_match_transformers() {
    let tok = smollm2();
    for case in fixture::<Smollm2Fixture>("smollm2_gguf.json").cases {
        assert_eq!(
            tok.encode(&case.text, false).unwrap(),
            case.ids,
            "encode {:?}",
            case.text
        );
        assert_eq!(
            tok.encode(&case.text, true).unwrap(),
            case.ids_with_special,
            "encode with special tokens {:?}",
            case.text
        );
        let tokens: Vec<String> = case
            .ids
            .iter()
            .map(|&i| tok.id_to_token(i).unwrap())
            .collect();
        assert_eq!(tokens, case.tokens, "tokens {:?}", case.text);
    }
}

#[test]
fn decode_matches_transformers_and_round_trips() {
    let tok = smollm2();
    for case in fixture::<Smollm2Fixture>("smollm2_gguf.json").cases {
        assert_eq!(
            tok.decode(&case.ids, false).unwrap(),
            case.decoded,
            "decode {:?}",
            case.text
        );
        assert_eq!(
            case.decoded, case.text,
            "byte-level BPE round-trips {:?}",
            case.text
        );
        assert_eq!(
            tok.decode(&case.ids, true).unwrap(),
            case.decoded_skip_special,
            "decode skipping special tokens {:?}",
            case.text
        );
    }
}

#[test]
fn batch_encoding_equals_one_by_one() {
    let tok = smollm2();
    let cases = fixture::<Smollm2Fixture>("smollm2_gguf.json").cases;
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let batch = tok.encode_batch(&texts, false).unwrap();
    let ids: Vec<Vec<u32>> = cases.into_iter().map(|c| c.ids).collect();
    assert_eq!(batch, ids);
}

#[test]
fn special_ids_and_names_match_transformers() {
    let tok = smollm2();
    let fx = fixture::<Smollm2Fixture>("smollm2_gguf.json");
    assert_eq!(tok.vocab_size(), fx.vocab_size);
    let s = tok.special_tokens();
    assert_eq!(
        (&s.bos, &s.eos, &s.unk, &s.pad),
        (
            &fx.special.bos,
            &fx.special.eos,
            &fx.special.unk,
            &fx.special.pad
        )
    );
    // docs/assets.md: 0 <|endoftext|>, 1 <|im_start|>, 2 <|im_end|> (eos and pad).
    assert_eq!(
        (tok.eos_ids(), tok.bos_id(), tok.pad_id()),
        (&[2u32][..], Some(1), Some(2))
    );
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(2));
    assert_eq!(tok.id_to_token(0).as_deref(), Some("<|endoftext|>"));
    assert!(tok.chat_template().unwrap().contains("named SmolLM"));
}

#[test]
fn other_pre_tokenizers_match_transformers_gguf_converter() {
    for (pre, cases) in fixture::<PreFixture>("pre_tokenizers.json").pre {
        let spec = GgufTokenizerSpec {
            pre: Some(pre.clone()),
            ..smollm2_spec()
        };
        let tok = Tokenizer::from_gguf_spec(spec).unwrap();
        for case in cases {
            assert_eq!(
                tok.encode(&case.text, false).unwrap(),
                case.ids,
                "pre {pre}, {:?}",
                case.text
            );
        }
    }
}

#[test]
fn add_bos_token_prepends_bos_only_with_special_tokens() {
    let spec = GgufTokenizerSpec {
        add_bos: Some(true),
        ..smollm2_spec()
    };
    let tok = Tokenizer::from_gguf_spec(spec).unwrap();
    let plain = tok.encode("Hello", false).unwrap();
    assert_eq!(
        tok.encode("Hello", true).unwrap(),
        [&[1u32][..], &plain].concat()
    );
}
