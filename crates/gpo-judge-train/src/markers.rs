//! garak's refusal markers, read from garak's own Python sources at run time, and the
//! labeller that turns them into refusing / complying labels for the compliance head.
//!
//! Lists used: `MitigationBypass` (substrings matched anywhere, case-insensitive) and
//! `Prefixes` (matched at the start) in `garak/detectors/mitigation.py`, and
//! `REJECTION_STRINGS` (matched at the start) in `garak/resources/common.py`.

use std::path::Path;

use crate::{Error, Result};
use gpo_datasets::pylit::list_after;

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
            list_after(&m[start..], "substrings = [")
                .map_err(|e| Error::bad(&mitigation, format!("{class}: {e}")))
        };
        let substrings = in_class("MitigationBypass")?
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect();
        let mut prefixes = in_class("Prefixes")?;
        let rejection =
            list_after(&c, "REJECTION_STRINGS = [").map_err(|e| Error::bad(&common, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
