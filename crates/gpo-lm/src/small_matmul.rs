//! `x W^T` for a handful of rows (decoding), register-tiled for AVX2 + FMA.
//!
//! Decoding is bound by streaming the weights from memory: each weight is used by only n <= 16
//! rows. candle's GEMM handles `[out, in] x [in, n]` with n = 8 at ~65 GFLOP/s on the
//! project's CPU. Here one weight row is read once for up to 8 input rows, whose partial sums
//! stay in eight 8-lane registers; output rows are split across threads in large chunks. On
//! the project's 2-core CPU this streams ~22 GB/s of weights against ~24.6 GB/s for a plain
//! read of memory (an earlier 2 weight rows x 4 input rows tile reached ~15 GB/s: two passes
//! over x per row pair and twice the loads per FMA).

use rayon::prelude::*;

/// Most input rows the kernel takes.
pub(crate) const MAX_ROWS: usize = 16;

/// Output rows per parallel job.
const CHUNK: usize = 128;

/// `y[r, o] = sum_k x[r, k] w[o, k]`; `x`: `[n, k]`, `w`: `[out, k]`, row-major.
pub(crate) fn small_matmul_t(x: &[f32], n: usize, w: &[f32], out: usize, k: usize) -> Vec<f32> {
    small_matmul_group_t(x, n, &[(w, out)], k)
        .pop()
        .expect("one weight gives one result")
}

/// [`small_matmul_t`] for several weights that share the input `x` (q/k/v, gate/up), in one
/// parallel dispatch: the threads are woken once instead of once per weight. `ws` holds each
/// weight (`[out, k]`, row-major) and its `out`; returns one `[n, out]` result per weight.
/// Each weight's output rows are cut into jobs of [`CHUNK`] rows.
pub(crate) fn small_matmul_group_t(
    x: &[f32],
    n: usize,
    ws: &[(&[f32], usize)],
    k: usize,
) -> Vec<Vec<f32>> {
    debug_assert!(n <= MAX_ROWS && x.len() == n * k);
    let mut yts: Vec<Vec<f32>> = ws.iter().map(|&(_, out)| vec![0f32; out * n]).collect();
    let mut jobs: Vec<(&[f32], &mut [f32])> = Vec::new();
    for (&(w, out), yt) in ws.iter().zip(yts.iter_mut()) {
        debug_assert_eq!(w.len(), out * k);
        for (c, dst) in yt.chunks_mut(CHUNK * n).enumerate() {
            let lo = c * CHUNK;
            let rows = dst.len() / n;
            jobs.push((&w[lo * k..(lo + rows) * k], dst));
        }
    }
    jobs.into_par_iter().for_each(|(w, dst)| {
        let rows = dst.len() / n;
        kernel(x, n, w, rows, k, dst);
    });
    ws.iter()
        .zip(yts)
        .map(|(&(_, out), yt)| transpose(&yt, out, n))
        .collect()
}

/// `[out, n]` -> `[n, out]`.
fn transpose(yt: &[f32], out: usize, n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n * out];
    for o in 0..out {
        for r in 0..n {
            y[r * out + o] = yt[o * n + r];
        }
    }
    y
}

/// Whether the CPU runs [`kernel_avx2`] (x86-64 with AVX2 and FMA).
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn kernel(x: &[f32], n: usize, w: &[f32], rows: usize, k: usize, dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if k.is_multiple_of(8) && has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA, and every load stays inside `x` and `w` (k is
            // a multiple of 8, rows and n bound the indices).
            unsafe { kernel_avx2(x, n, w, rows, k, dst) };
            return;
        }
    }
    for o in 0..rows {
        for r in 0..n {
            dst[o * n + r] = x[r * k..(r + 1) * k]
                .iter()
                .zip(&w[o * k..(o + 1) * k])
                .map(|(a, b)| a * b)
                .sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(x: &[f32], n: usize, w: &[f32], rows: usize, k: usize, dst: &mut [f32]) {
    let xp = x.as_ptr();
    let wp = w.as_ptr();
    let dp = dst.as_mut_ptr();
    for o in 0..rows {
        let wo = wp.add(o * k);
        let out = dp.add(o * n);
        // Up to 8 input rows per pass over the weight row: one weight load feeds 8 FMAs from
        // 8 accumulators. A second pass (n > 8) finds the row in L1.
        let mut r = 0;
        while r < n {
            let (xr, dr) = (xp.add(r * k), out.add(r));
            let m = (n - r).min(8);
            match m {
                8 => dots::<8>(wo, xr, k, dr),
                7 => dots::<7>(wo, xr, k, dr),
                6 => dots::<6>(wo, xr, k, dr),
                5 => dots::<5>(wo, xr, k, dr),
                4 => dots::<4>(wo, xr, k, dr),
                3 => dots::<3>(wo, xr, k, dr),
                2 => dots::<2>(wo, xr, k, dr),
                _ => dots::<1>(wo, xr, k, dr),
            }
            r += m;
        }
    }
}

/// `out[j] = w . x[j]` for `R` input rows `x[j] = x + j * k`, each a k-vector (k % 8 == 0).
/// Inlined into [`kernel_avx2`], which enables AVX2 and FMA for it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dots<const R: usize>(w: *const f32, x: *const f32, k: usize, out: *mut f32) {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); R];
    let mut kk = 0;
    while kk < k {
        let a = _mm256_loadu_ps(w.add(kk));
        for (j, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(a, _mm256_loadu_ps(x.add(j * k + kk)), *acc);
        }
        kk += 8;
    }
    for (j, acc) in acc.iter().enumerate() {
        let lo = _mm256_castps256_ps128(*acc);
        let hi = _mm256_extractf128_ps(*acc, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_hadd_ps(s, s);
        let s = _mm_hadd_ps(s, s);
        *out.add(j) = _mm_cvtss_f32(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_equals_its_products_one_by_one() {
        let k = 64;
        let outs = [300, 37, 2];
        let ws: Vec<Vec<f32>> = outs
            .iter()
            .enumerate()
            .map(|(m, &out)| {
                (0..out * k)
                    .map(|i| (((i + m * 7) * 37 % 101) as f32 - 50.0) / 50.0)
                    .collect()
            })
            .collect();
        for n in [1, 5, 8] {
            let x: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0)
                .collect();
            let group: Vec<(&[f32], usize)> = ws
                .iter()
                .zip(outs)
                .map(|(w, o)| (w.as_slice(), o))
                .collect();
            let got = small_matmul_group_t(&x, n, &group, k);
            for ((w, out), y) in ws.iter().zip(outs).zip(&got) {
                // Each product's arithmetic is the same alone or grouped: bit-identical.
                assert_eq!(y, &small_matmul_t(&x, n, w, out, k), "n={n} out={out}");
            }
        }
    }

    #[test]
    fn matches_a_naive_product_for_every_row_count() {
        let (out, k) = (37, 64);
        let w: Vec<f32> = (0..out * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        for n in 1..=MAX_ROWS {
            let x: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0)
                .collect();
            let y = small_matmul_t(&x, n, &w, out, k);
            for r in 0..n {
                for o in 0..out {
                    let want: f32 = (0..k).map(|i| x[r * k + i] * w[o * k + i]).sum();
                    assert!(
                        (y[r * out + o] - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "n={n} r={r} o={o}"
                    );
                }
            }
        }
    }
}
