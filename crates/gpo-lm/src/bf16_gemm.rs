//! bf16 matrix products on the CPU, PyTorch autocast's split: a frozen linear weight is
//! multiplied in bf16 (rounded once, packed for [`crate::bf16_kernel`]), activations are
//! rounded to bf16 as they enter the product, and the sums, the outputs and everything
//! outside the products stay f32.
//!
//! A [`Bf16Weight`] holds the weight `W` (`[out, in]`) packed as the `B` operand of the
//! forward `y = x W^T` and, built at the first backward, of `dx = g W`. Both are the size of a
//! bf16 copy of `W`; the f32 weight stays the master copy (saving, merging, full training).

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, TensorId};
use rayon::prelude::*;

use crate::bf16_kernel::{pair, row_to_pairs, MR, NR};
use crate::Result;

/// Pairs along k per cache block: one `B` panel block is `KC * NR * 4` = 32 KiB (L1).
const KC: usize = 256;

/// Rows of `A` per parallel job (eight tiles), so a `B` panel block is reused eight times.
const MC: usize = 8 * MR;

/// A `[k, n]` matrix packed as `B` operand: `n / NR` panels (zero-padded), each `kp = k / 2`
/// pairs of [`NR`] columns.
struct PackedB {
    k: usize,
    n: usize,
    kp: usize,
    data: Vec<u32>,
}

impl PackedB {
    /// Packs `B[kk][j] = get(kk, j)` for `kk < k`, `j < n`.
    fn new(k: usize, n: usize, get: impl Fn(usize, usize) -> f32 + Sync) -> PackedB {
        let kp = k.div_ceil(2);
        let mut data = vec![0u32; n.div_ceil(NR) * kp * NR];
        if data.is_empty() {
            return PackedB { k, n, kp, data };
        }
        data.par_chunks_mut(kp * NR)
            .enumerate()
            .for_each(|(panel, dst)| {
                for c in 0..NR.min(n - panel * NR) {
                    let j = panel * NR + c;
                    for p in 0..kp {
                        let hi = if 2 * p + 1 < k {
                            get(2 * p + 1, j)
                        } else {
                            0.0
                        };
                        dst[p * NR + c] = pair(get(2 * p, j), hi);
                    }
                }
            });
        PackedB { k, n, kp, data }
    }
}

/// A frozen `[out, in]` weight packed for bf16 products; see the module docs.
pub(crate) struct Bf16Weight {
    /// The f32 tensor it was packed from: a replaced weight (merged adapters) no longer
    /// matches, and its products go back to f32 rather than use stale values.
    source: TensorId,
    weight: Tensor,
    forward: PackedB,
    backward: OnceLock<std::result::Result<PackedB, String>>,
}

impl std::fmt::Debug for Bf16Weight {
    /// The shape only: the packs are as large as the weight.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (k, n) = (self.forward.k, self.forward.n);
        write!(f, "Bf16Weight([{n}, {k}])")
    }
}

impl Bf16Weight {
    /// Packs `weight` (`[out, in]`, f32, on the CPU) for `x W^T`.
    pub(crate) fn new(weight: &Tensor) -> Result<Arc<Bf16Weight>> {
        let (out, inp) = weight.dims2()?;
        let w = weight.to_dtype(candle_core::DType::F32)?.flatten_all()?;
        let w = w.to_vec1::<f32>()?;
        // x W^T = x B with B[i][o] = W[o][i].
        let forward = PackedB::new(inp, out, |i, o| w[o * inp + i]);
        Ok(Arc::new(Bf16Weight {
            source: weight.id(),
            weight: weight.detach(),
            forward,
            backward: OnceLock::new(),
        }))
    }

    /// Whether this pack stands for `weight`: made from that tensor, which is frozen (a
    /// variable's values change in place, under the same id).
    pub(crate) fn packs(&self, weight: &Tensor) -> bool {
        self.source == weight.id() && frozen(weight)
    }

    /// `x W^T` on CPU storage (`x`: contiguous f32 `[.., in]`), no graph node.
    pub(crate) fn forward_cpu(
        &self,
        s: &CpuStorage,
        l: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        product(s, l, &self.forward)
    }

    /// `g W` (`g`: `[.., out]` f32 on the CPU), no graph node: the input gradient of `x W^T`.
    pub(crate) fn input_grad(&self, g: &Tensor) -> candle_core::Result<Tensor> {
        g.contiguous()?
            .apply_op1_no_bwd(&WithPacked(self.backward()?))
    }

    /// `g W` for `g`: `[rows, out]` row-major f32; the result is `[rows, in]` row-major.
    pub(crate) fn input_grad_rows(&self, g: &[f32], rows: usize) -> candle_core::Result<Vec<f32>> {
        let packed = self.backward()?;
        if g.len() != rows * packed.k {
            candle_core::bail!("bf16 product: gradient is not {rows} x {}", packed.k);
        }
        Ok(gemm(g, rows, packed.k, packed))
    }

    /// `g W` needs `B = W` (`[out, in]`): packed on first use, from the f32 weight.
    fn backward(&self) -> candle_core::Result<&PackedB> {
        let packed = self.backward.get_or_init(|| {
            let (out, inp) = self.weight.dims2().map_err(|e| e.to_string())?;
            let w = self.weight.to_dtype(candle_core::DType::F32);
            let w = w.and_then(|w| w.flatten_all()).map_err(|e| e.to_string())?;
            let w = w.to_vec1::<f32>().map_err(|e| e.to_string())?;
            Ok(PackedB::new(out, inp, |o, i| w[o * inp + i]))
        });
        packed.as_ref().map_err(candle_core::Error::msg)
    }
}

/// Whether `t` is a frozen tensor: neither a variable nor the result of tracked ops. Only
/// those are packed.
pub(crate) fn frozen(t: &Tensor) -> bool {
    !t.is_variable() && !t.track_op()
}

/// `x W^T` with `W` in bf16 (`x`: `[.., in]` f32 on the CPU). A graph node whose backward is
/// `dx = g W` in bf16 when `x` is tracked; a plain product otherwise.
pub(crate) fn matmul_t_bf16(x: &Tensor, w: &Arc<Bf16Weight>) -> Result<Tensor> {
    let x = x.contiguous()?;
    let op = Bf16MatmulT { w: Arc::clone(w) };
    Ok(if x.track_op() {
        x.apply_op1(op)?
    } else {
        x.apply_op1_no_bwd(&op)?
    })
}

struct Bf16MatmulT {
    w: Arc<Bf16Weight>,
}

impl CustomOp1 for Bf16MatmulT {
    fn name(&self) -> &'static str {
        "bf16-matmul-t"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        product(s, l, &self.w.forward)
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.w.input_grad(g)?.reshape(x.shape())?))
    }
}

/// `g B` for the backward pass, as a forward-only op over `g`'s storage.
struct WithPacked<'a>(&'a PackedB);

impl CustomOp1 for WithPacked<'_> {
    fn name(&self) -> &'static str {
        "bf16-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        product(s, l, self.0)
    }
}

/// `x B` for a contiguous f32 `x` of shape `[.., k]`; the result is `[.., n]`.
fn product(s: &CpuStorage, l: &Layout, b: &PackedB) -> candle_core::Result<(CpuStorage, Shape)> {
    let x = crate::fused::f32_rows(s, l)?;
    let dims = l.dims();
    let k = *dims.last().unwrap_or(&0);
    if k.div_ceil(2) != b.kp {
        candle_core::bail!(
            "bf16 product: input has {k} features, the weight {}",
            2 * b.kp
        );
    }
    let rows = x.len() / k.max(1);
    let y = gemm(x, rows, k, b);
    let mut shape = dims.to_vec();
    *shape.last_mut().expect("rank >= 1") = b.n;
    Ok((CpuStorage::F32(y), Shape::from(shape)))
}

/// A raw output pointer shared by the parallel jobs, which write disjoint tiles.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every job writes a distinct set of tiles of the output (see `gemm`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `x B`, `x`: `[m, k]` row-major f32, result `[m, n]` row-major. Jobs are blocks of [`MC`]
/// rows by groups of panels, enough to keep every thread busy even for one decoding step.
fn gemm(x: &[f32], m: usize, k: usize, b: &PackedB) -> Vec<f32> {
    let kp = b.kp;
    if kp == 0 || m == 0 {
        return vec![0.0; m * b.n];
    }
    let mut a = vec![0u32; m * kp];
    a.par_chunks_mut(kp.max(1))
        .zip(x.par_chunks(k.max(1)))
        .for_each(|(dst, src)| row_to_pairs(src, dst));
    let n = b.n;
    // Not zero-filled: the first block of k of every tile overwrites its outputs.
    let mut y: Vec<f32> = Vec::with_capacity(m * n);
    let panels = n.div_ceil(NR);
    let row_blocks = m.div_ceil(MC);
    let threads = rayon::current_num_threads().max(1);
    // At least four jobs per thread when the rows alone do not give them.
    let groups = (4 * threads).div_ceil(row_blocks).clamp(1, panels.max(1));
    let per_group = panels.div_ceil(groups);
    let out = Out(y.as_mut_ptr());
    (0..row_blocks * groups).into_par_iter().for_each(|job| {
        let (rb, g) = (job / groups, job % groups);
        let rows = rb * MC..(rb * MC + MC).min(m);
        let cols = g * per_group..((g + 1) * per_group).min(panels);
        block(&a, kp, rows, cols, b, out, n);
    });
    // SAFETY: the jobs wrote every output (all row blocks x all panels, each tile at the
    // first block of k without reading it; kp > 0, so that block exists).
    unsafe { y.set_len(m * n) };
    y
}

/// The tiles of rows `rows` and panels `cols`, over k in blocks of [`KC`] pairs.
fn block(
    a: &[u32],
    kp: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    b: &PackedB,
    out: Out,
    n: usize,
) {
    let mut scratch = [0f32; MR * NR];
    for p0 in (0..kp).step_by(KC) {
        let kc = KC.min(kp - p0);
        for panel in cols.clone() {
            let bp = &b.data[panel * kp * NR + p0 * NR..];
            let width = NR.min(n - panel * NR);
            for r0 in rows.clone().step_by(MR) {
                let h = MR.min(rows.end - r0);
                let ap = &a[r0 * kp + p0..];
                // SAFETY: this job owns rows `rows` x panels `cols` of the output; a full
                // tile is written in place, a partial one through `scratch`.
                unsafe {
                    let c = out.0.add(r0 * n + panel * NR);
                    if width == NR {
                        tile(h, kc, ap, kp, bp, c, n, p0 > 0);
                    } else {
                        if p0 > 0 {
                            for r in 0..h {
                                for j in 0..width {
                                    scratch[r * NR + j] = *c.add(r * n + j);
                                }
                            }
                        }
                        tile(h, kc, ap, kp, bp, scratch.as_mut_ptr(), NR, p0 > 0);
                        for r in 0..h {
                            for j in 0..width {
                                *c.add(r * n + j) = scratch[r * NR + j];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One tile through the AVX512-BF16 kernel. Packed weights are only made on CPUs that have
/// it ([`crate::bf16_kernel::has_avx512_bf16`]), which is checked again here.
///
/// # Safety
/// As [`crate::bf16_kernel::tile`], minus the CPU requirement.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    rows: usize,
    kp: usize,
    a: &[u32],
    lda: usize,
    b: &[u32],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::bf16_kernel::has_avx512_bf16() {
        // SAFETY: the CPU has AVX512-BF16; bounds are the caller's.
        unsafe {
            crate::bf16_kernel::tile(rows, kp, a.as_ptr(), lda, b.as_ptr(), c, ldc, accumulate)
        };
        return;
    }
    let _ = (rows, kp, a, lda, b, c, ldc, accumulate);
    unreachable!("bf16 weights are packed only on CPUs with AVX512-BF16");
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;
    use crate::test_util::{bf16_rounded as rounded, max_diff};

    /// Reference: the f32 product of the bf16-rounded operands (what the kernel computes,
    /// up to summation order: within 1e-4 relative for these sizes).
    #[test]
    fn products_match_f32_products_of_the_rounded_operands() {
        if !crate::bf16_kernel::has_avx512_bf16() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        let dev = Device::Cpu;
        // Shapes with partial tiles, a partial panel, an odd k and k past one KC block.
        // (13, 600, 45): a partial panel read back through the scratch tile at the second
        // block of k.
        for (m, k, n) in [
            (1, 5, 3),
            (13, 77, 45),
            (13, 600, 45),
            (100, 600, 64),
            (8, 576, 1536),
        ] {
            let x = Var::randn(0f32, 1.0, (m, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
            let packed = Bf16Weight::new(&w).unwrap();
            let y = matmul_t_bf16(x.as_tensor(), &packed).unwrap();
            let want = rounded(x.as_tensor())
                .matmul(&rounded(&w).t().unwrap())
                .unwrap();
            let scale = (k as f32).sqrt();
            assert!(max_diff(&y, &want) < 1e-4 * scale, "{m}x{k}x{n} forward");
            let g = Tensor::randn(0f32, 1.0, (m, n), &dev).unwrap();
            let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let dx = grads.get(x.as_tensor()).unwrap();
            let want = rounded(&g).matmul(&rounded(&w)).unwrap();
            let scale = (n as f32).sqrt();
            assert!(max_diff(dx, &want) < 1e-4 * scale, "{m}x{k}x{n} backward");
        }
    }

    #[test]
    fn empty_inputs_and_mismatched_widths() {
        let w = Tensor::ones((4, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
        let packed = Bf16Weight::new(&w).unwrap();
        let none = Tensor::zeros((0, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(matmul_t_bf16(&none, &packed).unwrap().dims(), &[0, 4]);
        let wide = Tensor::zeros((2, 7), candle_core::DType::F32, &Device::Cpu).unwrap();
        let e = matmul_t_bf16(&wide, &packed).unwrap_err().to_string();
        assert!(e.contains("input has 7 features, the weight 6"), "{e}");
    }

    #[test]
    fn a_replaced_weight_is_not_the_packed_one() {
        let w = Tensor::ones((4, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
        let packed = Bf16Weight::new(&w).unwrap();
        assert!(packed.packs(&w));
        assert!(!packed.packs(&(&w + 1.0).unwrap()));
    }
}
