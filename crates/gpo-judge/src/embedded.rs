//! The `embedded` judge (work in progress).

use std::path::{Path, PathBuf};

use gpo_assets::AssetCache;

use crate::{Error, Exchange, Judge, JudgeKind, Result};

/// `<cache root>/judge-heads`.
pub fn default_heads_dir(cache: &AssetCache) -> PathBuf {
    cache.root().join("judge-heads")
}

/// The embedded judge.
#[derive(Debug)]
pub struct EmbeddedJudge {
    threshold: f32,
}

impl EmbeddedJudge {
    /// Loads the judge.
    pub fn load(_cache: &AssetCache, _heads: &Path, threshold: f32) -> Result<Self> {
        let _ = threshold;
        Err(Error::InvalidArgument(
            "the embedded judge is not ready yet".into(),
        ))
    }
}

impl Judge for EmbeddedJudge {
    fn kind(&self) -> JudgeKind {
        JudgeKind::Embedded
    }
    fn threshold(&self) -> f32 {
        self.threshold
    }
    fn p_unsafe(&self, batch: &[Exchange<'_>]) -> Result<Vec<f32>> {
        Ok(vec![0.0; batch.len()])
    }
}
