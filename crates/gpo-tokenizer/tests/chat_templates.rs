//! Chat prompts against transformers' apply_chat_template (fixtures/chat.json): SmolLM2's own
//! template and templates in the styles of Llama-3, Qwen2, Llama Guard and Llama-3.1's tool
//! template, jinja2 probes, and templates that must fail.

use std::collections::BTreeMap;

use gpo_tokenizer::{ChatMessage, ChatTemplate};
use serde::Deserialize;

use crate::util::{fixture, smollm2};

#[derive(Deserialize)]
struct Case {
    name: String,
    template: Option<String>,
    conversation: String,
    add_generation_prompt: bool,
    text: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ChatFixture {
    conversations: BTreeMap<String, Vec<ChatMessage>>,
    cases: Vec<Case>,
}

fn render(case: &Case, messages: &[ChatMessage]) -> gpo_tokenizer::Result<String> {
    let tok = smollm2();
    match &case.template {
        None => tok.apply_chat_template(messages, case.add_generation_prompt),
        Some(src) => ChatTemplate::new(src, &case.name)?.render(
            messages,
            case.add_generation_prompt,
            tok.special_tokens(),
        ),
    }
}

#[test]
fn prompts_equal_transformers() {
    let fx = fixture::<ChatFixture>("chat.json");
    let mut checked = 0;
    for case in fx.cases.iter().filter(|c| c.text.is_some()) {
        let messages = &fx.conversations[&case.conversation];
        let got = render(case, messages)
            .unwrap_or_else(|e| panic!("{} on {}: {e}", case.name, case.conversation));
        assert_eq!(
            Some(&got),
            case.text.as_ref(),
            "{} on {} (add_generation_prompt = {})",
            case.name,
            case.conversation,
            case.add_generation_prompt
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} cases");
}

#[test]
fn templates_that_fail_in_transformers_fail_here_naming_the_template() {
    let fx = fixture::<ChatFixture>("chat.json");
    for case in fx.cases.iter().filter(|c| c.error.is_some()) {
        let messages = &fx.conversations[&case.conversation];
        let err = match render(case, messages) {
            Ok(text) => panic!("{}: expected {:?}, got {text:?}", case.name, case.error),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&case.name), "{}: {err}", case.name);
        if case.name == "raise_exception" {
            assert!(err.contains("Conversation roles must alternate"), "{err}");
        }
    }
}

#[test]
fn smollm2_chat_prompt_tokenizes_with_special_tokens_whole() {
    let tok = smollm2();
    let prompt = tok
        .apply_chat_template(&[ChatMessage::user("Hi")], true)
        .unwrap();
    let ids = tok.encode(&prompt, false).unwrap();
    // <|im_start|>system ... <|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 3);
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2);
    assert_eq!(ids[0], 1);
}
