//! The Keras `Tokenizer` (legacy preprocessing) that the toxicity model was trained with,
//! rebuilt from its pickle: `texts_to_sequences` then `pad_sequences`.

use std::collections::HashMap;
use std::path::Path;

use crate::{Error, Result};
use gpo_keras::pickle::{unpickle, Value};

/// Word -> id lookup with Keras' text splitting.
#[derive(Debug, Clone)]
pub struct KerasTokenizer {
    word_index: HashMap<String, u32>,
    num_words: Option<u32>,
    filters: Vec<char>,
    split: char,
    lower: bool,
    oov_index: Option<u32>,
}

impl KerasTokenizer {
    /// Reads `tokenizer.pickle` (a pickled `keras...text.Tokenizer`).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_pickle(path, &bytes)
    }

    /// [`KerasTokenizer::load`] on the pickle's bytes; `path` names the file in errors.
    pub fn from_pickle(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |msg: String| Error::bad(path, msg);
        let root = unpickle(bytes).map_err(|e| bad(format!("pickle: {e}")))?;
        let Value::Object(obj) = root else {
            return Err(bad("the pickle does not hold a Tokenizer object".into()));
        };
        let obj = obj.borrow();
        if !obj.class.ends_with(".Tokenizer") {
            return Err(bad(format!(
                "expected a Keras Tokenizer, found {}",
                obj.class
            )));
        }
        let state = obj
            .state
            .clone()
            .ok_or_else(|| bad("the Tokenizer has no state".into()))?;
        let field = |name: &str| {
            state
                .get(name)
                .ok_or_else(|| bad(format!("the Tokenizer has no `{name}`")))
        };
        let string = |name: &str| match field(name)? {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(bad(format!(
                "`{name}` is a {}, not a str",
                other.type_name()
            ))),
        };
        if matches!(field("char_level")?, Value::Bool(true)) {
            return Err(bad("character-level Tokenizers are not supported".into()));
        }
        let lower = matches!(field("lower")?, Value::Bool(true));
        let filters = string("filters")?.chars().collect();
        let split_s = string("split")?;
        let mut split_chars = split_s.chars();
        let split = match (split_chars.next(), split_chars.next()) {
            (Some(c), None) => c,
            _ => return Err(bad(format!("split {split_s:?} is not one character"))),
        };
        let num_words = match field("num_words")? {
            Value::Int(n) if n > 0 => Some(n as u32),
            _ => None,
        };
        let Value::Dict(wi) = field("word_index")? else {
            return Err(bad("`word_index` is not a dict".into()));
        };
        let mut word_index = HashMap::with_capacity(wi.borrow().len());
        for (k, v) in wi.borrow().iter() {
            match (k, v) {
                (Value::Str(w), Value::Int(i)) if *i >= 0 => {
                    word_index.insert(w.to_string(), *i as u32);
                }
                _ => {
                    return Err(bad(format!(
                        "a word_index entry maps type {} to type {}, not str to int >= 0",
                        k.type_name(),
                        v.type_name()
                    )))
                }
            }
        }
        let oov_index = match field("oov_token")? {
            Value::Str(t) => word_index.get(&*t).copied(),
            _ => None,
        };
        Ok(KerasTokenizer {
            word_index,
            num_words,
            filters,
            split,
            lower,
            oov_index,
        })
    }

    /// A tokenizer that knows no word (every text becomes padding), for reading weights
    /// without their pickle.
    pub fn empty() -> Self {
        KerasTokenizer {
            word_index: HashMap::new(),
            num_words: None,
            filters: Vec::new(),
            split: ' ',
            lower: true,
            oov_index: None,
        }
    }

    /// Number of words in the index.
    pub fn vocab_len(&self) -> usize {
        self.word_index.len()
    }

    /// Keras `text_to_word_sequence`: lower-case, filter characters become the split
    /// character, split, drop empty pieces.
    pub fn words(&self, text: &str) -> Vec<String> {
        let text = if self.lower {
            text.to_lowercase()
        } else {
            text.to_string()
        };
        let mapped: String = text
            .chars()
            .map(|c| {
                if self.filters.contains(&c) {
                    self.split
                } else {
                    c
                }
            })
            .collect();
        mapped
            .split(self.split)
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Keras `texts_to_sequences` for one text: known words with id < num_words; others are
    /// dropped (or become the OOV id when the Tokenizer has one).
    pub fn ids(&self, text: &str) -> Vec<u32> {
        self.words(text)
            .iter()
            .filter_map(|w| match (self.word_index.get(w), self.num_words) {
                (Some(&i), Some(n)) if i >= n => self.oov_index,
                (Some(&i), _) => Some(i),
                (None, _) => self.oov_index,
            })
            .collect()
    }

    /// Keras `pad_sequences(.., maxlen)` with its defaults: zeros in front, and a longer
    /// sequence keeps its last `maxlen` ids. The flag says whether anything was cut.
    pub fn padded(&self, text: &str, maxlen: usize) -> (Vec<u32>, bool) {
        let ids = self.ids(text);
        let cut = ids.len() > maxlen;
        let tail = &ids[ids.len().saturating_sub(maxlen)..];
        let mut out = vec![0; maxlen - tail.len()];
        out.extend_from_slice(tail);
        (out, cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> KerasTokenizer {
        let word_index = [("the", 1), ("cat", 2), ("sat", 3), ("rare", 7)]
            .into_iter()
            .map(|(w, i)| (w.to_string(), i))
            .collect();
        KerasTokenizer {
            word_index,
            num_words: Some(5),
            filters: "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n".chars().collect(),
            split: ' ',
            lower: true,
            oov_index: None,
        }
    }

    #[test]
    fn a_pickle_with_an_unknown_opcode_is_a_one_line_error_naming_the_file() {
        // PROTO 4, then 0xff, which no pickle protocol defines.
        let err = KerasTokenizer::from_pickle(Path::new("tokenizer.pickle"), &[0x80, 4, 0xff])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "tokenizer.pickle: pickle: opcode 0xff at byte 2 is not supported by this \
             restricted unpickler"
        );
    }

    #[test]
    fn splits_like_keras() {
        // Keras: text_to_word_sequence("The cat,sat!\tdog's") -> ['the', 'cat', 'sat', "dog's"]
        assert_eq!(
            tiny().words("The cat,sat!\tdog's"),
            ["the", "cat", "sat", "dog's"]
        );
    }

    #[test]
    fn drops_unknown_and_rare_words_then_pads_in_front() {
        let t = tiny();
        // "rare" has id 7 >= num_words 5: dropped, as is the unknown "dog".
        assert_eq!(t.ids("the rare dog sat"), [1, 3]);
        assert_eq!(t.padded("the cat", 4), (vec![0, 0, 1, 2], false));
        assert_eq!(t.padded("the cat sat the cat", 3), (vec![3, 1, 2], true));
        assert_eq!(t.padded("", 2), (vec![0, 0], false));
    }

    #[test]
    fn an_oov_token_stands_for_unknown_and_rare_words() {
        // Keras texts_to_sequences with oov_token set: both kinds map to its index.
        let t = KerasTokenizer {
            oov_index: Some(4),
            ..tiny()
        };
        assert_eq!(t.ids("the rare dog sat"), [1, 4, 4, 3]);
    }
}
