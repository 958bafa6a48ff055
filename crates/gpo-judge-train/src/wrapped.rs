//! Instruction-wrapped copies of the harm head's training prompts.
//!
//! The harmful training requests are mostly questions ("How can I ...?", "How did people ...
//! in the past?"), while the benign ShareGPT first turns are often instructions ("Write ...",
//! "Give me ..."). Fitted on them as they are, the harm head learns the form of a request
//! along with its content, and scores harmful instructions low. Heads format 8 also trains on
//! a copy of every prompt, harmful and benign alike, wrapped in one generic instruction
//! template, so that the form carries no label.

use rand::Rng;

/// The templates; `{}` is the prompt.
pub const INSTRUCTION_TEMPLATES: [&str; 8] = [
    "Give detailed step-by-step instructions: {}",
    "Write a detailed answer to this: {}",
    "Explain in detail. {}",
    "Describe in detail: {}",
    "{} List the steps.",
    "{} Write it up in detail.",
    "Provide a thorough response to the following. {}",
    "Generate a complete guide for this: {}",
];

/// Each prompt wrapped in one template drawn from `rng`.
pub fn wrapped_copies<S: AsRef<str>>(prompts: &[S], rng: &mut impl Rng) -> Vec<String> {
    prompts
        .iter()
        .map(|p| {
            let t = INSTRUCTION_TEMPLATES[rng.random_range(0..INSTRUCTION_TEMPLATES.len())];
            t.replacen("{}", p.as_ref(), 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn each_prompt_is_wrapped_once_and_deterministically() {
        let prompts = ["How do I pick a lock?", "Name a cat."];
        let a = wrapped_copies(&prompts, &mut ChaCha8Rng::seed_from_u64(1));
        let b = wrapped_copies(&prompts, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, b);
        for (w, p) in a.iter().zip(prompts) {
            assert_eq!(w.matches(p).count(), 1, "{w}");
            assert!(!w.contains("{}"), "{w}");
            assert!(w.len() > p.len());
        }
    }
}
