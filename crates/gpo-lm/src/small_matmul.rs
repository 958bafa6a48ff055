//! `x W^T` for a handful of rows (decoding), register-tiled for AVX2 + FMA.
//!
//! candle's GEMM handles `[out, in] x [in, n]` with n = 8 at ~65 GFLOP/s on the project's CPU
//! against ~170 for large products. Here each tile keeps 2 output rows x 4 input rows of
//! partial sums in eight 8-lane registers while streaming the weight rows once per 4 input
//! rows, and output rows are split across threads in large chunks.

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

fn kernel(x: &[f32], n: usize, w: &[f32], rows: usize, k: usize, dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if k % 8 == 0 && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
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
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_hadd_ps(s, s);
        let s = _mm_hadd_ps(s, s);
        _mm_cvtss_f32(s)
    }

    let xp = x.as_ptr();
    let wp = w.as_ptr();
    let mut o = 0;
    while o < rows {
        let two = o + 1 < rows;
        let w0 = wp.add(o * k);
        let w1 = if two { wp.add((o + 1) * k) } else { w0 };
        let mut r = 0;
        while r < n {
            let m = (n - r).min(4);
            let mut acc = [[_mm256_setzero_ps(); 4]; 2];
            let xr = [
                xp.add(r * k),
                xp.add((r + 1).min(n - 1) * k),
                xp.add((r + 2).min(n - 1) * k),
                xp.add((r + 3).min(n - 1) * k),
            ];
            let mut kk = 0;
            while kk < k {
                let a = _mm256_loadu_ps(w0.add(kk));
                let b = _mm256_loadu_ps(w1.add(kk));
                for j in 0..4 {
                    let xv = _mm256_loadu_ps(xr[j].add(kk));
                    acc[0][j] = _mm256_fmadd_ps(a, xv, acc[0][j]);
                    acc[1][j] = _mm256_fmadd_ps(b, xv, acc[1][j]);
                }
                kk += 8;
            }
            for j in 0..m {
                dst[o * n + r + j] = hsum(acc[0][j]);
                if two {
                    dst[(o + 1) * n + r + j] = hsum(acc[1][j]);
                }
            }
            r += 4;
        }
        o += 2;
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
