//! `gpo diversity`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gpo_diversity::{set_diversity, History};
use serde_json::json;

use super::embed::{embed_all, EmbedderArgs};

/// Arguments of `gpo diversity`.
#[derive(Debug, clap::Args)]
pub struct DiversityArgs {
    #[command(flatten)]
    model: EmbedderArgs,
    /// Score each prompt of FILE against this history instead: one
    /// {"self_bleu","embedding_similarity"} line per prompt of FILE, in order. The history
    /// grows as the attacker writes: each prompt is scored against HIST plus the prompts of FILE
    /// before it.
    #[arg(long, value_name = "HIST")]
    history: Option<PathBuf>,
    /// Prompts, one per line (an empty line is an empty prompt), or JSONL objects with a string
    /// field `prompt`. A file whose first non-blank line starts with `{` is read as JSONL.
    file: PathBuf,
}

/// Without `--history`: one line {"self_bleu", "embedding_similarity", "diversity_self_bleu",
/// "diversity_embedding"} for the set (the paper: mean self-BLEU of each prompt against all the
/// others, mean cosine over distinct pairs, and 1 minus each).
pub fn run(args: DiversityArgs) -> Result<()> {
    let prompts = read_prompts(&args.file)?;
    let history = args.history.as_deref().map(read_prompts).transpose()?;
    let embedder = args.model.load()?;
    let texts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    match history {
        None => {
            if texts.len() < 2 {
                bail!(
                    "{}: has {} prompt(s); set diversity needs at least 2",
                    args.file.display(),
                    texts.len()
                );
            }
            let e = embed_all(&embedder, &texts)?;
            let d = set_diversity(&texts, e.as_slice(), e.dim())?;
            super::emit(&serde_json::to_value(d)?)
        }
        Some(hist) => {
            let hist_texts: Vec<&str> = hist.iter().map(String::as_str).collect();
            let mut all = hist_texts.clone();
            all.extend(&texts);
            let e = embed_all(&embedder, &all)?;
            let split = hist_texts.len() * e.dim();
            let mut h = History::new(e.dim());
            h.extend(&hist_texts, &e.as_slice()[..split])?;
            for s in h.score_then_push(&texts, &e.as_slice()[split..])? {
                super::emit(&json!({
                    "self_bleu": s.self_bleu,
                    "embedding_similarity": s.embedding_similarity,
                }))?;
            }
            Ok(())
        }
    }
}

/// Reads prompts: JSONL (field `prompt`) when the first non-blank line starts with `{`, else one
/// prompt per line. Errors name the file and, for JSONL, the line.
fn read_prompts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading prompts from {}", path.display()))?;
    parse_prompts(&text).with_context(|| format!("reading prompts from {}", path.display()))
}

fn parse_prompts(text: &str) -> Result<Vec<String>> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let jsonl = lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('{'));
    if !jsonl {
        return Ok(lines.into_iter().map(str::to_string).collect());
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let n = i + 1;
            let value: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("line {n}: not a JSON object"))?;
            match value.get("prompt") {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(_) => bail!("line {n}: field `prompt` is not a string"),
                None => bail!("line {n}: no field `prompt`"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_keep_empty_prompts() {
        assert_eq!(parse_prompts("a\n\nb\r\n").unwrap(), ["a", "", "b"]);
    }

    #[test]
    fn jsonl_is_detected_from_the_first_non_blank_line() {
        let got = parse_prompts("\n{\"prompt\":\"x\"}\n{\"prompt\":\"\"}").unwrap_err();
        assert!(format!("{got:#}").contains("line 1"), "{got:#}");
        let ok = parse_prompts("{\"prompt\":\"x\",\"id\":1}\n{\"prompt\":\"\"}").unwrap();
        assert_eq!(ok, ["x", ""]);
    }

    #[test]
    fn malformed_jsonl_line_is_named() {
        let e = parse_prompts("{\"prompt\":\"a\"}\n{\"prompt\":3}\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_prompts("{\"prompt\":\"a\"}\n{oops\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
