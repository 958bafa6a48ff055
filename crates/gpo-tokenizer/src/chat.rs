//! Chat prompts rendered from the model's own Jinja template with transformers' semantics.
//!
//! transformers renders chat templates in a jinja2 sandbox with `trim_blocks`, `lstrip_blocks`,
//! loop controls, the default (lenient) undefined, `raise_exception`, `strftime_now`, a `tojson`
//! that is Python's `json.dumps`, and the `{% generation %}` tag. [`ChatTemplate`] sets up
//! minijinja the same way, with Python's string/dict methods from `minijinja-contrib` and
//! values printed as Python prints them (`1e+20`, `['a', None]`).

use minijinja::{context, Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::pyjson::tojson_filter;
use crate::pyrepr::python_formatter;
use crate::strftime::strftime_now;
use crate::{Error, Result};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A turn with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `user` turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// A `system` turn.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// An `assistant` turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// The special-token strings a chat template sees (`bos_token`, `eos_token`, ...), as
/// transformers passes its `special_tokens_map`: a token that is not set stays undefined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `bos_token`.
    pub bos: Option<String>,
    /// `eos_token`.
    pub eos: Option<String>,
    /// `unk_token`.
    pub unk: Option<String>,
    /// `pad_token`.
    pub pad: Option<String>,
}

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    origin: String,
}

/// The name the template is registered under; it shows in error locations (`chat:3`).
const NAME: &str = "chat";

/// The work one render may do, in minijinja's fuel: one unit per instruction or per 64
/// bytes of data made. A template comes with the model, so a loop over `range(10**5)` twice
/// nested or a string repeated into gigabytes must fail rather than hang. Rendering a
/// 100-turn conversation of 2 KB turns with SmolLM2's template takes 15,049
/// (`render_budget_covers_long_conversations`); the budget is 130 times that, and running
/// out of it takes about 40 ms (at most 128 MB of data).
const RENDER_FUEL: u64 = 2_000_000;

impl ChatTemplate {
    /// Compiles `source` (Jinja). `origin` says where it came from (a file and field, or a GGUF
    /// key) and is named in every error.
    pub fn new(source: &str, origin: impl Into<String>) -> Result<Self> {
        let origin = origin.into();
        let fail = |e: minijinja::Error| Error::Template {
            origin: origin.clone(),
            msg: describe(&e),
        };
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(fail)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson_filter);
        env.set_formatter(python_formatter);
        env.set_fuel(Some(RENDER_FUEL));
        env.add_template_owned(NAME, rewrite_generation_tags(source))
            .map_err(fail)?;
        Ok(ChatTemplate { env, origin })
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Renders `messages` as transformers' `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=..)` does; `add_generation_prompt` appends the assistant header.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        special: &SpecialTokens,
    ) -> Result<String> {
        let fail = |e: minijinja::Error| Error::Template {
            origin: self.origin.clone(),
            msg: describe(&e),
        };
        let tmpl = self.env.get_template(NAME).map_err(fail)?;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_pairs([("role", m.role.as_str()), ("content", m.content.as_str())])
            })
            .collect();
        let token = |t: &Option<String>| t.as_deref().map_or(Value::UNDEFINED, Value::from);
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            tools => (),
            documents => (),
            bos_token => token(&special.bos),
            eos_token => token(&special.eos),
            unk_token => token(&special.unk),
            pad_token => token(&special.pad),
        })
        .map_err(fail)
    }
}

/// `raise_exception(message)`: templates call it to reject a conversation.
fn raise_exception(message: String) -> std::result::Result<String, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// One line: the engine's message, its location and the causes.
fn describe(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    if e.kind() == ErrorKind::OutOfFuel {
        msg.push_str(&format!(
            ": rendering takes more work than a chat needs (budget {RENDER_FUEL}); a loop \
             or a repeated string in the template is too large"
        ));
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}

/// transformers' `{% generation %}..{% endgeneration %}` only marks the assistant's text for
/// masks; it renders its body unchanged, which `{% if true %}..{% endif %}` does too (keeping
/// any `-`/`+` whitespace markers, so trimming is the same).
fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        // The closing `%}` is searched after the opening `{%`, so `{%}` is no tag.
        let Some(end) = tag[2..].find("%}").map(|i| i + 2) else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (lead, body) = split_marker(inner, true);
        let (body, trail) = split_marker(body, false);
        let replaced = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replaced {
            Some(word) => {
                out.push_str("{%");
                out.push_str(lead);
                out.push(' ');
                out.push_str(word);
                out.push(' ');
                out.push_str(trail);
                out.push_str("%}");
            }
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Splits a leading (or trailing) whitespace-control marker `-`/`+` off a tag's inside.
fn split_marker(s: &str, leading: bool) -> (&str, &str) {
    if leading {
        match s.chars().next() {
            Some(c @ ('-' | '+')) => s.split_at(c.len_utf8()),
            _ => ("", s),
        }
    } else {
        match s.chars().last() {
            Some(c @ ('-' | '+')) => {
                let (a, b) = s.split_at(s.len() - c.len_utf8());
                (a, b)
            }
            _ => (s, ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    fn render(src: &str, messages: &[ChatMessage]) -> Result<String> {
        ChatTemplate::new(src, "test")?.render(messages, false, &SpecialTokens::default())
    }

    #[test]
    fn chatml_inserts_default_system_prompt() {
        let t = ChatTemplate::new(CHATML, "test").unwrap();
        let out = t
            .render(&[ChatMessage::user("Hi")], true, &SpecialTokens::default())
            .unwrap();
        assert_eq!(out, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn a_lone_percent_brace_is_an_error_not_a_panic() {
        // `{%}`: the `%}` overlaps the `{%`, which once sliced `tag[2..1]`.
        assert!(render("a{%}b", &[ChatMessage::user("x")]).is_err());
        assert!(ChatTemplate::new("{%}", "test").is_err());
    }

    #[test]
    fn python_methods_work() {
        let out = render(
            "{{ messages[0]['content'].strip() }}|{{ messages[0].content.split(',') | length }}",
            &[ChatMessage::user("  a,b  ")],
        );
        assert_eq!(out.unwrap(), "a,b|2");
    }

    #[test]
    fn raise_exception_message_and_origin_are_reported() {
        let src = "{% if messages|length > 1 %}{{ raise_exception('only one turn') }}{% endif %}";
        let two = [ChatMessage::user("a"), ChatMessage::assistant("b")];
        let err = ChatTemplate::new(src, "model.gguf `tokenizer.chat_template`")
            .unwrap()
            .render(&two, false, &SpecialTokens::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("only one turn"), "{err}");
        assert!(
            err.contains("model.gguf `tokenizer.chat_template`"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_origin() {
        let e = ChatTemplate::new("{% for %}", "tokenizer_config.json `chat_template`")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokenizer_config.json `chat_template`"), "{e}");
        assert!(e.contains("syntax error"), "{e}");
    }

    #[test]
    fn undefined_prints_empty_but_its_attributes_fail() {
        assert_eq!(render("[{{ nothing }}]", &[]).unwrap(), "[]");
        assert!(render("{{ nothing.field }}", &[]).is_err());
    }

    #[test]
    fn unset_special_tokens_are_undefined() {
        let out = render("{{ bos_token is defined }}|{{ tools is none }}", &[]).unwrap();
        assert_eq!(out, "False|True");
    }

    #[test]
    fn generation_tags_render_their_body() {
        let src = "{% for m in messages %}{%- generation -%} {{ m.content }} {%- endgeneration %}{% endfor %}";
        assert_eq!(render(src, &[ChatMessage::assistant("x")]).unwrap(), "x");
        assert_eq!(
            rewrite_generation_tags("a{%- generation +%}b{% endgeneration%}"),
            "a{%- if true +%}b{% endif %}"
        );
    }

    #[test]
    fn render_budget_covers_long_conversations() {
        let turn = "word ".repeat(400);
        let chat: Vec<ChatMessage> = (0..100)
            .map(|i| ChatMessage::new(["user", "assistant"][i % 2], turn.as_str()))
            .collect();
        let out = render(CHATML, &chat).unwrap();
        assert!(out.len() > 200_000, "{}", out.len());
    }

    #[test]
    fn a_template_that_loops_or_repeats_without_end_fails_fast_in_one_line() {
        let start = std::time::Instant::now();
        for src in [
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "{% for i in range(100000) %}{{ 'x' * 100000000 }}{% endfor %}",
            "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        ] {
            let err = render(src, &[ChatMessage::user("x")])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("chat template (test): "), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }

    #[test]
    fn printing_a_huge_value_runs_out_of_fuel_in_one_line() {
        // Found by `fuzz/fuzz_targets/chat_template.rs`: `{{1770070e0*messages}}` printed a
        // lazily repeated list of 7 million dicts through gpo's Python formatter, which the
        // engine charged only after building it (a 5 s timeout, then gigabytes).
        let start = std::time::Instant::now();
        for src in [
            "{{1770070e0*messages}}",
            "{{ (messages * 25000000) | tojson }}",
            "{{ messages | tojson(indent=1000000000) }}",
            "{{ ([messages] * 1000) | tojson(indent=20000) }}",
            "{{ strftime_now('%B' * 50000000) }}",
        ] {
            let err = render(src, &[ChatMessage::user("x"), ChatMessage::user("y")])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("engine ran out of fuel") && !err.contains('\n'),
                "{src}: {err}"
            );
        }
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }

    #[test]
    fn tojson_is_pythons_json_dumps() {
        let out = render("{{ {'a': '<é>', 'b': [1, 2.0]} | tojson }}", &[]).unwrap();
        assert_eq!(out, r#"{"a": "<é>", "b": [1, 2.0]}"#);
        let out = render("{{ [1] | tojson(indent=2) }}", &[]).unwrap();
        assert_eq!(out, "[\n  1\n]");
    }
}
