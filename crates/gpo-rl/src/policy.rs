//! A trainable player: the policy LM, its optional critic, and the frozen reference it is
//! anchored to.

use candle_core::{DType, Tensor, Var, D};
use gpo_lm::{gather_logprobs, response_hidden, CausalLm, LoraConfig, PairBatch, Pass};

use crate::critic::Critic;
use crate::critic_config::CriticKind;
use crate::{Error, Result};

/// The model the KL penalty is measured against.
#[derive(Debug, Clone)]
pub enum Reference {
    /// The policy's own base weights with LoRA adapters disabled: the frozen initial model
    /// of a LoRA policy, with no second copy of the weights.
    BaseWeights,
    /// A separate frozen model (full fine-tuning, or a snapshot such as the previous
    /// iterate; see [`CausalLm::frozen_copy`]).
    Model(Box<CausalLm>),
}

/// A policy LM being trained by RL.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The language model; its [`CausalLm::trainable_vars`] are what the optimiser updates.
    pub model: CausalLm,
    /// How the LoRA adapters were configured (`None` for full fine-tuning); checkpoints
    /// save adapters in PEFT's layout with it.
    pub lora: Option<LoraConfig>,
    /// The critic of PPO, `None` for critic-free estimators.
    pub critic: Option<Critic>,
    /// The KL anchor.
    pub reference: Reference,
}

/// What one pass of the policy over a [`PairBatch`] gives, all `[batch, response_width]` f32
/// and zero on padding.
#[derive(Debug)]
pub struct Scores {
    /// `log pi(y_t | x, y_<t)` at temperature `T` (logits / T).
    pub logprobs: Tensor,
    /// Critic values, when asked for and the policy has a critic.
    pub values: Option<Tensor>,
    /// Entropy of the next-token distribution at each response position, when asked for.
    pub entropy: Option<Tensor>,
}

impl Policy {
    /// A LoRA policy (adapters already attached with [`gpo_lm::attach_lora`] using `lora`)
    /// anchored to its own base weights.
    pub fn lora(model: CausalLm, lora: LoraConfig) -> Result<Self> {
        if model.trainable_vars().is_empty() {
            return Err(Error::Invalid(
                "the model has no trainable variables: attach LoRA adapters first".into(),
            ));
        }
        Ok(Policy {
            model,
            lora: Some(lora),
            critic: None,
            reference: Reference::BaseWeights,
        })
    }

    /// A fully trainable policy ([`gpo_lm::Trainable::Full`]) anchored to a frozen copy of
    /// its initial weights.
    pub fn full(model: CausalLm) -> Result<Self> {
        if model.trainable_vars().is_empty() {
            return Err(Error::Invalid(
                "the model has no trainable variables: load it with Trainable::Full".into(),
            ));
        }
        let reference = Reference::Model(Box::new(model.frozen_copy()?));
        Ok(Policy {
            model,
            lora: None,
            critic: None,
            reference,
        })
    }

    /// Adds PPO's critic of `kind`; `seed` draws the initial adapters of a
    /// [`CriticKind::Lora`] critic (give it a seed other than the policy's).
    pub fn with_critic(mut self, kind: CriticKind, seed: u64) -> Result<Self> {
        let critic = match (kind, &self.lora) {
            (CriticKind::Head, _) => Critic::head(&self.model)?,
            (CriticKind::Shared, _) => Critic::shared(&self.model)?,
            (CriticKind::Lora, Some(lora)) => Critic::lora(&self.model, lora, seed)?,
            (CriticKind::Lora, None) => {
                return Err(Error::Invalid(
                    "estimator.critic.kind = \"lora\" needs a LoRA policy; use \"head\" with \
                     full fine-tuning"
                        .into(),
                ))
            }
        };
        self.critic = Some(critic);
        Ok(self)
    }

    /// The policy's trainable variables (adapters or weights), without the critic's.
    pub fn policy_vars(&self) -> &[(String, Var)] {
        self.model.trainable_vars()
    }

    /// Every trainable variable: the policy's, then the critic's.
    pub fn all_vars(&self) -> Vec<(String, Var)> {
        let mut v = self.model.trainable_vars().to_vec();
        if let Some(c) = &self.critic {
            v.extend(c.vars());
        }
        v
    }

    /// Scores `batch` under the policy with `pass` (use [`Pass::train`] to differentiate).
    /// The critic's values carry no gradient to the policy's variables.
    pub fn score(
        &self,
        batch: &PairBatch,
        temperature: f64,
        pass: &Pass,
        want_values: bool,
        want_entropy: bool,
    ) -> Result<Scores> {
        let (mut scores, hidden) = score_with(&self.model, batch, temperature, pass, want_entropy)?;
        if want_values {
            scores.values = self
                .critic
                .as_ref()
                .map(|c| c.values(&self.model, Some(&hidden), batch, pass))
                .transpose()?;
        }
        Ok(scores)
    }

    /// The critic's values alone, `[batch, response_width]` f32 (zero on padding).
    pub fn values(&self, batch: &PairBatch, pass: &Pass) -> Result<Tensor> {
        let critic = self.critic.as_ref().ok_or_else(|| {
            Error::Invalid("the policy has no critic: build it with_critic()".into())
        })?;
        critic.values(&self.model, None, batch, pass)
    }

    /// `log pi(y_t | ...)` of the policy as it is, at temperature `T`,
    /// `[batch, response_width]`, no graph.
    pub fn logprobs(&self, batch: &PairBatch, temperature: f64) -> Result<Tensor> {
        Ok(
            score_with(&self.model, batch, temperature, &Pass::infer(), false)?
                .0
                .logprobs,
        )
    }

    /// `log pi_ref(y_t | ...)` at temperature `T`, `[batch, response_width]`, no graph.
    pub fn reference_logprobs(&self, batch: &PairBatch, temperature: f64) -> Result<Tensor> {
        let (model, pass) = match &self.reference {
            Reference::BaseWeights => (&self.model, Pass::reference()),
            Reference::Model(m) => (m.as_ref(), Pass::infer()),
        };
        Ok(score_with(model, batch, temperature, &pass, false)?
            .0
            .logprobs)
    }
}

/// Scores without values, and the response hidden states they came from. Logits are divided
/// by the sampling temperature so that the log-probs are those of the distribution the
/// tokens were drawn from (greedy decoding, `T = 0`, uses the raw logits).
fn score_with(
    model: &CausalLm,
    batch: &PairBatch,
    temperature: f64,
    pass: &Pass,
    want_entropy: bool,
) -> Result<(Scores, Tensor)> {
    let h = response_hidden(model, batch, pass)?;
    let mut logits = model.lm_logits(&h, pass)?.to_dtype(DType::F32)?;
    if temperature > 0.0 && temperature != 1.0 {
        logits = (logits / temperature)?;
    }
    let mask = &batch.response_mask;
    let logprobs = (gather_logprobs(&logits, &batch.targets)? * mask)?;
    let entropy = if want_entropy {
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let ent = (lsm.exp()? * &lsm)?.sum(D::Minus1)?.neg()?;
        Some((ent * mask)?)
    } else {
        None
    };
    let scores = Scores {
        logprobs,
        values: None,
        entropy,
    };
    Ok((scores, h))
}
