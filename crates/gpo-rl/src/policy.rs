//! A trainable player: the policy LM, its optional critic, and the frozen reference it is
//! anchored to.

use candle_core::{DType, Tensor, Var, D};
use gpo_lm::{gather_logprobs, CausalLm, LoraConfig, PairBatch, Pass};

use crate::value_head::ValueHead;
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
    pub value_head: Option<ValueHead>,
    /// The KL anchor.
    pub reference: Reference,
}

/// What one pass of the policy over a [`PairBatch`] gives, all `[batch, response_width]` f32
/// and zero on padding.
#[derive(Debug)]
pub struct Scores {
    /// `log pi(y_t | x, y_<t)` at temperature `T` (logits / T).
    pub logprobs: Tensor,
    /// Critic values, when asked for and the policy has a head.
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
            value_head: None,
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
            value_head: None,
            reference,
        })
    }

    /// Adds a zero-initialised value head (PPO's critic).
    pub fn with_value_head(mut self) -> Result<Self> {
        let cfg = self.model.config();
        self.value_head = Some(ValueHead::new(
            cfg.hidden_size,
            self.model.dtype(),
            self.model.device(),
        )?);
        Ok(self)
    }

    /// The policy's trainable variables (adapters or weights), without the critic's.
    pub fn policy_vars(&self) -> &[(String, Var)] {
        self.model.trainable_vars()
    }

    /// Every trainable variable: the policy's, then the critic's.
    pub fn all_vars(&self) -> Vec<(String, Var)> {
        let mut v = self.model.trainable_vars().to_vec();
        if let Some(h) = &self.value_head {
            v.extend(h.vars());
        }
        v
    }

    /// Scores `batch` under the policy with `pass` (use [`Pass::train`] to differentiate).
    pub fn score(
        &self,
        batch: &PairBatch,
        temperature: f64,
        pass: &Pass,
        want_values: bool,
        want_entropy: bool,
    ) -> Result<Scores> {
        let head = if want_values {
            self.value_head.as_ref()
        } else {
            None
        };
        score_with(&self.model, head, batch, temperature, pass, want_entropy)
    }

    /// `log pi_ref(y_t | ...)` at temperature `T`, `[batch, response_width]`, no graph.
    pub fn reference_logprobs(&self, batch: &PairBatch, temperature: f64) -> Result<Tensor> {
        let (model, pass) = match &self.reference {
            Reference::BaseWeights => (&self.model, Pass::reference()),
            Reference::Model(m) => (m.as_ref(), Pass::infer()),
        };
        Ok(score_with(model, None, batch, temperature, &pass, false)?.logprobs)
    }
}

/// Logits are divided by the sampling temperature so that the log-probs are those of the
/// distribution the tokens were drawn from (greedy decoding, `T = 0`, uses the raw logits).
fn score_with(
    model: &CausalLm,
    head: Option<&ValueHead>,
    batch: &PairBatch,
    temperature: f64,
    pass: &Pass,
    want_entropy: bool,
) -> Result<Scores> {
    let hidden = model.forward_hidden(&batch.ids, Some(&batch.attention_mask), pass)?;
    // The hidden state at column c predicts the token at c + 1.
    let h = hidden.narrow(1, batch.prompt_width - 1, batch.response_width)?;
    let mut logits = model.lm_logits(&h, pass)?.to_dtype(DType::F32)?;
    if temperature > 0.0 && temperature != 1.0 {
        logits = (logits / temperature)?;
    }
    let mask = &batch.response_mask;
    let logprobs = (gather_logprobs(&logits, &batch.targets)? * mask)?;
    let values = head.map(|v| v.forward(&h)).transpose()?;
    let values = values.map(|v| v * mask).transpose()?;
    let entropy = if want_entropy {
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let ent = (lsm.exp()? * &lsm)?.sum(D::Minus1)?.neg()?;
        Some((ent * mask)?)
    } else {
        None
    };
    Ok(Scores {
        logprobs,
        values,
        entropy,
    })
}
