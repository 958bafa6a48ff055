//! Advantages: GAE with a learned critic, or group baselines without one.

use serde::{Deserialize, Serialize};

/// Generalised advantage estimation over one response (Schulman et al. 2016):
/// `delta_t = r_t + gamma V_{t+1} - V_t` (`V` after the last token is 0),
/// `A_t = delta_t + gamma lambda A_{t+1}`; returns `(A, A + V)` (advantages, value targets).
pub fn gae(rewards: &[f32], values: &[f32], gamma: f32, lambda: f32) -> (Vec<f32>, Vec<f32>) {
    let n = rewards.len().min(values.len());
    let mut adv = vec![0f32; n];
    let mut next_adv = 0f32;
    for t in (0..n).rev() {
        let next_v = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next_v - values[t];
        next_adv = delta + gamma * lambda * next_adv;
        adv[t] = next_adv;
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

/// Critic-free baselines for a sequence-level reward, computed within groups of samples of
/// the same prompt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum GroupBaseline {
    /// GRPO: `(r - mean(group)) / (std(group) + eps)` (population std).
    Grpo {
        /// Added to the standard deviation.
        eps: f32,
    },
    /// RLOO: `r - mean(other samples of the group)`.
    Rloo,
    /// REINFORCE with the batch mean as baseline: `r - mean(all)`.
    Reinforce,
}

/// One advantage per sample; `groups` lists the sample indices of each prompt. Samples in a
/// group of one get advantage 0 under GRPO and RLOO (no baseline to compare with).
pub fn group_advantages(
    rewards: &[f32],
    groups: &[Vec<usize>],
    baseline: GroupBaseline,
) -> Vec<f32> {
    let mut adv = vec![0f32; rewards.len()];
    match baseline {
        GroupBaseline::Reinforce => {
            let mean = rewards.iter().sum::<f32>() / rewards.len().max(1) as f32;
            for (a, r) in adv.iter_mut().zip(rewards) {
                *a = r - mean;
            }
        }
        GroupBaseline::Grpo { eps } => {
            for g in groups.iter().filter(|g| g.len() > 1) {
                let n = g.len() as f32;
                let mean = g.iter().map(|&i| rewards[i]).sum::<f32>() / n;
                let var = g.iter().map(|&i| (rewards[i] - mean).powi(2)).sum::<f32>() / n;
                for &i in g {
                    adv[i] = (rewards[i] - mean) / (var.sqrt() + eps);
                }
            }
        }
        GroupBaseline::Rloo => {
            for g in groups.iter().filter(|g| g.len() > 1) {
                let sum: f32 = g.iter().map(|&i| rewards[i]).sum();
                let others = (g.len() - 1) as f32;
                for &i in g {
                    adv[i] = rewards[i] - (sum - rewards[i]) / others;
                }
            }
        }
    }
    adv
}

/// Whitens values in place across all responses to mean 0, standard deviation 1 (PPO's
/// optional advantage whitening).
pub fn whiten(values: &mut [Vec<f32>]) {
    let n: usize = values.iter().map(Vec::len).sum();
    if n < 2 {
        return;
    }
    let mean = values.iter().flatten().sum::<f32>() / n as f32;
    let var = values
        .iter()
        .flatten()
        .map(|x| (x - mean).powi(2))
        .sum::<f32>()
        / n as f32;
    let inv = 1.0 / (var.sqrt() + 1e-8);
    for x in values.iter_mut().flatten() {
        *x = (*x - mean) * inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn gae_matches_the_recursion_worked_by_hand() {
        // r = [0, 0, 1], V = [0.5, 0.4, 0.3], gamma 1, lambda 0.95:
        // delta = [0 + 0.4 - 0.5, 0 + 0.3 - 0.4, 1 + 0 - 0.3] = [-0.1, -0.1, 0.7]
        // A2 = 0.7; A1 = -0.1 + 0.95 * 0.7 = 0.565; A0 = -0.1 + 0.95 * 0.565 = 0.43675
        let (adv, ret) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.4, 0.3], 1.0, 0.95);
        close(&adv, &[0.43675, 0.565, 0.7]);
        close(&ret, &[0.93675, 0.965, 1.0]);
        // lambda = 1, V = 0: advantages are the reward-to-go.
        let (adv, _) = gae(&[1.0, 2.0, 3.0], &[0.0; 3], 1.0, 1.0);
        close(&adv, &[6.0, 5.0, 3.0]);
    }

    #[test]
    fn group_baselines_match_hand_computations() {
        let r = [1.0, 0.0, 0.5, 0.2];
        let groups = vec![vec![0, 1, 2], vec![3]];
        // group 0: mean 0.5, population std sqrt(1/6) = 0.408248
        let g = group_advantages(&r, &groups, GroupBaseline::Grpo { eps: 0.0 });
        close(&g, &[1.224745, -1.224745, 0.0, 0.0]);
        // RLOO: 1 - (0 + 0.5) / 2 = 0.75; 0 - 0.75 = -0.75; 0.5 - 0.5 = 0
        let l = group_advantages(&r, &groups, GroupBaseline::Rloo);
        close(&l, &[0.75, -0.75, 0.0, 0.0]);
        // batch mean 0.425
        let b = group_advantages(&r, &groups, GroupBaseline::Reinforce);
        close(&b, &[0.575, -0.425, 0.075, -0.225]);
    }

    #[test]
    fn whitening_gives_zero_mean_unit_std() {
        let mut v = vec![vec![1.0, 2.0], vec![3.0, 4.0, 5.0]];
        whiten(&mut v);
        let flat: Vec<f32> = v.concat();
        let mean = flat.iter().sum::<f32>() / 5.0;
        let var = flat.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 5.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
    }
}
