//! The cross-play matrix: every attacker snapshot against every defender snapshot, and the
//! exploitability read from it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The format tag of `crossplay.json`.
pub const CROSSPLAY_FORMAT: &str = "gpo-eval/crossplay-v1";

/// Each snapshot's worst case within the pool, and the averaged policies'.
///
/// The attacker wants a high attack success rate, the defender a low one. An attacker's
/// worst case is the lowest ASR any pooled defender holds it to; a defender's worst case is
/// the highest ASR any pooled attacker reaches against it. The averaged policies are uniform
/// mixtures over the snapshots: the averaged attacker's ASR against defender `j` is column
/// `j`'s mean, the averaged defender's against attacker `i` is row `i`'s mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exploitability {
    /// Per attacker snapshot (row): min over defenders of its ASR.
    pub attacker_worst: Vec<f64>,
    /// Per defender snapshot (column): max over attackers of the ASR against it.
    pub defender_worst: Vec<f64>,
    /// The averaged attacker: min over defenders of the column means.
    pub averaged_attacker_worst: f64,
    /// The averaged defender: max over attackers of the row means.
    pub averaged_defender_worst: f64,
    /// `averaged_defender_worst - averaged_attacker_worst`: the averaged pair's duality gap
    /// in the restricted game (0 at a Nash equilibrium of the pool).
    pub averaged_gap: f64,
    /// The averaged attacker's row: its ASR against each defender (the column means).
    #[serde(default)]
    pub averaged_attacker: Vec<f64>,
    /// The averaged defender's column: the ASR each attacker reaches against it (the row
    /// means).
    #[serde(default)]
    pub averaged_defender: Vec<f64>,
}

/// An attacker trained outside the pool (a fresh `gpo exploit` attacker, another run's)
/// played against the pool's defenders: it does not enter the restricted game, only each
/// defender's worst case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutsideAttacker {
    /// Its name (the run directory it comes from).
    pub name: String,
    /// Its ASR against each defender of the pool, in column order.
    pub asr: Vec<f64>,
    /// Its ASR against the averaged defender (the mean of `asr`).
    pub vs_averaged_defender: f64,
}

/// `RUN_DIR/crossplay.json`. A data file: fields it does not know are ignored when read
/// back (a newer gpo may add some), missing ones are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossPlay {
    /// [`CROSSPLAY_FORMAT`].
    pub format: String,
    /// Held-out seeds each cell was measured on.
    pub seeds: usize,
    /// Attacker snapshot names (rows).
    pub attackers: Vec<String>,
    /// Defender snapshot names (columns).
    pub defenders: Vec<String>,
    /// `asr[i][j]`: attack success rate of attacker `i` against defender `j`.
    pub asr: Vec<Vec<f64>>,
    /// Read from `asr`.
    pub exploitability: Exploitability,
    /// Attackers trained outside the pool, each against every defender of the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside: Vec<OutsideAttacker>,
    /// Per defender: the highest ASR any attacker reaches against it, pooled or outside
    /// (empty without outside attackers: then it is `exploitability.defender_worst`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defender_worst_overall: Vec<f64>,
}

impl CrossPlay {
    /// A matrix with its exploitability; the shape must match the names and be non-empty,
    /// and every cell be a rate in [0, 1] (NaN is not).
    pub fn new(
        attackers: Vec<String>,
        defenders: Vec<String>,
        asr: Vec<Vec<f64>>,
        seeds: usize,
    ) -> Result<CrossPlay> {
        let invalid = |message: String| Error::Invalid {
            name: "asr",
            message,
        };
        if attackers.is_empty() || defenders.is_empty() {
            return Err(invalid(format!(
                "needs at least one attacker and one defender snapshot, got {} and {}",
                attackers.len(),
                defenders.len()
            )));
        }
        if asr.len() != attackers.len() {
            return Err(invalid(format!(
                "{} rows for {} attackers",
                asr.len(),
                attackers.len()
            )));
        }
        if let Some((i, row)) = asr
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != defenders.len())
        {
            return Err(invalid(format!(
                "row {i} has {} entries for {} defenders",
                row.len(),
                defenders.len()
            )));
        }
        for (i, row) in asr.iter().enumerate() {
            if let Some((j, v)) = row
                .iter()
                .enumerate()
                .find(|(_, v)| !(0.0..=1.0).contains(*v))
            {
                return Err(invalid(format!(
                    "asr[{i}][{j}] = {v} is not a rate in [0, 1]"
                )));
            }
        }
        let exploitability = exploitability(&asr);
        Ok(CrossPlay {
            format: CROSSPLAY_FORMAT.into(),
            seeds,
            attackers,
            defenders,
            asr,
            exploitability,
            outside: Vec::new(),
            defender_worst_overall: Vec::new(),
        })
    }

    /// The matrix with attackers from outside the pool, each `(name, asr per defender)`,
    /// and every defender's worst case over pooled and outside attackers.
    pub fn with_outside(mut self, outside: Vec<(String, Vec<f64>)>) -> Result<CrossPlay> {
        for (name, row) in &outside {
            check_row(
                &format!("outside attacker {name}"),
                row,
                self.defenders.len(),
            )?;
        }
        self.outside = outside
            .into_iter()
            .map(|(name, asr)| OutsideAttacker {
                vs_averaged_defender: asr.iter().sum::<f64>() / asr.len() as f64,
                name,
                asr,
            })
            .collect();
        self.defender_worst_overall = if self.outside.is_empty() {
            Vec::new()
        } else {
            (0..self.defenders.len())
                .map(|j| {
                    let outside = self.outside.iter().map(|o| o.asr[j]);
                    let pooled = self.exploitability.defender_worst[j];
                    outside.fold(pooled, f64::max)
                })
                .collect()
        };
        Ok(self)
    }

    /// Reads and checks a `crossplay.json`.
    pub fn read(path: &Path) -> Result<CrossPlay> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cp: CrossPlay = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        if cp.format != CROSSPLAY_FORMAT {
            return Err(Error::Invalid {
                name: "format",
                message: format!(
                    "{}: format is {:?}, expected {CROSSPLAY_FORMAT:?}",
                    path.display(),
                    cp.format
                ),
            });
        }
        let outside = cp.outside.into_iter().map(|o| (o.name, o.asr)).collect();
        CrossPlay::new(cp.attackers, cp.defenders, cp.asr, cp.seeds)?.with_outside(outside)
    }

    /// Writes it atomically as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        text.push('\n');
        write_atomic(path, text.as_bytes())
    }
}

fn exploitability(asr: &[Vec<f64>]) -> Exploitability {
    let rows = asr.len();
    let cols = asr.first().map_or(0, Vec::len);
    let attacker_worst: Vec<f64> = asr
        .iter()
        .map(|r| r.iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    let defender_worst: Vec<f64> = (0..cols)
        .map(|j| asr.iter().map(|r| r[j]).fold(f64::NEG_INFINITY, f64::max))
        .collect();
    let col_means: Vec<f64> = (0..cols)
        .map(|j| asr.iter().map(|r| r[j]).sum::<f64>() / rows as f64)
        .collect();
    let row_means: Vec<f64> = asr
        .iter()
        .map(|r| r.iter().sum::<f64>() / cols as f64)
        .collect();
    let averaged_attacker_worst = col_means.iter().copied().fold(f64::INFINITY, f64::min);
    let averaged_defender_worst = row_means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Exploitability {
        attacker_worst,
        defender_worst,
        averaged_attacker_worst,
        averaged_defender_worst,
        averaged_gap: averaged_defender_worst - averaged_attacker_worst,
        averaged_attacker: col_means,
        averaged_defender: row_means,
    }
}

/// A row of rates: one per defender, each in [0, 1].
fn check_row(what: &str, row: &[f64], defenders: usize) -> Result<()> {
    let invalid = |message: String| Error::Invalid {
        name: "asr",
        message,
    };
    if row.len() != defenders {
        return Err(invalid(format!(
            "{what} has {} entries for {defenders} defenders",
            row.len()
        )));
    }
    match row
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        Some((j, v)) => Err(invalid(format!(
            "{what}: entry {j} = {v} is not a rate in [0, 1]"
        ))),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so that a reader never sees a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    gpo_fs::write_atomic(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    /// Rows [0.2, 0.6] and [0.4, 0.0] on 10 seeds.
    fn two_by_two() -> CrossPlay {
        CrossPlay::new(
            names("a", 2),
            names("d", 2),
            vec![vec![0.2, 0.6], vec![0.4, 0.0]],
            10,
        )
        .unwrap()
    }

    #[test]
    fn exploitability_of_a_small_matrix() {
        // Worked by hand: rows [0.2, 0.6], [0.4, 0.0]; row mins 0.2, 0.0; column maxes
        // 0.4, 0.6; column means 0.3, 0.3; row means 0.4, 0.2; gap 0.4 - 0.3 = 0.1.
        let cp = two_by_two();
        let e = &cp.exploitability;
        assert_eq!(e.attacker_worst, vec![0.2, 0.0]);
        assert_eq!(e.defender_worst, vec![0.4, 0.6]);
        assert!((e.averaged_attacker_worst - 0.3).abs() < 1e-12);
        assert!((e.averaged_defender_worst - 0.4).abs() < 1e-12);
        assert!((e.averaged_gap - 0.1).abs() < 1e-12);
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&e.averaged_attacker, &[0.3, 0.3]), "{e:?}");
        assert!(close(&e.averaged_defender, &[0.4, 0.2]), "{e:?}");
    }

    #[test]
    fn outside_attackers_raise_a_defenders_worst_case_only() {
        // The matrix above with one outside row [0.5, 0.1]: column maxes become 0.5 and 0.6
        // (0.6 stays the pooled attacker's), its mean against the averaged defender 0.3;
        // the restricted game's numbers do not change.
        let cp = two_by_two();
        let pooled = cp.exploitability.clone();
        let cp = cp
            .with_outside(vec![("fresh".into(), vec![0.5, 0.1])])
            .unwrap();
        assert_eq!(cp.exploitability, pooled);
        assert_eq!(cp.defender_worst_overall, vec![0.5, 0.6]);
        assert!((cp.outside[0].vs_averaged_defender - 0.3).abs() < 1e-12);
        let e = cp
            .clone()
            .with_outside(vec![("short".into(), vec![0.5])])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("outside attacker short has 1 entries"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossplay.json");
        cp.write(&path).unwrap();
        assert_eq!(CrossPlay::read(&path).unwrap(), cp);
    }

    #[test]
    fn ragged_matrix_names_the_row() {
        let e = CrossPlay::new(
            names("a", 2),
            names("d", 2),
            vec![vec![0.0, 0.0], vec![0.0]],
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("row 1 has 1 entries"), "{e}");
    }

    #[test]
    fn a_cell_outside_zero_one_is_named() {
        for bad in [f64::NAN, -0.1, 1.5] {
            let e = CrossPlay::new(
                vec!["a".into()],
                vec!["d0".into(), "d1".into()],
                vec![vec![0.5, bad]],
                4,
            )
            .unwrap_err();
            assert!(e.to_string().contains("asr[0][1]"), "{e}");
        }
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossplay.json");
        let cp =
            CrossPlay::new(names("a", 1), names("d", 3), vec![vec![0.5, 0.25, 1.0]], 4).unwrap();
        cp.write(&path).unwrap();
        assert_eq!(CrossPlay::read(&path).unwrap(), cp);
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn unknown_fields_are_ignored_and_a_missing_one_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossplay.json");
        let cp =
            CrossPlay::new(names("a", 1), names("d", 3), vec![vec![0.5, 0.25, 1.0]], 4).unwrap();
        cp.write(&path).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["added_by_a_newer_gpo"] = serde_json::json!([1, 2]);
        std::fs::write(&path, v.to_string()).unwrap();
        assert_eq!(CrossPlay::read(&path).unwrap(), cp);
        std::fs::write(&path, r#"{"format":"gpo-eval/crossplay-v1","bogus":1}"#).unwrap();
        let e = CrossPlay::read(&path).unwrap_err().to_string();
        assert!(
            e.contains("crossplay.json") && e.contains("missing field"),
            "{e}"
        );
    }
}
