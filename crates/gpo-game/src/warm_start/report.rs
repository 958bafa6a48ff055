//! What a warm start did: its report, kept beside the adapter, and the record of it in a
//! game's summary.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::is_adapter_dir;
use crate::Result;

/// What a warm start did: `gpo sft`'s output line (without `out`), also written beside the
/// adapter as `warm_start.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmStartReport {
    /// Harmful prompts, each paired with a refusal.
    pub harmful_pairs: usize,
    /// Benign prompts kept with the model's own answer.
    pub benign_pairs: usize,
    /// Benign prompts dropped: the answer was empty or already refused.
    pub benign_dropped: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Optimiser steps over all epochs.
    pub steps: usize,
    /// Each epoch's mean batch loss.
    pub epoch_mean_loss: Vec<f64>,
    /// Wall time of this invocation (a resumed warm start counts only its own).
    pub seconds: f64,
}

/// The file beside a warm start's adapter that holds its [`WarmStartReport`].
pub const REPORT_FILE: &str = "warm_start.json";

impl WarmStartReport {
    /// The report of the adapter in `dir`, `None` when it has none (not a warm start, or
    /// one written before reports were kept).
    pub fn of_adapter(dir: &Path) -> Result<Option<WarmStartReport>> {
        super::checkpoint::read_json_if_present(&dir.join(REPORT_FILE))
    }
}

/// The summary's `defender_warm_start`: the adapter the defender started from and how the
/// warm start that wrote it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmStartRecord {
    /// The adapter directory (`models.defender`).
    pub adapter: String,
    /// Its warm start.
    #[serde(flatten)]
    pub report: WarmStartReport,
}

impl WarmStartRecord {
    /// The record of a game whose `models.defender` is `defender`: `Some` when that is an
    /// adapter directory with a [`REPORT_FILE`]. A report that cannot be read is a warning,
    /// not a failure: it only annotates the summary.
    pub fn of_defender(defender: &str) -> Option<WarmStartRecord> {
        let dir = Path::new(defender);
        if !is_adapter_dir(dir) {
            return None;
        }
        match WarmStartReport::of_adapter(dir) {
            Ok(report) => report.map(|report| WarmStartRecord {
                adapter: defender.to_string(),
                report,
            }),
            Err(e) => {
                tracing::warn!("the defender's warm start is left out of the summary: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_from_beside_its_adapter() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(WarmStartReport::of_adapter(dir.path()).unwrap(), None);
        let report = WarmStartReport {
            harmful_pairs: 3,
            benign_pairs: 2,
            benign_dropped: 1,
            epochs: 1,
            steps: 2,
            epoch_mean_loss: vec![1.25],
            seconds: 4.0,
        };
        crate::warm_start::checkpoint::write_json(&dir.path().join(REPORT_FILE), &report).unwrap();
        assert_eq!(
            WarmStartReport::of_adapter(dir.path()).unwrap(),
            Some(report)
        );
        std::fs::write(dir.path().join(REPORT_FILE), "[").unwrap();
        let err = WarmStartReport::of_adapter(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(REPORT_FILE), "{err}");
    }
}
