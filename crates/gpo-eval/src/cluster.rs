//! The cluster bootstrap: prompts resampled together with all their samples.

use crate::{Bootstrap, Error, Estimate, Result};

impl Bootstrap {
    /// The mean over samples with a cluster-bootstrap interval: `values` holds `samples`
    /// consecutive values per prompt (prompt-major). A resample draws the prompts with
    /// replacement and takes all their samples; its rate is the mean over the drawn samples.
    /// Samples of one prompt are correlated, so resampling them one by one would narrow the
    /// interval. With `samples == 1` this is [`Bootstrap::interval`], index for index. The
    /// estimate's `n` counts prompts.
    pub fn cluster_interval(
        &self,
        label: &'static str,
        values: &[f64],
        samples: usize,
    ) -> Result<Estimate> {
        self.validate()?;
        if samples == 0 || !values.len().is_multiple_of(samples) {
            return Err(Error::Invalid {
                name: "samples",
                message: format!(
                    "{} values are not whole clusters of {samples} samples",
                    values.len()
                ),
            });
        }
        let clusters: Vec<&[f64]> = values.chunks(samples).collect();
        let indices = self.indices(clusters.len());
        self.cluster_interval_from_indices(label, &clusters, &indices)
    }

    /// The mean over all values of `clusters` with its interval over explicit resamples:
    /// each row of `indices` names the clusters one resample draws, and its rate is the mean
    /// over all their values. Clusters may differ in size but not be empty. `resamples` and
    /// `seed` are ignored; `level` is used.
    pub fn cluster_interval_from_indices(
        &self,
        label: &'static str,
        clusters: &[&[f64]],
        indices: &[Vec<usize>],
    ) -> Result<Estimate> {
        self.validate_level()?;
        if clusters.is_empty() {
            return Err(Error::Empty(label));
        }
        if let Some(c) = clusters.iter().position(|c| c.is_empty()) {
            return Err(Error::Invalid {
                name: "clusters",
                message: format!("cluster {c} has no values"),
            });
        }
        if indices.is_empty() {
            return Err(Error::Invalid {
                name: "indices",
                message: "no resamples given".into(),
            });
        }
        // Summed in the order `interval_from_indices` sums, so one-value clusters agree bit
        // for bit.
        let sums: Vec<f64> = clusters.iter().map(|c| c.iter().sum()).collect();
        let mut means = Vec::with_capacity(indices.len());
        for (r, row) in indices.iter().enumerate() {
            means.push(resample_mean(r, row, &sums, clusters)?);
        }
        let count: usize = clusters.iter().map(|c| c.len()).sum();
        let mean = clusters.iter().flat_map(|c| c.iter()).sum::<f64>() / count as f64;
        Ok(self.estimate(mean, means, clusters.len()))
    }
}

/// Resample `r`'s rate: the drawn clusters' summed values over their summed sizes.
fn resample_mean(r: usize, row: &[usize], sums: &[f64], clusters: &[&[f64]]) -> Result<f64> {
    if row.is_empty() {
        return Err(Error::Invalid {
            name: "indices",
            message: format!("resample {r} is empty"),
        });
    }
    let (mut sum, mut count) = (0.0, 0usize);
    for &i in row {
        let s = sums.get(i).ok_or_else(|| Error::Invalid {
            name: "indices",
            message: format!(
                "resample {r} has index {i}, but there are {} clusters",
                clusters.len()
            ),
        })?;
        sum += s;
        count += clusters[i].len();
    }
    Ok(sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Vec<f64> {
        (0..30).map(|i| ((i * 7) % 11) as f64 / 11.0).collect()
    }

    #[test]
    fn one_sample_per_prompt_is_the_plain_bootstrap() {
        let b = Bootstrap::default().with_resamples(300).with_seed(5);
        let xs = values();
        assert_eq!(
            b.cluster_interval("x", &xs, 1).unwrap(),
            b.interval("x", &xs).unwrap()
        );
    }

    #[test]
    fn repeated_samples_do_not_narrow_the_interval() {
        // Each prompt answered 4 times identically carries no more information than once:
        // the cluster bootstrap gives the same interval, resampling samples would not.
        let b = Bootstrap::default();
        let xs = values();
        let repeated: Vec<f64> = xs.iter().flat_map(|&x| [x; 4]).collect();
        let once = b.interval("x", &xs).unwrap();
        let clustered = b.cluster_interval("x", &repeated, 4).unwrap();
        assert_eq!(clustered.n, 30);
        for (got, want) in [
            (clustered.mean, once.mean),
            (clustered.lo, once.lo),
            (clustered.hi, once.hi),
        ] {
            assert!((got - want).abs() < 1e-12, "{clustered} vs {once}");
        }
        let naive = b.interval("x", &repeated).unwrap();
        assert!(
            naive.hi - naive.lo < 0.7 * (once.hi - once.lo),
            "{naive} vs {once}"
        );
    }

    #[test]
    fn values_must_be_whole_clusters() {
        let b = Bootstrap::default();
        let e = b.cluster_interval("x", &[1.0; 5], 2).unwrap_err();
        assert!(e.to_string().contains("not whole clusters of 2"), "{e}");
        assert!(b.cluster_interval("x", &[1.0], 0).is_err());
        assert!(matches!(
            b.cluster_interval("asr", &[], 3),
            Err(Error::Empty("asr"))
        ));
        let e = b
            .cluster_interval_from_indices("x", &[&[1.0], &[]], &[vec![0]])
            .unwrap_err();
        assert!(e.to_string().contains("cluster 1 has no values"), "{e}");
        let e = b
            .cluster_interval_from_indices("x", &[&[1.0]], &[vec![0], vec![1]])
            .unwrap_err();
        assert!(e.to_string().contains("resample 1 has index 1"), "{e}");
    }
}
