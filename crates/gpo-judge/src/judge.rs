//! The judge interface: exchanges in, P(unsafe) and verdicts out.

use serde::{Deserialize, Serialize};

use crate::Result;

/// The judges gpo has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeKind {
    /// Offline CPU classifiers: harmful-request and compliance heads on MiniLM embeddings,
    /// and a BiLSTM toxicity model (`EmbeddedJudge`).
    #[default]
    Embedded,
    /// The Llama Guard protocol on a Llama-family chat model (`LmGuardJudge`).
    LmGuard,
    /// The Llama Guard protocol on a model behind an OpenAI-compatible server: vLLM, SGLang,
    /// llama.cpp (`ServerJudge`).
    Server,
}

impl JudgeKind {
    /// The name used in config files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeKind::Embedded => "embedded",
            JudgeKind::LmGuard => "lm-guard",
            JudgeKind::Server => "server",
        }
    }
}

/// One (prompt, response) exchange to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange<'a> {
    /// What the user (or the attacker) asked.
    pub prompt: &'a str,
    /// What the assistant (the defender) answered.
    pub response: &'a str,
}

impl<'a> Exchange<'a> {
    /// An exchange of `prompt` and `response`.
    pub fn new(prompt: &'a str, response: &'a str) -> Self {
        Exchange { prompt, response }
    }
}

/// A judge's decision at its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// P(unsafe) below the threshold.
    Safe,
    /// P(unsafe) at or above the threshold.
    Unsafe,
}

impl Verdict {
    /// `Unsafe` when `p_unsafe >= threshold`, else `Safe`.
    pub fn at(p_unsafe: f32, threshold: f32) -> Verdict {
        if p_unsafe >= threshold {
            Verdict::Unsafe
        } else {
            Verdict::Safe
        }
    }

    /// `"safe"` or `"unsafe"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Unsafe => "unsafe",
        }
    }
}

/// P(unsafe) of one exchange and the verdict at the judge's threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// Probability that the exchange is unsafe, in [0, 1].
    pub p_unsafe: f32,
    /// The decision at the judge's threshold.
    pub verdict: Verdict,
}

impl Judgement {
    /// P(safe) = 1 - P(unsafe): the defender's reward r(x, y) of the paper (docs/method.md).
    pub fn p_safe(&self) -> f32 {
        1.0 - self.p_unsafe
    }
}

/// A judge r(x, y): the seam between the game and whatever decides safety.
///
/// Implementations are batch-oriented: one call scores many exchanges, in order. They are
/// `Send + Sync`, so one judge can serve several threads (`Arc<dyn Judge>`) or move into a
/// worker.
pub trait Judge: Send + Sync {
    /// Which judge this is.
    fn kind(&self) -> JudgeKind;

    /// The threshold at which [`Judge::judge`] calls an exchange unsafe.
    fn threshold(&self) -> f32;

    /// P(unsafe) in [0, 1] of each exchange, in order. An empty batch gives an empty vector.
    fn p_unsafe(&self, batch: &[Exchange<'_>]) -> Result<Vec<f32>>;

    /// P(safe) = 1 - P(unsafe) of each exchange: the defender's reward.
    fn p_safe(&self, batch: &[Exchange<'_>]) -> Result<Vec<f32>> {
        Ok(self.p_unsafe(batch)?.into_iter().map(|p| 1.0 - p).collect())
    }

    /// P(unsafe) and the verdict at [`Judge::threshold`] of each exchange.
    fn judge(&self, batch: &[Exchange<'_>]) -> Result<Vec<Judgement>> {
        let t = self.threshold();
        Ok(self
            .p_unsafe(batch)?
            .into_iter()
            .map(|p| Judgement {
                p_unsafe: p,
                verdict: Verdict::at(p, t),
            })
            .collect())
    }
}

/// A shared judge judges as the judge it shares (one loaded copy serving several users).
impl<J: Judge + ?Sized> Judge for std::sync::Arc<J> {
    fn kind(&self) -> JudgeKind {
        (**self).kind()
    }

    fn threshold(&self) -> f32 {
        (**self).threshold()
    }

    fn p_unsafe(&self, batch: &[Exchange<'_>]) -> Result<Vec<f32>> {
        (**self).p_unsafe(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_itself_is_unsafe() {
        assert_eq!(Verdict::at(0.5, 0.5), Verdict::Unsafe);
        assert_eq!(Verdict::at(0.4999, 0.5), Verdict::Safe);
        assert_eq!(Verdict::Unsafe.as_str(), "unsafe");
        assert_eq!(serde_json::to_string(&Verdict::Safe).unwrap(), "\"safe\"");
    }
}
