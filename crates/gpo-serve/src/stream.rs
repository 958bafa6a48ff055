//! Streaming: each choice's text as it is generated, without the part that might still turn
//! into a stop string or an incomplete character.

use crate::api::{ApiError, TokenLogprob};

/// What the engine reports while it streams a request.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// New text of choice `index`.
    Text {
        /// The choice.
        index: usize,
        /// Its new text.
        text: String,
        /// The log-probs of the tokens drawn since the choice's previous event, when the
        /// request asks for log-probs.
        logprobs: Vec<TokenLogprob>,
    },
    /// Choice `index` ended: `stop` (end of sequence or a stop string) or `length`.
    Finish {
        /// The choice.
        index: usize,
        /// Why.
        reason: &'static str,
    },
    /// The request failed (before any text: then the reply is this error instead).
    Error(ApiError),
}

/// One choice's text so far and how much of it was sent.
#[derive(Debug, Default)]
pub struct Incremental {
    ids: Vec<u32>,
    sent: usize,
    stopped: bool,
}

impl Incremental {
    /// Whether a stop string ended it.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Adds a generated token; returns the text that can be sent now, and whether a stop
    /// string ended the choice (the text then ends before it). Text that is the start of a
    /// stop string, or ends in an incomplete character, waits for the next token.
    pub fn push(
        &mut self,
        tok: u32,
        decode: &dyn Fn(&[u32]) -> String,
        stop: &[String],
    ) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.ids.push(tok);
        let text = decode(&self.ids);
        if let Some(at) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            self.stopped = true;
            let out = text.get(self.sent..at).unwrap_or("").to_string();
            self.sent = at.max(self.sent);
            return (out, true);
        }
        if text.ends_with('\u{FFFD}') {
            return (String::new(), false);
        }
        let hold = stop.iter().map(|s| held_back(&text, s)).max().unwrap_or(0);
        let upto = text.len() - hold;
        let out = text.get(self.sent..upto).unwrap_or("").to_string();
        self.sent = upto.max(self.sent);
        (out, false)
    }

    /// What is left to send once generation ended.
    pub fn flush(&mut self, decode: &dyn Fn(&[u32]) -> String) -> String {
        if self.stopped {
            return String::new();
        }
        let text = decode(&self.ids);
        let out = text.get(self.sent..).unwrap_or("").to_string();
        self.sent = text.len();
        out
    }
}

/// Bytes at the end of `text` that begin `stop` (the longest such proper prefix).
fn held_back(text: &str, stop: &str) -> usize {
    stop.char_indices()
        .skip(1)
        .map(|(i, _)| i)
        .filter(|&i| text.ends_with(&stop[..i]))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token t decodes to the t-th piece.
    fn decoder(pieces: &'static [&'static str]) -> impl Fn(&[u32]) -> String {
        move |ids: &[u32]| ids.iter().map(|&t| pieces[t as usize]).collect()
    }

    #[test]
    fn text_that_may_start_a_stop_string_waits_and_a_stop_string_ends_the_choice() {
        let decode = decoder(&["Hello", " wor", "ld", "!", " E", "ND", "x"]);
        let stop = vec![" END".to_string()];
        let mut inc = Incremental::default();
        let mut sent = String::new();
        for t in [0, 1, 2, 3] {
            let (text, stopped) = inc.push(t, &decode, &stop);
            assert!(!stopped);
            sent.push_str(&text);
        }
        assert_eq!(sent, "Hello world!");
        let (text, stopped) = inc.push(4, &decode, &stop);
        assert_eq!(
            (text.as_str(), stopped),
            ("", false),
            "\" E\" may start \" END\""
        );
        let (text, stopped) = inc.push(5, &decode, &stop);
        assert_eq!((text.as_str(), stopped), ("", true));
        assert_eq!(inc.push(6, &decode, &stop), (String::new(), true));
        assert_eq!(inc.flush(&decode), "");
    }

    #[test]
    fn held_text_that_does_not_stop_is_sent_later_and_at_the_end() {
        let decode = decoder(&["a", " E", "ast", " E"]);
        let stop = vec![" END".to_string()];
        let mut inc = Incremental::default();
        assert_eq!(inc.push(0, &decode, &stop).0, "a");
        assert_eq!(inc.push(1, &decode, &stop).0, "");
        assert_eq!(inc.push(2, &decode, &stop).0, " East");
        assert_eq!(inc.push(3, &decode, &stop).0, "");
        assert_eq!(inc.flush(&decode), " E");
    }

    #[test]
    fn an_incomplete_character_waits() {
        let decode = |ids: &[u32]| match ids.len() {
            1 => "\u{FFFD}".to_string(),
            _ => "é".to_string(),
        };
        let mut inc = Incremental::default();
        assert_eq!(inc.push(0, &decode, &[]).0, "");
        assert_eq!(inc.push(1, &decode, &[]).0, "é");
    }
}
