//! What one update reports: losses, diagnostics, gradient norms and steps.

pub use gpo_records::UpdateStats;

/// One mini-batch's diagnostics, weighted like its loss.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MinibatchStats {
    pub policy_loss: f32,
    pub value_loss: f32,
    pub kl_loss: f32,
    pub entropy: f32,
    pub clip_fraction: f32,
    pub approx_kl: f32,
}

impl MinibatchStats {
    pub(crate) fn add(&mut self, o: &MinibatchStats) {
        self.policy_loss += o.policy_loss;
        self.value_loss += o.value_loss;
        self.kl_loss += o.kl_loss;
        self.entropy += o.entropy;
        self.clip_fraction += o.clip_fraction;
        self.approx_kl += o.approx_kl;
    }

    /// Writes these sums over `n` mini-batches into `out` as means.
    pub(crate) fn mean_into(&self, n: usize, out: &mut UpdateStats) {
        let k = n.max(1) as f32;
        out.policy_loss = self.policy_loss / k;
        out.value_loss = self.value_loss / k;
        out.kl_loss = self.kl_loss / k;
        out.entropy = self.entropy / k;
        out.clip_fraction = self.clip_fraction / k;
        out.approx_kl = self.approx_kl / k;
    }
}
