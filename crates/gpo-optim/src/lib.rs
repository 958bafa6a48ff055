//! `gpo-optim`: the optimiser side of training, on candle.
//!
//! - [`AdamW`]: `torch.optim.AdamW` over named [`candle_core::Var`]s (decoupled weight
//!   decay, bias correction, per-parameter step counts), with its hyper-parameters in
//!   [`AdamWConfig`] and a fused in-place kernel for f32 CPU parameters. bf16 and f16
//!   parameters train through f32 master copies ([`AdamW::master`]). Its state saves
//!   to and loads from safetensors keyed by parameter name ([`AdamW::save`],
//!   [`AdamW::load`], [`AdamW::state_dict`]), so a run resumes exactly.
//! - [`clip_grad_norm`]: `torch.nn.utils.clip_grad_norm_` on a
//!   [`candle_core::backprop::GradStore`]; [`grad_norm`] and [`scale_grads`] are its parts.
//! - [`GradAccumulator`]: sums gradients over micro-batches (mean = full-batch gradient).
//! - [`LrSchedule`]: constant, warm-up, linear, cosine and inverse-sqrt schedules.
//!
//! One training step (candle has no `zero_grad`: each backward returns a fresh store):
//!
//! ```
//! use candle_core::{Device, Var};
//! use gpo_optim::{clip_grad_norm, AdamW, AdamWConfig, LrSchedule};
//! # fn main() -> gpo_optim::Result<()> {
//! let w = Var::new(&[1.0f32, -2.0], &Device::Cpu)?;
//! let params = vec![("w".to_string(), w.clone())];
//! let cfg = AdamWConfig { lr: 0.1, ..AdamWConfig::paper() };
//! let mut opt = AdamW::new(params.clone(), cfg)?;
//! let schedule = LrSchedule::InverseSqrt { warmup: 2 };
//!
//! let loss = w.as_tensor().sqr()?.sum_all()?;
//! let mut grads = loss.backward()?;
//! let norm = clip_grad_norm(&mut grads, &params, 1.0)?;
//! let lr = schedule.lr_at(cfg.lr, opt.step_count());
//! let stats = opt.step(&grads, lr)?;
//! assert!(norm > 4.4 && stats.updated == 1);
//! assert!(w.as_tensor().to_vec1::<f32>()?[0] < 1.0);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod accumulate;
mod adamw;
mod clip;
mod config;
mod error;
mod kernels;
mod schedule;
mod state;

pub use accumulate::GradAccumulator;
pub use adamw::{AdamW, StepStats};
pub use clip::{clip_grad_norm, grad_norm, scale_grads};
pub use config::AdamWConfig;
pub use error::{Error, Result};
pub use schedule::LrSchedule;
pub use state::STATE_FORMAT;
