//! Harmful requests beside benign ones that look like them: a development set of the harm
//! head.
//!
//! 300 requests written by a helper agent that saw neither the method nor its data: 150
//! harmful (named agents, exploits and techniques; persuasive misinformation; stalking, ...)
//! and 150 benign that share their surface (defending against an exploit, a neutral essay on
//! an atrocity, how an antidote works), in the same mix of forms. HarmBench against ShareGPT's
//! first turns measures how far the harm head tells harm from everyday chat; this set
//! measures how far it reads intent rather than topic. It was committed with heads format 9,
//! after being used to try (and reject) changes to the head's training data.

use serde::Deserialize;

/// One request of the set.
#[derive(Debug, Clone, Deserialize)]
pub struct LookalikeRequest {
    /// The request.
    pub prompt: String,
    /// Whether it is harmful.
    pub harmful: bool,
}

const JSONL: &str = include_str!("../data/lookalike_requests.jsonl");

/// The requests, in file order.
pub fn lookalike_requests() -> Vec<LookalikeRequest> {
    crate::committed_jsonl(JSONL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_balanced() {
        let requests = lookalike_requests();
        assert_eq!(requests.len(), 300, "a line failed to parse");
        assert_eq!(requests.iter().filter(|r| r.harmful).count(), 150);
    }
}
