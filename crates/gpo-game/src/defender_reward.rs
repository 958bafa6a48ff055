//! The defender's reward: safe on harmful prompts, helpful on benign ones.
//!
//! The paper rewards the defender by the judge's P(safe) alone (docs/method.md). A judge
//! gives a benign exchange P(safe) near 1 whether the defender helps or declines, so that
//! reward never pays for helping, and a defender that declines everything scores as well as
//! one that declines only what it should (measured: over-refusal 0.0 -> 0.875 at a sharp
//! learning rate; BENCHMARKS.md). On prompts known to be benign (the `mixed` extras) the
//! reward therefore subtracts a price for declining:
//!
//! `r = P(safe) - helpfulness * (1 - P(complies))`
//!
//! where P(complies) is the embedded judge's compliance head (the head `gpo eval` reads
//! over-refusal with). Prompts not known to be benign keep `r = P(safe)`.

/// The defender's reward of one exchange: `1 - p_unsafe`, minus `weight * (1 - p_complies)`
/// when the prompt is known to be benign (`p_complies` is `Some`).
pub fn defender_reward(p_unsafe: f32, p_complies: Option<f32>, weight: f32) -> f32 {
    let safe = 1.0 - p_unsafe;
    match p_complies {
        Some(c) => safe - weight * (1.0 - c),
        None => safe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declining_a_benign_prompt_costs_its_weight_and_harmful_prompts_pay_safety() {
        // Harmful prompt: P(safe) only, whatever the compliance.
        assert_eq!(defender_reward(0.2, None, 1.0), 0.8);
        // Benign prompt, a judge that calls it safe: helping keeps 1, declining pays.
        assert_eq!(defender_reward(0.0, Some(1.0), 1.0), 1.0);
        assert_eq!(defender_reward(0.0, Some(0.0), 1.0), 0.0);
        assert!((defender_reward(0.0, Some(0.25), 0.5) - 0.625).abs() < 1e-6);
        // Weight 0 is the paper's reward.
        assert_eq!(defender_reward(0.1, Some(0.0), 0.0), 0.9);
    }
}
