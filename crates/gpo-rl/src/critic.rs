//! PPO's critic, trained apart from the policy: a value head on the policy's detached hidden
//! states, or its own LoRA adapters on the policy's frozen base weights plus a value head
//! (or, for comparison, a head whose value loss also reaches the policy).

use candle_core::{Tensor, Var};
use gpo_lm::{response_hidden, CausalLm, LoraConfig, PairBatch, Pass};

use crate::critic_config::CriticKind;
use crate::value_head::ValueHead;
use crate::Result;

/// Prefix of the critic's adapter names among a player's variables: they have the same PEFT
/// names as the policy's.
const PREFIX: &str = "critic.";

/// A critic whose variables get gradients from the value loss alone.
#[derive(Debug, Clone)]
pub struct Critic {
    /// What it is.
    kind: CriticKind,
    /// Its own LM (adapters on the policy's frozen base) for [`CriticKind::Lora`]; `None` for
    /// [`CriticKind::Head`], whose head reads the policy's hidden states.
    pub model: Option<CausalLm>,
    /// The value head.
    pub head: ValueHead,
}

impl Critic {
    /// A zero-initialised value head on `policy`'s hidden states ([`CriticKind::Head`]).
    pub fn head(policy: &CausalLm) -> Result<Self> {
        Ok(Critic {
            kind: CriticKind::Head,
            model: None,
            head: new_head(policy)?,
        })
    }

    /// A zero-initialised value head on `policy`'s hidden states whose value loss also
    /// trains the policy ([`CriticKind::Shared`]).
    pub fn shared(policy: &CausalLm) -> Result<Self> {
        Ok(Critic {
            kind: CriticKind::Shared,
            ..Self::head(policy)?
        })
    }

    /// Fresh adapters (`lora`, drawn from `seed`) on a frozen copy of `policy`, which shares
    /// its frozen base weights, plus a zero-initialised value head ([`CriticKind::Lora`]).
    pub fn lora(policy: &CausalLm, lora: &LoraConfig, seed: u64) -> Result<Self> {
        // Frozen, so that a policy adapter `lora` does not replace is a constant here.
        let mut model = policy.frozen_copy()?;
        gpo_lm::attach_lora(&mut model, lora, seed)?;
        Ok(Critic {
            kind: CriticKind::Lora,
            model: Some(model),
            head: new_head(policy)?,
        })
    }

    /// Which kind this is.
    pub fn kind(&self) -> CriticKind {
        self.kind
    }

    /// The trainable variables: the adapters (`critic.` + PEFT name), then the head's.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let adapters = self.model.iter().flat_map(|m| m.trainable_vars());
        let mut v: Vec<_> = adapters
            .map(|(n, v)| (format!("{PREFIX}{n}"), v.clone()))
            .collect();
        v.extend(self.head.vars());
        v
    }

    /// Values `[batch, response_width]` in f32, zero on padding. `policy_hidden`: the
    /// policy's hidden states at the response positions, `[batch, response_width, hidden]`,
    /// when already computed; the head kind reads them detached (running `policy` when
    /// they are not given), the shared kind reads them as they are, the LoRA kind runs its
    /// own model.
    pub(crate) fn values(
        &self,
        policy: &CausalLm,
        policy_hidden: Option<&Tensor>,
        batch: &PairBatch,
        pass: &Pass,
    ) -> Result<Tensor> {
        let h = match (&self.model, policy_hidden) {
            (Some(own), _) => response_hidden(own, batch, pass)?,
            (None, Some(h)) => h.clone(),
            (None, None) => response_hidden(policy, batch, pass)?,
        };
        let h = match self.kind {
            CriticKind::Head => h.detach(),
            CriticKind::Lora | CriticKind::Shared => h,
        };
        Ok((self.head.forward(&h)? * &batch.response_mask)?)
    }
}

fn new_head(policy: &CausalLm) -> Result<ValueHead> {
    ValueHead::new(policy.config().hidden_size, policy.dtype(), policy.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use gpo_lm::{Architecture, LmConfig, Trainable};

    #[test]
    fn a_lora_critic_has_its_own_variables_under_its_own_names() {
        let mut policy = CausalLm::random(
            LmConfig::tiny(Architecture::Llama),
            5,
            Trainable::Frozen,
            &Device::Cpu,
        )
        .unwrap();
        let lora = LoraConfig::default();
        gpo_lm::attach_lora(&mut policy, &lora, 1).unwrap();
        let critic = Critic::lora(&policy, &lora, 2).unwrap();
        assert_eq!(critic.kind(), CriticKind::Lora);
        let vars = critic.vars();
        // Every adapter of the policy, then the head's weight and bias.
        assert_eq!(vars.len(), policy.trainable_vars().len() + 2);
        let policy_ids: Vec<_> = policy
            .trainable_vars()
            .iter()
            .map(|(_, v)| v.as_tensor().id())
            .collect();
        for (name, var) in &vars {
            assert!(!policy_ids.contains(&var.as_tensor().id()), "{name}");
            assert!(name.starts_with(PREFIX) || name.starts_with("value_head."));
        }
        assert_eq!(Critic::head(&policy).unwrap().vars().len(), 2);
    }
}
