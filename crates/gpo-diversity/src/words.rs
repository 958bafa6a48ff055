//! The word split of the diversity terms (docs/method.md): lower-case, then the
//! Unicode-aware regex `\w+|[^\w\s]`.

use std::sync::LazyLock;

use regex::Regex;

/// `\w+` runs, or any single character that is neither a word character nor white space.
static WORD: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles or every test fails.
    Regex::new(r"\w+|[^\w\s]").expect("the word pattern is valid")
});

/// Splits `text` into words as gpo's diversity terms define them: lower-case, then `\w+|[^\w\s]`.
///
/// `\w` and `\s` are the Unicode classes of the `regex` crate (UTS #18). They agree with
/// Python's `re` on letters, decimal digits, CJK, emoji and punctuation; they differ on
/// combining marks and variation selectors (word characters here, not in Python), on digits
/// that are not decimal such as `²` (not word characters here) and on U+001C..U+001F
/// (not white space here).
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    WORD.find_iter(&lower)
        .map(|m| m.as_str().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_single_punctuation() {
        // Expected from Python: re.findall(r"\w+|[^\w\s]", "What's up?!".lower())
        assert_eq!(words("What's up?!"), ["what", "'", "s", "up", "?", "!"]);
    }

    #[test]
    fn empty_and_blank_texts_have_no_words() {
        assert!(words("").is_empty());
        assert!(words(" \t\n ").is_empty());
    }

    #[test]
    fn unicode_letters_and_emoji() {
        assert_eq!(words("Élève 東京🙂"), ["élève", "東京", "🙂"]);
    }

    #[test]
    fn superscript_digits_are_not_word_characters() {
        // Python's re keeps "x²" whole (str.isalnum("²") is true); Rust's \w is UTS #18's.
        assert_eq!(words("x²"), ["x", "²"]);
    }
}
