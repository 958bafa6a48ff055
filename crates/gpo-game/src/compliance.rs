//! The embedded judge's compliance head, read apart from the game's judge: it decides which
//! answers decline (P(complies) < 0.5, the reading `gpo eval` gives over-refusal), in the
//! defender's helpfulness reward and in every evaluation of a run.

use std::path::Path;
use std::sync::Arc;

use gpo_judge::{EmbeddedJudge, Exchange, Judge, JudgeConfig};

use crate::config::GameConfig;
use crate::{Error, Result};

/// Reads which answers refuse: the embedded judge's compliance head (P(complies) < 0.5), the
/// reading `gpo eval` gives over-refusal. Loaded once per run, whatever judge the run uses.
pub struct RefusalReader {
    judge: Arc<EmbeddedJudge>,
}

impl RefusalReader {
    /// The run's judge and its refusal reader. An embedded judge is loaded once and serves
    /// both (its compliance head does not depend on the threshold); any other judge is built
    /// beside an embedded judge with the cache's heads (missing heads are an error that names
    /// `gpo judge train`; the CLI trains the cache's own first).
    pub fn with_judge(
        cfg: &GameConfig,
        cache: &gpo_assets::AssetCache,
    ) -> Result<(Box<dyn Judge>, RefusalReader)> {
        let judge_err = || Error::judge("the judge cannot load");
        if let JudgeConfig::Embedded { threshold, .. } = cfg.judge {
            let heads = cfg.judge.heads_dir(cache);
            let shared = EmbeddedJudge::load(cache, &heads, threshold).map_err(judge_err())?;
            let shared = Arc::new(shared);
            let reader = RefusalReader {
                judge: shared.clone(),
            };
            return Ok((Box::new(shared), reader));
        }
        let reader = Self::from_heads(cache, &gpo_judge::default_heads_dir(cache))?;
        let judge = gpo_judge::build_judge(&cfg.judge, cache).map_err(judge_err())?;
        Ok((judge, reader))
    }

    /// Loads the embedded judge with the heads in `heads_dir` (missing heads are an error).
    pub fn from_heads(cache: &gpo_assets::AssetCache, heads_dir: &Path) -> Result<RefusalReader> {
        let judge = EmbeddedJudge::load(cache, heads_dir, 0.5).map_err(Error::judge(
            "refusals are read by the embedded judge's compliance head",
        ))?;
        Ok(RefusalReader {
            judge: Arc::new(judge),
        })
    }

    /// P(complies) of each (prompt, response).
    pub fn p_complies(&self, prompts: &[String], responses: &[String]) -> Result<Vec<f32>> {
        let ex: Vec<Exchange<'_>> = prompts
            .iter()
            .zip(responses)
            .map(|(p, r)| Exchange::new(p, r))
            .collect();
        Ok(self
            .judge
            .components(&ex)
            .map_err(Error::judge("compliance head"))?
            .iter()
            .map(|c| c.complies)
            .collect())
    }
}
