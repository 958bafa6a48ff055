//! In-place CPU kernels of the AdamW update: no allocation, one pass per moment.
//! (candle's tensor ops allocate a fresh buffer per op; for 135M parameters the allocations
//! and page faults dominated the step.)

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result};

/// The contiguous f32 slice of a storage, or `None` for other dtypes / strided layouts.
fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Option<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Some(&v[a..b]),
        _ => None,
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Option<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Some(&mut v[a..b]),
        _ => None,
    }
}

fn unsupported(name: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{name}: needs contiguous f32 tensors"))
}

/// `m <- b1 m + (1 - b1) s g` (first moment, `s` = gradient scale).
pub(crate) struct FirstMoment {
    pub beta: f32,
    pub scale: f32,
}

impl InplaceOp2 for FirstMoment {
    fn name(&self) -> &'static str {
        "adamw-first-moment"
    }
    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<()> {
        let g = slice(gs, gl).ok_or_else(|| unsupported(self.name()))?;
        let m = slice_mut(dst, dst_l).ok_or_else(|| unsupported(self.name()))?;
        let (b, c) = (self.beta, (1.0 - self.beta) * self.scale);
        for (m, g) in m.iter_mut().zip(g) {
            *m = b * *m + c * g;
        }
        Ok(())
    }
}

/// `v <- b2 v + (1 - b2) (s g)^2` (second moment).
pub(crate) struct SecondMoment {
    pub beta: f32,
    pub scale: f32,
}

impl InplaceOp2 for SecondMoment {
    fn name(&self) -> &'static str {
        "adamw-second-moment"
    }
    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<()> {
        let g = slice(gs, gl).ok_or_else(|| unsupported(self.name()))?;
        let v = slice_mut(dst, dst_l).ok_or_else(|| unsupported(self.name()))?;
        let (b, c, s) = (self.beta, 1.0 - self.beta, self.scale);
        for (v, g) in v.iter_mut().zip(g) {
            let g = s * g;
            *v = b * *v + c * g * g;
        }
        Ok(())
    }
}

/// `p <- p (1 - lr wd) - lr (m / bc1) / (sqrt(v / bc2) + eps)`.
pub(crate) struct Update {
    pub lr: f32,
    pub weight_decay: f32,
    pub bias_correction1: f32,
    pub bias_correction2: f32,
    pub eps: f32,
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }
    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        ms: &CpuStorage,
        ml: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<()> {
        let m = slice(ms, ml).ok_or_else(|| unsupported(self.name()))?;
        let v = slice(vs, vl).ok_or_else(|| unsupported(self.name()))?;
        let p = slice_mut(dst, dst_l).ok_or_else(|| unsupported(self.name()))?;
        let decay = 1.0 - self.lr * self.weight_decay;
        let step = self.lr / self.bias_correction1;
        let inv_bc2 = 1.0 / self.bias_correction2;
        for ((p, m), v) in p.iter_mut().zip(m).zip(v) {
            *p = *p * decay - step * m / ((v * inv_bc2).sqrt() + self.eps);
        }
        Ok(())
    }
}
