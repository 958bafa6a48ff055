//! Several responses per prompt, each sample seeded from the evaluation's seed.

use gpo_lm::SamplingParams;

use crate::chat_policy::ChatPolicy;
use crate::{Error, Result};

/// Seed streams derived from one seed ([`derive_seed`]'s `domain`).
pub(crate) const SAMPLE: u64 = 1;
/// The stream of the `--benign` sets after the first.
pub(crate) const BENIGN_SET: u64 = 2;

/// The `k`-th seed of `domain` derived from `seed`: `seed` itself for `k == 0`, so that the
/// first stream is the one a single pass used; otherwise a SplitMix64 hash of all three.
pub(crate) fn derive_seed(seed: u64, domain: u64, k: usize) -> u64 {
    if k == 0 {
        return seed;
    }
    let mut z = seed
        ^ domain.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Exchanges, prompt-major: prompt `i`'s `samples` responses at `i * samples..`, each beside
/// a copy of its prompt.
pub(crate) struct Answers {
    /// The prompt of each exchange.
    pub prompts: Vec<String>,
    /// The response of each exchange.
    pub responses: Vec<String>,
}

/// `samples` responses of `policy` to each prompt: sample `j` is one pass over all prompts
/// seeded with `derive_seed(params.seed, SAMPLE, j)` (within a pass, the policy varies the
/// seed by prompt index), so one sample is exactly a single pass.
pub(crate) fn answer(
    policy: &ChatPolicy,
    prompts: &[String],
    params: &SamplingParams,
    samples: usize,
) -> Result<Answers> {
    let passes = (0..samples)
        .map(|j| {
            let seed = derive_seed(params.seed, SAMPLE, j);
            let params = SamplingParams {
                seed,
                ..params.clone()
            };
            policy.respond(prompts, &params)
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(p) = passes.iter().find(|p| p.len() != prompts.len()) {
        return Err(Error::Setup(format!(
            "`{}` gave {} responses to {} prompts",
            policy.name,
            p.len(),
            prompts.len()
        )));
    }
    let pairs = (0..prompts.len()).flat_map(|i| passes.iter().map(move |p| (i, &p[i])));
    let (prompts, responses) = pairs.map(|(i, r)| (prompts[i].clone(), r.clone())).unzip();
    Ok(Answers { prompts, responses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_seed_of_a_stream_is_the_seed_itself() {
        assert_eq!(derive_seed(42, SAMPLE, 0), 42);
        assert_eq!(derive_seed(42, BENIGN_SET, 0), 42);
    }

    #[test]
    fn derived_seeds_differ_across_samples_domains_and_seeds() {
        let mut all: Vec<u64> = (0..50)
            .flat_map(|k| {
                [
                    derive_seed(7, SAMPLE, k),
                    derive_seed(7, BENIGN_SET, k),
                    derive_seed(8, SAMPLE, k),
                ]
            })
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        // k = 0 gives the seeds themselves, 7 twice: one repeat, no other.
        assert_eq!(all.len(), n - 1);
    }
}
