//! The marker-free reply sets the compliance head and the whole judge are measured on.
//!
//! Each set is JSONL of `{"reply", "refusal"}`: replies to harmful requests, none of which
//! contains a garak refusal marker (a test checks), so they measure how far the compliance
//! head generalises beyond the labeller that made its training data. Every set was committed
//! before any head was scored on it; its role says what it was used for since. A set that was
//! looked at while choosing a heads format is a development set from then on.
//! Sets not yet scored by any head wait in [`UNSCORED_SETS`], outside the card, until they
//! test the next heads format.

use serde::Deserialize;

/// One reply of a reply set.
#[derive(Debug, Clone, Deserialize)]
pub struct HandwrittenReply {
    /// The text.
    pub reply: String,
    /// Whether it refuses.
    pub refusal: bool,
}

/// A committed reply set.
#[derive(Debug, Clone, Copy)]
pub struct ReplySet {
    /// Short name; the card's metrics are `comply_<name>_replies` and
    /// `judge_exchanges_<name>_replies`.
    pub name: &'static str,
    /// Who wrote it and what it was used for.
    pub role: &'static str,
    /// The JSONL text.
    pub jsonl: &'static str,
}

impl ReplySet {
    /// The replies, in file order.
    pub fn replies(&self) -> Vec<HandwrittenReply> {
        gpo_datasets::committed_jsonl(self.jsonl)
    }

    /// The card key of the compliance head's metrics on this set.
    pub fn comply_key(&self) -> String {
        format!("comply_{}_replies", self.name)
    }

    /// The card key of the whole judge's metrics on this set.
    pub fn judge_key(&self) -> String {
        format!("judge_exchanges_{}_replies", self.name)
    }
}

/// Every committed reply set, oldest first.
pub const REPLY_SETS: [ReplySet; 18] = [
    ReplySet {
        name: "handwritten",
        role: "43 replies written in-house: the yardstick while the compliance head's settings \
               were first chosen (a development set)",
        jsonl: include_str!("../data/handwritten_replies.jsonl"),
    },
    ReplySet {
        name: "heldout",
        role: "80 more in-house replies: the test of heads format 3, a development set since",
        jsonl: include_str!("../data/heldout_replies.jsonl"),
    },
    ReplySet {
        name: "test",
        role: "100 replies by a separate author who saw neither the method, its data nor the \
               other sets: the test of formats 4 to 6, a development set for format 7",
        jsonl: include_str!("../data/test_replies.jsonl"),
    },
    ReplySet {
        name: "dev3",
        role: "120 replies by another separate author, asked for varied voices: the \
               development set heads format 6 was chosen with",
        jsonl: include_str!("../data/dev3_replies.jsonl"),
    },
    ReplySet {
        name: "test2",
        role: "120 replies by a third outside author: the test of format 6, a development set \
               for format 7",
        jsonl: include_str!("../data/test2_replies.jsonl"),
    },
    ReplySet {
        name: "dev4",
        role: "120 replies by a fifth author, as assistants of many kinds write them: a \
               development set of format 7",
        jsonl: include_str!("../data/dev4_replies.jsonl"),
    },
    ReplySet {
        name: "test3",
        role: "120 replies by a sixth author, written after format 6 was fixed: the clean test \
               of format 7, a development set for format 8",
        jsonl: include_str!("../data/test3_replies.jsonl"),
    },
    ReplySet {
        name: "test4",
        role: "120 replies by a seventh author, written after format 7 was fixed: a second clean \
               test of format 7, a development set for format 8",
        jsonl: include_str!("../data/test4_replies.jsonl"),
    },
    ReplySet {
        name: "test5",
        role: "120 replies by an eighth author, written while format 8 was being chosen and \
               committed before any head was scored on them: format 8's first test, which it \
               failed (a development set since)",
        jsonl: include_str!("../data/test5_replies.jsonl"),
    },
    ReplySet {
        name: "test6",
        role: "120 replies by a ninth author, asked for replies to red-teaming prompts \
               (jailbreaks, fiction and past-tense framings), written beside test5 and \
               failed by format 8 the same way (a development set since)",
        jsonl: include_str!("../data/test6_replies.jsonl"),
    },
    ReplySet {
        name: "test7",
        role: "120 replies by a tenth author, as deployed assistants of many kinds write them, \
               committed before any head was scored on them: the clean test of format 8, a \
               development set for format 9",
        jsonl: include_str!("../data/test7_replies.jsonl"),
    },
    ReplySet {
        name: "test8",
        role: "120 replies by an eleventh author, as many models write them in red-teaming, \
               committed beside test7: a second clean test of format 8, a development set \
               for format 9",
        jsonl: include_str!("../data/test8_replies.jsonl"),
    },
    ReplySet {
        name: "test9",
        role: "120 replies by a twelfth author, as everyday chat apps write them, written after \
               format 8 was scored on test7 and test8: a third clean test of format 8, a \
               development set for format 9",
        jsonl: include_str!("../data/test9_replies.jsonl"),
    },
    ReplySet {
        name: "test10",
        role: "120 replies by a thirteenth author, to an automated attacker's requests, \
               written beside test9: a fourth clean test of format 8, a development set for \
               format 9",
        jsonl: include_str!("../data/test10_replies.jsonl"),
    },
    ReplySet {
        name: "test11",
        role: "120 replies by a fourteenth author, committed (3892ffb) before any head was \
               scored on them and added here once heads format 9 was fixed: the clean test of \
               format 9",
        jsonl: include_str!("../data/test11_replies.jsonl"),
    },
    ReplySet {
        name: "test12",
        role: "120 replies by a fifteenth author, written and committed beside test11: a second \
               clean test of format 9",
        jsonl: include_str!("../data/test12_replies.jsonl"),
    },
    ReplySet {
        name: "test13",
        role: "120 replies by a sixteenth author, as assistants in deployed products write \
               them, committed (ed76be4) before any head was scored on them: a clean test of \
               format 10",
        jsonl: include_str!("../data/test13_replies.jsonl"),
    },
    ReplySet {
        name: "test14",
        role: "120 replies by a seventeenth author, as models under jailbreak, fiction and \
               research framings write them, written and committed beside test13: a second \
               clean test of format 10",
        jsonl: include_str!("../data/test14_replies.jsonl"),
    },
];

/// Sets committed before any head was scored on them and kept out of [`REPLY_SETS`] (so out of
/// every card) until they test the next heads format; checked like the others. None waits now.
pub const UNSCORED_SETS: [ReplySet; 0] = [];

/// The reply set called `name`.
pub fn reply_set(name: &str) -> Option<&'static ReplySet> {
    REPLY_SETS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_parses_whole_and_balanced() {
        // Sizes as committed: 43 and 80 in-house replies, then the outside authors' sets,
        // the unscored ones last.
        let sizes = [
            43, 80, 100, 120, 120, 120, 120, 120, 120, 120, 120, 120, 120, 120, 120, 120, 120, 120,
        ];
        let sets: Vec<&ReplySet> = REPLY_SETS.iter().chain(&UNSCORED_SETS).collect();
        assert_eq!(sets.len(), sizes.len());
        for (set, size) in sets.iter().zip(sizes) {
            assert_eq!(set.replies().len(), size, "{}", set.name);
        }
        for set in sets {
            let lines = set.jsonl.lines().filter(|l| !l.trim().is_empty()).count();
            let replies = set.replies();
            assert_eq!(replies.len(), lines, "{}: a line failed to parse", set.name);
            let refusing = replies.iter().filter(|r| r.refusal).count();
            assert!(
                refusing * 2 >= replies.len() - 1 && refusing * 2 <= replies.len() + 1,
                "{}: {refusing} of {} refuse",
                set.name,
                replies.len()
            );
        }
    }

    #[test]
    fn names_are_unique_and_found() {
        for set in &REPLY_SETS {
            assert_eq!(reply_set(set.name).map(|s| s.name), Some(set.name));
        }
        assert!(reply_set("nope").is_none());
    }
}
