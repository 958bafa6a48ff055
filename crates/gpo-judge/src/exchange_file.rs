//! `gpo judge --input` files: JSONL, one `{"prompt", "response"}` object per line. A data
//! file: other fields (labels, ids, categories, as evaluation sets carry) are ignored.

use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// One line of an exchange file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExchangeRow {
    /// The user's turn.
    pub prompt: String,
    /// The reply judged.
    pub response: String,
}

/// Every line of `path`; an error names the file and the line (empty lines included: a
/// line is an exchange).
pub fn read_exchange_file(path: &Path) -> Result<Vec<ExchangeRow>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::bad(path, format!("line {}: {e}", i + 1)))?;
        let row = serde_json::from_str(&line).map_err(|e| {
            Error::bad(
                path,
                format!(
                    "line {}: not a {{\"prompt\", \"response\"}} JSON object: {e}",
                    i + 1
                ),
            )
        })?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_are_ignored_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\":\"a\",\"response\":\"b\",\"label\":1}\n{\"prompt\":\"c\"}\n",
        )
        .unwrap();
        let err = read_exchange_file(&path).unwrap_err().to_string();
        assert!(err.contains("in.jsonl: line 2: not a"), "{err}");
        std::fs::write(&path, "{\"prompt\":\"a\",\"response\":\"b\",\"id\":7}\n").unwrap();
        let rows = read_exchange_file(&path).unwrap();
        assert_eq!(
            rows,
            [ExchangeRow {
                prompt: "a".into(),
                response: "b".into()
            }]
        );
    }

    #[test]
    fn a_json_nesting_bomb_is_read_in_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.jsonl");
        let deep = 1_000_000;
        let nested = format!("{}{}", "[".repeat(deep), "]".repeat(deep));
        let start = std::time::Instant::now();
        // Where a string belongs: a one-line error at the first bracket.
        std::fs::write(&path, format!("{{\"prompt\":{nested}}}\n")).unwrap();
        let err = read_exchange_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("bomb.jsonl: line 1: not a") && !err.contains('\n'),
            "{err}"
        );
        // In a field the reader ignores: skipped without recursion (serde_json walks it
        // with a stack of its own).
        let line = format!("{{\"prompt\":\"a\",\"response\":\"b\",\"label\":{nested}}}\n");
        std::fs::write(&path, line).unwrap();
        assert_eq!(read_exchange_file(&path).unwrap().len(), 1);
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    }
}
