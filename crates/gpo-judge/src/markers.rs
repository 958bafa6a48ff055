//! garak's refusal markers, read from garak's own Python sources at run time, and the
//! labeller that turns them into refusing / complying labels for the compliance head.
//!
//! Lists used: `MitigationBypass` (substrings matched anywhere, case-insensitive) and
//! `Prefixes` (matched at the start) in `garak/detectors/mitigation.py`, and
//! `REJECTION_STRINGS` (matched at the start) in `garak/resources/common.py`.

use std::path::Path;

use crate::{Error, Result};

/// Characters of a reply's opening in which a substring marker counts as a refusal.
pub const OPENING_CHARS: usize = 300;

/// The marker lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalMarkers {
    /// Matched anywhere in the opening, case-insensitively (lower-cased here).
    pub substrings: Vec<String>,
    /// Matched at the start of the reply, case-sensitively.
    pub prefixes: Vec<String>,
}

/// How the labeller sees one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyLabel {
    /// Starts with a refusal prefix, or has a refusal substring in its opening.
    Refusing,
    /// No marker anywhere.
    Complying,
    /// A marker only past the opening: left out of training.
    Ambiguous,
}

impl RefusalMarkers {
    /// Parses the lists from a fetched garak asset directory.
    pub fn load(garak_dir: &Path) -> Result<Self> {
        let mitigation = garak_dir.join("garak/detectors/mitigation.py");
        let common = garak_dir.join("garak/resources/common.py");
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::io(p, e));
        let m = read(&mitigation)?;
        let c = read(&common)?;
        let in_class = |class: &str| -> Result<Vec<String>> {
            let start = m
                .find(&format!("class {class}("))
                .ok_or_else(|| Error::bad(&mitigation, format!("no class {class}")))?;
            python_list_after(&m[start..], "substrings = [")
                .map_err(|e| Error::bad(&mitigation, format!("{class}: {e}")))
        };
        let substrings = in_class("MitigationBypass")?
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect();
        let mut prefixes = in_class("Prefixes")?;
        let rejection =
            python_list_after(&c, "REJECTION_STRINGS = [").map_err(|e| Error::bad(&common, e))?;
        for r in rejection {
            if !prefixes.contains(&r) {
                prefixes.push(r);
            }
        }
        Ok(RefusalMarkers {
            substrings,
            prefixes,
        })
    }

    /// Whether `text` contains any marker anywhere (prefixes included, case-insensitively).
    pub fn any_marker(&self, text: &str) -> bool {
        let lower = text.to_lowercase();
        self.substrings.iter().any(|m| lower.contains(m.as_str()))
            || self
                .prefixes
                .iter()
                .any(|p| lower.contains(&p.to_lowercase()))
    }

    /// The label of an assistant reply.
    pub fn label(&self, reply: &str) -> ReplyLabel {
        let reply = reply.trim_start();
        let opening: String = reply.chars().take(OPENING_CHARS).collect();
        let opening = opening.to_lowercase();
        if self.prefixes.iter().any(|p| reply.starts_with(p.as_str()))
            || self.substrings.iter().any(|m| opening.contains(m.as_str()))
        {
            ReplyLabel::Refusing
        } else if self.any_marker(reply) {
            ReplyLabel::Ambiguous
        } else {
            ReplyLabel::Complying
        }
    }
}

/// The string literals of the Python list that starts at the first `head` in `src`
/// (`head` ends with `[`). Handles '...' and "..." literals with backslash escapes, comments
/// and trailing commas; anything else in the list is an error.
pub fn python_list_after(src: &str, head: &str) -> std::result::Result<Vec<String>, String> {
    let start = src.find(head).ok_or_else(|| format!("no `{head}`"))? + head.len();
    let mut out = Vec::new();
    let mut chars = src[start..].chars().peekable();
    loop {
        match chars.next() {
            None => return Err(format!("unterminated list after `{head}`")),
            Some(']') => return Ok(out),
            Some(c) if c.is_whitespace() || c == ',' => {}
            Some('#') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            Some(q @ ('"' | '\'')) => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string literal".into()),
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(c) => s.push(c),
                            None => return Err("unterminated escape".into()),
                        },
                        Some(c) if c == q => break,
                        Some(c) => s.push(c),
                    }
                }
                out.push(s);
            }
            Some(c) => return Err(format!("unexpected {c:?} in the list after `{head}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_python_string_lists() {
        let src = "x = 1\nsubstrings = [\n  \"I'm sorry\",  # comment\n  'say \\'no\\'',\n]\n";
        assert_eq!(
            python_list_after(src, "substrings = [").unwrap(),
            ["I'm sorry", "say 'no'"]
        );
        assert!(python_list_after("a = [f(x)]", "a = [").is_err());
    }

    #[test]
    fn labels_by_prefix_opening_and_elsewhere() {
        let m = RefusalMarkers {
            substrings: vec!["harmful".into()],
            prefixes: vec!["I'm sorry".into()],
        };
        assert_eq!(m.label("I'm sorry, no."), ReplyLabel::Refusing);
        assert_eq!(m.label("That would be HARMFUL."), ReplyLabel::Refusing);
        assert_eq!(m.label("Here is a cake recipe."), ReplyLabel::Complying);
        let late = format!("{} harmful", "word ".repeat(100));
        assert_eq!(m.label(&late), ReplyLabel::Ambiguous);
    }
}
