//! How one forward pass runs: differentiable or fast, with or without LoRA adapters.

/// Which kernels a forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Differentiable ops only (RMSNorm, softmax and RoPE written out), so gradients reach
    /// every weight. LoRA dropout is active.
    Train,
    /// candle's fused kernels (no backward) on detached weights: for sampling, reference
    /// log-probs and judging, where no gradient is wanted and no graph is kept.
    Infer,
}

/// Options of one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Kernels to use.
    pub mode: Mode,
    /// Whether LoRA adapters are applied. `false` gives the frozen base model, which is the
    /// KL reference of a LoRA policy without a second copy of the weights.
    pub adapters: bool,
    /// Seed of the LoRA dropout masks in [`Mode::Train`]; `None` disables dropout.
    pub dropout_seed: Option<u64>,
}

impl Pass {
    /// A differentiable pass with adapters and no dropout.
    pub fn train() -> Self {
        Pass {
            mode: Mode::Train,
            adapters: true,
            dropout_seed: None,
        }
    }

    /// A fast, gradient-free pass with adapters.
    pub fn infer() -> Self {
        Pass {
            mode: Mode::Infer,
            adapters: true,
            dropout_seed: None,
        }
    }

    /// A fast pass of the base model with adapters disabled (the frozen reference).
    pub fn reference() -> Self {
        Pass {
            mode: Mode::Infer,
            adapters: false,
            dropout_seed: None,
        }
    }

    /// Enables LoRA dropout with masks drawn from `seed`.
    pub fn with_dropout_seed(mut self, seed: u64) -> Self {
        self.dropout_seed = Some(seed);
        self
    }

    pub(crate) fn train_mode(&self) -> bool {
        self.mode == Mode::Train
    }
}
