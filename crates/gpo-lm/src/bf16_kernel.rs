//! The AVX512-BF16 micro-kernel behind [`crate::bf16_gemm`]: a tile of up to [`MR`] x [`NR`]
//! f32 outputs accumulated with `vdpbf16ps`, which multiplies pairs of bf16 values and adds
//! both products to one f32 lane: twice the multiply-adds of an f32 FMA per instruction.
//!
//! Operands are pairs of bf16 values along the shared dimension k, packed in a `u32` (low
//! half: even k, high half: odd k), the layout `vdpbf16ps` reads. `A` is row-major pairs (a
//! row's pair p at `a[row * lda + p]`), broadcast one pair at a time; `B` is a panel of
//! [`NR`] columns, pair p of column c at `b[p * NR + c]`.

/// Most rows of one tile: 2 x 12 = 24 of the 32 vector registers accumulate.
pub(crate) const MR: usize = 12;

/// Columns of one tile and of one packed `B` panel: two 16-lane registers.
pub(crate) const NR: usize = 32;

/// Whether this CPU has AVX512-BF16 (`vdpbf16ps`), which the bf16 GEMMs need.
pub fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` rounded to bf16 (to nearest, ties to even, as `vcvtne2ps2bf16` does), as bits.
pub(crate) fn bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// A pair of values packed for `vdpbf16ps`.
pub(crate) fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16_bits(lo)) | (u32::from(bf16_bits(hi)) << 16)
}

/// One row of f32 values as bf16 pairs: `dst[p] = pair(src[2p], src[2p + 1])`, a missing odd
/// last value read as zero. `dst.len()` is `src.len().div_ceil(2)`.
pub(crate) fn row_to_pairs(src: &[f32], dst: &mut [u32]) {
    debug_assert_eq!(dst.len(), src.len().div_ceil(2));
    #[cfg(target_arch = "x86_64")]
    if has_avx512_bf16() {
        // SAFETY: the CPU has AVX-512F and AVX512-BF16 (checked above).
        unsafe { row_to_pairs_avx512(src, dst) };
        return;
    }
    row_to_pairs_scalar(src, dst);
}

fn row_to_pairs_scalar(src: &[f32], dst: &mut [u32]) {
    for (p, d) in dst.iter_mut().enumerate() {
        let hi = src.get(2 * p + 1).copied().unwrap_or(0.0);
        *d = pair(src[2 * p], hi);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn row_to_pairs_avx512(src: &[f32], dst: &mut [u32]) {
    use std::arch::x86_64::*;
    let full = src.len() / 32;
    for i in 0..full {
        // SAFETY: 32 floats from 32 * i are in `src`; 16 pairs from 16 * i are in `dst`.
        unsafe {
            let lo = _mm512_loadu_ps(src.as_ptr().add(32 * i));
            let hi = _mm512_loadu_ps(src.as_ptr().add(32 * i + 16));
            // Lanes 0-15 from the second argument, 16-31 from the first: src order.
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(dst.as_mut_ptr().add(16 * i).cast(), v);
        }
    }
    row_to_pairs_scalar(&src[32 * full..], &mut dst[16 * full..]);
}

/// `c[r * ldc + j] (+)= sum_p a[r * lda + p] . b[p * NR + j]` for `r < rows`, `j < NR`,
/// `p < kp`, where `.` is the two-term bf16 dot product of a pair. `accumulate`: add to `c`
/// instead of overwriting it.
///
/// # Safety
/// The CPU has AVX512-BF16 ([`has_avx512_bf16`]); `1 <= rows <= MR`; `a` holds `rows` rows
/// of `kp` pairs at stride `lda`; `b` holds `kp * NR` pairs; `c` holds `rows` rows of `NR`
/// floats at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile(
    rows: usize,
    kp: usize,
    a: *const u32,
    lda: usize,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller; each arm's row count is `rows`.
    unsafe {
        macro_rules! call {
            ($($r:literal)*) => {
                match rows {
                    $($r => tile_rows::<$r>(kp, a, lda, b, c, ldc, accumulate),)*
                    _ => unreachable!("a tile has 1 to {MR} rows, got {rows}"),
                }
            };
        }
        call!(1 2 3 4 5 6 7 8 9 10 11 12)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_rows<const R: usize>(
    kp: usize,
    a: *const u32,
    lda: usize,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY: bounds as documented on `tile`; `__m512i` and `__m512bh` are both 64 bytes.
    unsafe {
        let mut lo = [_mm512_setzero_ps(); R];
        let mut hi = [_mm512_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                lo[r] = _mm512_loadu_ps(c.add(r * ldc));
                hi[r] = _mm512_loadu_ps(c.add(r * ldc + 16));
            }
        }
        for p in 0..kp {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16).cast()));
            for r in 0..R {
                let av: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * lda + p) as i32));
                lo[r] = _mm512_dpbf16_ps(lo[r], av, b0);
                hi[r] = _mm512_dpbf16_ps(hi[r], av, b1);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(c.add(r * ldc), lo[r]);
            _mm512_storeu_ps(c.add(r * ldc + 16), hi[r]);
        }
    }
}

/// The same tile in portable code: the reference the tests hold the kernel to.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile_reference(
    rows: usize,
    kp: usize,
    a: &[u32],
    lda: usize,
    b: &[u32],
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let f = |bits: u32| f32::from_bits(bits << 16);
    for r in 0..rows {
        for j in 0..NR {
            let mut s = if accumulate { c[r * ldc + j] } else { 0.0 };
            for p in 0..kp {
                let (x, y) = (a[r * lda + p], b[p * NR + j]);
                s += f(x & 0xFFFF) * f(y & 0xFFFF) + f(x >> 16) * f(y >> 16);
            }
            c[r * ldc + j] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values exact in bf16 (k/8 for small k), so every product and partial sum is exact in
    /// f32 and the kernel must match the reference bit for bit whatever its summation order.
    fn exact(n: usize, seed: usize) -> Vec<u32> {
        (0..n)
            .map(|i| {
                let v = |j: usize| ((j * 7 + seed * 13) % 17) as f32 / 8.0 - 1.0;
                pair(v(2 * i), v(2 * i + 1))
            })
            .collect()
    }

    #[test]
    fn pairs_round_to_nearest_even_and_pad_odd_rows() {
        let src = [1.0f32, -2.5, 3.0];
        let mut dst = [0u32; 2];
        row_to_pairs(&src, &mut dst);
        assert_eq!(dst, [pair(1.0, -2.5), pair(3.0, 0.0)]);
        // 1 + 2^-8 is halfway between bf16's 1 and 1 + 2^-7: ties go to the even 1.
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), bf16_bits(1.0));
        // 64 values cover the vector path (two blocks of 32) and a scalar tail of 5.
        let src: Vec<f32> = (0..69).map(|i| (i as f32).sin() * 3.7).collect();
        let mut fast = vec![0u32; 35];
        let mut slow = vec![0u32; 35];
        row_to_pairs(&src, &mut fast);
        row_to_pairs_scalar(&src, &mut slow);
        assert_eq!(fast, slow);
    }

    #[test]
    fn the_avx512_bf16_tile_matches_the_reference_for_every_row_count() {
        if !has_avx512_bf16() {
            eprintln!("skipped: this CPU has no AVX512-BF16, so the bf16 tile cannot run");
            return;
        }
        let (kp, lda, ldc) = (37, 40, 35);
        let a = exact(MR * lda, 1);
        let b = exact(kp * NR, 2);
        for rows in 1..=MR {
            for accumulate in [false, true] {
                let mut want: Vec<f32> = (0..rows * ldc).map(|i| i as f32 / 4.0).collect();
                let mut got = want.clone();
                tile_reference(rows, kp, &a, lda, &b, &mut want, ldc, accumulate);
                // SAFETY: the CPU has AVX512-BF16; the buffers hold what `tile` reads.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    tile(
                        rows,
                        kp,
                        a.as_ptr(),
                        lda,
                        b.as_ptr(),
                        got.as_mut_ptr(),
                        ldc,
                        accumulate,
                    )
                };
                assert_eq!(got, want, "rows {rows}, accumulate {accumulate}");
            }
        }
    }
}
