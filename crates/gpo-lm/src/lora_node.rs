//! A frozen linear layer with its LoRA adapter as one autograd node on the CPU:
//! `y = x W^T + s (x A^T) B^T` (Hu et al. 2021, eq. 3, with `s = alpha / r`).
//!
//! Written as tensor ops the adapter adds four nodes to the base product (`x A^T`, the
//! scale, `(.) B^T`, the sum), two of them as wide as the layer's output, and `x` gets one
//! gradient per node that reads it; candle's backward zero-fills a fresh tensor and adds
//! into it for each. Here the GEMMs accumulate the adapter's terms into the base product's
//! output, forward and backward, and `x` gets one gradient per layer:
//! `dx = g W + s (g B) A`, `dA = s (g B)^T x`, `dB = s g^T (x A^T)`.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::bf16_gemm::Bf16Weight;
use crate::fused::{f32_rows, storage_f32, xwt_cpu};
use crate::Result;

/// The frozen weight of the layer: f32, or packed for bf16 products.
#[derive(Clone)]
pub(crate) enum Frozen {
    F32(Tensor),
    Bf16(Arc<Bf16Weight>),
}

/// `x W^T + scale (x A^T) B^T` (`x`: `[.., in]` f32 on the CPU; `a`: `[r, in]`; `b`:
/// `[out, r]`). A node differentiating `x`, `a` and `b` when any of them is tracked.
pub(crate) fn lora_linear(
    x: &Tensor,
    w: Frozen,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
) -> Result<Tensor> {
    let x = x.contiguous()?;
    let (a, b) = (a.contiguous()?, b.contiguous()?);
    let op = LoraLinear { w, scale };
    Ok(if x.track_op() || a.track_op() || b.track_op() {
        x.apply_op3(&a, &b, op)?
    } else {
        x.apply_op3_no_bwd(&a, &b, &op)?
    })
}

struct LoraLinear {
    w: Frozen,
    scale: f64,
}

impl LoraLinear {
    /// `x W^T` on CPU storage.
    fn base(&self, sx: &CpuStorage, lx: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        match &self.w {
            Frozen::Bf16(p) => p.forward_cpu(sx, lx),
            Frozen::F32(w) => {
                let (storage, lw) = w.storage_and_layout();
                match &*storage {
                    candle_core::Storage::Cpu(sw) => xwt_cpu(sx, lx, sw, lw),
                    _ => candle_core::bail!("lora-linear runs on CPU tensors only"),
                }
            }
        }
    }

    /// `g W` (`g`: `[rows, out]` row-major), as a `[rows, in]` row-major Vec.
    fn base_input_grad(&self, g: &[f32], rows: usize) -> candle_core::Result<Vec<f32>> {
        match &self.w {
            Frozen::Bf16(p) => p.input_grad_rows(g, rows),
            Frozen::F32(w) => {
                let (out, inp) = w.dims2()?;
                let (storage, lw) = w.storage_and_layout();
                let w = storage_f32(&storage, lw)?;
                let mut dx = vec![0f32; rows * inp];
                let (g, w) = (Mat::rows(g, out), Mat::rows(w, inp));
                gemm_into(&mut dx, false, 1.0, (rows, inp, out), g, w);
                Ok(dx)
            }
        }
    }
}

impl CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sa: &CpuStorage,
        la: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, shape) = self.base(sx, lx)?;
        let (CpuStorage::F32(mut y), x, a, b) =
            (y, f32_rows(sx, lx)?, f32_rows(sa, la)?, f32_rows(sb, lb)?)
        else {
            candle_core::bail!("lora-linear computes in f32");
        };
        let (r, inp) = la.shape().dims2()?;
        let out = lb.shape().dims2()?.0;
        let rows = x.len() / inp.max(1);
        // h = s x A^T, then y += h B^T in place.
        let mut h = vec![0f32; rows * r];
        gemm_into(
            &mut h,
            false,
            self.scale as f32,
            (rows, r, inp),
            Mat::rows(x, inp),
            Mat::cols(a, inp),
        );
        gemm_into(
            &mut y,
            true,
            1.0,
            (rows, out, r),
            Mat::rows(&h, r),
            Mat::cols(b, r),
        );
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (r, inner) = a.dims2()?;
        let out = grad.dim(candle_core::D::Minus1)?;
        let rows = x.elem_count() / inner.max(1);
        let (dev, s) = (x.device(), self.scale as f32);
        let grad = grad.contiguous()?;
        let (gs, gl) = grad.storage_and_layout();
        let (xs, xl) = x.storage_and_layout();
        let (as_, al) = a.storage_and_layout();
        let (bs, bl) = b.storage_and_layout();
        let (g, xv) = (storage_f32(&gs, gl)?, storage_f32(&xs, xl)?);
        let (av, bv) = (storage_f32(&as_, al)?, storage_f32(&bs, bl)?);
        // s (g B): `[rows, r]`, shared by dx and dA.
        let mut gb = vec![0f32; rows * r];
        gemm_into(
            &mut gb,
            false,
            s,
            (rows, r, out),
            Mat::rows(g, out),
            Mat::rows(bv, r),
        );
        // dx = g W, then += (s g B) A in place; none for an untracked x (the first layer's
        // input in LoRA training), which would be a full GEMM thrown away.
        let dx = if x.track_op() {
            let mut dx = self.base_input_grad(g, rows)?;
            let (gb, a) = (Mat::rows(&gb, r), Mat::rows(av, inner));
            gemm_into(&mut dx, true, 1.0, (rows, inner, r), gb, a);
            Some(Tensor::from_vec(dx, x.shape(), dev)?)
        } else {
            None
        };
        // dA = (s g B)^T x.
        let da = if a.track_op() {
            let mut da = vec![0f32; r * inner];
            let (gbt, x) = (Mat::cols(&gb, r), Mat::rows(xv, inner));
            gemm_into(&mut da, false, 1.0, (r, inner, rows), gbt, x);
            Some(Tensor::from_vec(da, (r, inner), dev)?)
        } else {
            None
        };
        // dB = g^T (s x A^T).
        let db = if b.track_op() {
            let mut h = vec![0f32; rows * r];
            gemm_into(
                &mut h,
                false,
                s,
                (rows, r, inner),
                Mat::rows(xv, inner),
                Mat::cols(av, inner),
            );
            let mut db = vec![0f32; out * r];
            let (gt, h) = (Mat::cols(g, out), Mat::rows(&h, r));
            gemm_into(&mut db, false, 1.0, (out, r, rows), gt, h);
            Some(Tensor::from_vec(db, (out, r), dev)?)
        } else {
            None
        };
        Ok((dx, da, db))
    }
}

/// A row-major matrix read as a GEMM operand, possibly transposed.
struct Mat<'a> {
    data: &'a [f32],
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `width` columns, as is.
    fn rows(data: &'a [f32], width: usize) -> Self {
        Mat {
            data,
            row_stride: width as isize,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `width` columns.
    fn cols(data: &'a [f32], width: usize) -> Self {
        Mat {
            data,
            row_stride: 1,
            col_stride: width as isize,
        }
    }
}

/// `dst (+)= beta lhs rhs` for `dst`: `[m, n]` row-major, `lhs`: `[m, k]`, `rhs`: `[k, n]`.
fn gemm_into(
    dst: &mut [f32],
    accumulate: bool,
    beta: f32,
    (m, n, k): (usize, usize, usize),
    lhs: Mat<'_>,
    rhs: Mat<'_>,
) {
    assert!(
        dst.len() == m * n,
        "gemm_into: destination is not {m} x {n}"
    );
    let last = |mat: &Mat<'_>, r: usize, c: usize| {
        (r.max(1) - 1) * mat.row_stride.unsigned_abs()
            + (c.max(1) - 1) * mat.col_stride.unsigned_abs()
    };
    assert!(
        m * k == 0 || last(&lhs, m, k) < lhs.data.len(),
        "gemm_into: left operand is not {m} x {k}"
    );
    assert!(
        k * n == 0 || last(&rhs, k, n) < rhs.data.len(),
        "gemm_into: right operand is not {k} x {n}"
    );
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the strides reach inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride,
            lhs.row_stride,
            rhs.data.as_ptr(),
            rhs.col_stride,
            rhs.row_stride,
            if accumulate { 1.0 } else { 0.0 },
            beta,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;
    use crate::test_util::max_diff;

    /// Reference: the same layer as candle tensor ops, differentiated by candle.
    #[test]
    fn the_node_matches_tensor_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let (rows, inp, out, r, s) = (2 * 7, 24, 40, 4, 2.0);
        let x = Var::randn(0f32, 1.0, (2, 7, inp), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (out, inp), &dev).unwrap();
        let a = Var::randn(0f32, 1.0, (r, inp), &dev).unwrap();
        let b = Var::randn(0f32, 1.0, (out, r), &dev).unwrap();
        let up = Tensor::randn(0f32, 1.0, (2, 7, out), &dev).unwrap();
        let plain = {
            let x2 = x.as_tensor().reshape((rows, inp)).unwrap();
            let base = x2.matmul(&w.t().unwrap()).unwrap();
            let h = x2.matmul(&a.as_tensor().t().unwrap()).unwrap();
            let d = (h.matmul(&b.as_tensor().t().unwrap()).unwrap() * s).unwrap();
            (base + d).unwrap().reshape((2, 7, out)).unwrap()
        };
        let node = lora_linear(
            x.as_tensor(),
            Frozen::F32(w.clone()),
            a.as_tensor(),
            b.as_tensor(),
            s,
        )
        .unwrap();
        assert!(max_diff(&plain, &node) < 1e-4);
        let gp = (&plain * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gn = (&node * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [x.as_tensor(), a.as_tensor(), b.as_tensor()] {
            let (p, n) = (gp.get(v).unwrap(), gn.get(v).unwrap());
            assert_eq!(p.dims(), n.dims());
            assert!(max_diff(p, n) < 1e-3, "gradient of {:?} differs", v.dims());
        }
        assert!(gn.get(&w).is_none());
    }

    /// With a bf16-packed weight the base product and its input gradient are those of the
    /// bf16-rounded operands (f32 sums); the adapter's terms stay f32.
    #[test]
    fn the_node_with_a_packed_weight_rounds_only_the_base_product() {
        if !crate::bf16_kernel::has_avx512_bf16() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        let dev = Device::Cpu;
        let (rows, inp, out, r, s) = (9, 40, 70, 4, 2.0);
        let round = crate::test_util::bf16_rounded;
        let x = Var::randn(0f32, 1.0, (rows, inp), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (out, inp), &dev).unwrap();
        let a = Var::randn(0f32, 1.0, (r, inp), &dev).unwrap();
        let b = Var::randn(0f32, 1.0, (out, r), &dev).unwrap();
        let g = Tensor::randn(0f32, 1.0, (rows, out), &dev).unwrap();
        let packed = crate::bf16_gemm::Bf16Weight::new(&w).unwrap();
        let node = lora_linear(
            x.as_tensor(),
            Frozen::Bf16(packed),
            a.as_tensor(),
            b.as_tensor(),
            s,
        )
        .unwrap();
        let (xt, at, bt) = (x.as_tensor(), a.as_tensor(), b.as_tensor());
        let adapter = (xt
            .matmul(&at.t().unwrap())
            .unwrap()
            .matmul(&bt.t().unwrap())
            .unwrap()
            * s)
            .unwrap();
        let want = (round(xt).matmul(&round(&w).t().unwrap()).unwrap() + adapter).unwrap();
        assert!(max_diff(&node, &want) < 1e-3);
        let grads = (&node * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (g.matmul(bt).unwrap() * s).unwrap();
        let dx = (round(&g).matmul(&round(&w)).unwrap() + gb.matmul(at).unwrap()).unwrap();
        assert!(max_diff(grads.get(xt).unwrap(), &dx) < 1e-3);
        let da = gb.t().unwrap().matmul(xt).unwrap();
        assert!(max_diff(grads.get(at).unwrap(), &da) < 1e-3);
    }
}
