//! Teacher-forced per-token log-probabilities: what policy-gradient losses and KL penalties
//! are computed from.

use candle_core::{DType, Device, Tensor, D};

use crate::model::CausalLm;
use crate::pass::Pass;
use crate::{Error, Result};

/// A batch of (prompt, response) pairs laid out so that every response starts in the same
/// column: prompts left-padded to `prompt_width`, responses right-padded to `response_width`.
#[derive(Debug, Clone)]
pub struct PairBatch {
    /// `[batch, prompt_width + response_width]` u32.
    pub ids: Tensor,
    /// `[batch, prompt_width + response_width]` u32, 1 on tokens.
    pub attention_mask: Tensor,
    /// `[batch, response_width]` u32: the response tokens (padding = pad id).
    pub targets: Tensor,
    /// `[batch, response_width]` f32, 1 on response tokens.
    pub response_mask: Tensor,
    /// Width of the prompt part.
    pub prompt_width: usize,
    /// Width of the response part.
    pub response_width: usize,
}

impl PairBatch {
    /// Lays out `pairs` of (prompt ids, response ids). Every prompt and response needs at least
    /// one token.
    pub fn new(pairs: &[(Vec<u32>, Vec<u32>)], pad_id: u32, device: &Device) -> Result<Self> {
        if pairs.is_empty() {
            return Err(Error::InvalidArgument(
                "empty batch of (prompt, response) pairs".into(),
            ));
        }
        if let Some(i) = pairs.iter().position(|(p, r)| p.is_empty() || r.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "pair {i} has an empty prompt or response"
            )));
        }
        let pw = pairs.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        let rw = pairs.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
        let b = pairs.len();
        let (mut ids, mut mask, mut targets, mut rmask) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (p, r) in pairs {
            let lpad = pw - p.len();
            let rpad = rw - r.len();
            ids.extend(
                std::iter::repeat_n(pad_id, lpad)
                    .chain(p.iter().copied())
                    .chain(r.iter().copied())
                    .chain(std::iter::repeat_n(pad_id, rpad)),
            );
            mask.extend(
                std::iter::repeat_n(0u32, lpad)
                    .chain(std::iter::repeat_n(1, p.len() + r.len()))
                    .chain(std::iter::repeat_n(0, rpad)),
            );
            targets.extend(r.iter().copied().chain(std::iter::repeat_n(pad_id, rpad)));
            rmask.extend(std::iter::repeat_n(1f32, r.len()).chain(std::iter::repeat_n(0.0, rpad)));
        }
        Ok(PairBatch {
            ids: Tensor::from_vec(ids, (b, pw + rw), device)?,
            attention_mask: Tensor::from_vec(mask, (b, pw + rw), device)?,
            targets: Tensor::from_vec(targets, (b, rw), device)?,
            response_mask: Tensor::from_vec(rmask, (b, rw), device)?,
            prompt_width: pw,
            response_width: rw,
        })
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.response_mask.dims()[0]
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `log p(response_t | prompt, response_<t)` for every response token, `[batch, response_width]`
/// (0 on padding). Only the response positions go through the LM head. Differentiable in
/// [`crate::Mode::Train`].
pub fn response_logprobs(model: &CausalLm, batch: &PairBatch, pass: &Pass) -> Result<Tensor> {
    let h = response_hidden(model, batch, pass)?;
    let logits = model.lm_logits(&h, pass)?.to_dtype(DType::F32)?;
    let lp = gather_logprobs(&logits, &batch.targets)?;
    Ok((lp * &batch.response_mask)?)
}

/// `model`'s final hidden states at the positions that predict the response tokens,
/// `[batch, response_width, hidden]`: what the LM head and a value head read.
pub fn response_hidden(model: &CausalLm, batch: &PairBatch, pass: &Pass) -> Result<Tensor> {
    let hidden = model.forward_hidden(&batch.ids, Some(&batch.attention_mask), pass)?;
    // The hidden state at column c predicts the token at c + 1.
    Ok(hidden.narrow(1, batch.prompt_width - 1, batch.response_width)?)
}

/// `logits[.., target] - logsumexp(logits)`: `[b, s, V]` and `[b, s]` -> `[b, s]`.
pub fn gather_logprobs(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.device().is_cpu() && logits.dtype() == DType::F32 && logits.rank() == 3 {
        return crate::fused::log_softmax_gather_cpu(logits, targets);
    }
    gather_logprobs_generic(logits, targets)
}

/// [`gather_logprobs`] with plain tensor ops (any device; the reference for the fused kernel).
pub fn gather_logprobs_generic(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    // The max only stabilises the exponentials; logsumexp does not depend on it, so it is
    // detached to keep it out of the graph.
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let lse = (logits
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + &max)?;
    let picked = logits.gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?;
    Ok((picked - lse)?.squeeze(D::Minus1)?)
}

/// Teacher-forced scores of one sequence: `logprobs[i] = log p(ids[i] | ids[..i])` (`None`
/// for i = 0) and `top1[i]` = the arg-max next token after position i.
pub fn score_sequence(model: &CausalLm, ids: &[u32]) -> Result<(Vec<Option<f32>>, Vec<u32>)> {
    if ids.is_empty() {
        return Err(Error::InvalidArgument(
            "cannot score an empty token sequence".into(),
        ));
    }
    let n = ids.len();
    let t = Tensor::from_slice(ids, (1, n), model.device())?;
    let logits = model
        .forward(&t, None, &Pass::infer())?
        .to_dtype(DType::F32)?
        .squeeze(0)?;
    let top1 = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let mut logprobs = vec![None];
    if n > 1 {
        let targets = Tensor::from_slice(&ids[1..], (1, n - 1), model.device())?;
        let lp = gather_logprobs(&logits.narrow(0, 0, n - 1)?.unsqueeze(0)?, &targets)?
            .squeeze(0)?
            .to_vec1::<f32>()?;
        logprobs.extend(lp.into_iter().map(Some));
    }
    Ok((logprobs, top1))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::{gather_logprobs, gather_logprobs_generic};
    use crate::test_util::max_diff;

    #[test]
    fn fused_log_softmax_gather_matches_tensor_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 3.0, (2, 3, 50), &dev).unwrap();
        let t = candle_core::Tensor::new(&[[1u32, 49, 0], [7, 7, 22]], &dev).unwrap();
        let w = candle_core::Tensor::new(&[[1f32, -2.0, 0.5], [0.0, 3.0, 1.0]], &dev).unwrap();
        let fused = gather_logprobs(x.as_tensor(), &t).unwrap();
        let plain = gather_logprobs_generic(x.as_tensor(), &t).unwrap();
        let d = max_diff(&fused, &plain);
        assert!(d < 1e-5, "forward differs by {d}");
        let gf = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gp = (plain * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (gf, gp) = (
            gf.get(x.as_tensor()).unwrap(),
            gp.get(x.as_tensor()).unwrap(),
        );
        let d = max_diff(gf, gp);
        assert!(d < 1e-5, "gradient differs by {d}");
    }
}
