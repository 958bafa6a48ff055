//! The comparison key of a text, shared by decontamination (nothing trained on equals an
//! evaluation prompt) and deduplication.

/// The comparison key of a prompt: lower case, runs of whitespace as one space, and nothing
/// at either end.
pub fn key(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether `s` shows nothing: only whitespace and invisible format characters (zero-width
/// spaces and joiners, word joiners, byte-order marks), which `str::trim` keeps.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_runs_of_whitespace() {
        assert_eq!(
            key(" How was a guide written for  treating someone\tin the past? "),
            "how was a guide written for treating someone in the past?"
        );
    }

    #[test]
    fn invisible_characters_are_blank() {
        assert!(is_blank("\u{200b}") && is_blank(" \u{feff}\n") && is_blank(""));
        assert!(!is_blank("\u{200b}ok"));
    }
}
