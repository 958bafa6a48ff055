//! `gpo-optim`: the optimiser side of training.
//!
//! - [`AdamW`]: PyTorch-exact AdamW over named [`candle_core::Var`]s, in-place on CPU, with
//!   state saved to and restored from safetensors for exact resumption.
//! - [`Grads`]: the parameters' gradients out of a backward pass, accumulable over
//!   micro-batches; [`clip_grad_norm`] turns the global norm into a gradient scale.
//! - [`LrSchedule`]: constant, warm-up, linear, cosine and inverse-sqrt schedules.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use gpo_optim::{AdamW, AdamWConfig, Grads, LrSchedule};
//! # fn main() -> gpo_optim::Result<()> {
//! let w = Var::new(&[1.0f32, -2.0], &Device::Cpu)?;
//! let params = vec![("w".to_string(), w.clone())];
//! let mut opt = AdamW::new(params.clone(), AdamWConfig::default())?;
//! let loss = w.as_tensor().sqr()?.sum_all()?;
//! let grads = Grads::from_store(loss.backward()?, &params);
//! let lr = LrSchedule::Constant.lr_at(0.1, opt.step_count());
//! opt.step(&grads, lr, 1.0)?;
//! assert!(w.as_tensor().to_vec1::<f32>()?[0] < 1.0);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod adamw;
mod clip;
mod error;
mod inplace;
mod schedule;

pub use adamw::{AdamW, AdamWConfig, StepStats};
pub use clip::{clip_grad_norm, Grads};
pub use error::{Error, Result};
pub use schedule::LrSchedule;
