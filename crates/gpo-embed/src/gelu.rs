//! GELU in its exact form, `x/2 (1 + erf(x/sqrt 2))` (BERT's activation), with a fast erf.
//!
//! candle's `gelu_erf` calls libm's `erff` element by element on one thread: a quarter of the
//! time of embedding a batch of short texts. Here erf is Abramowitz & Stegun 7.1.26 (a
//! rational-polynomial form with one `exp`, absolute error below 1.5e-7), applied over
//! chunks in parallel.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

/// erf(x), Abramowitz & Stegun 7.1.26: `1 - (a1 t + ... + a5 t^5) exp(-x^2)` with
/// `t = 1 / (1 + p |x|)`, odd in x. Absolute error < 1.5e-7.
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * (-a * a).exp();
    y.copysign(x)
}

fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU (erf form) of `xs`. f32 tensors on the CPU take the fast path; anything else
/// falls back to candle's `gelu_erf`. Inference only: the result has no gradient.
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return xs.gelu_erf();
    }
    let mut v = xs.flatten_all()?.to_vec1::<f32>()?;
    v.par_chunks_mut(16 * 1024)
        .for_each(|c| c.iter_mut().for_each(|x| *x = gelu(*x)));
    Tensor::from_vec(v, xs.shape(), xs.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_candle_gelu_erf_within_3e_7() {
        // candle's gelu_erf (libm's erff) is the reference; 2001 points over [-10, 10]
        // cover both tails and the steep middle.
        let xs: Vec<f32> = (0..=2000).map(|i| -10.0 + i as f32 * 0.01).collect();
        let t = Tensor::from_vec(xs.clone(), (1, xs.len()), &Device::Cpu).unwrap();
        let want = t
            .gelu_erf()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let got = gelu_erf(&t).unwrap();
        assert_eq!(got.dims(), t.dims());
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            // 0.5 |x| * 1.5e-7 from erf plus f32 rounding.
            let tol = 3e-7 * (1.0 + x.abs());
            assert!((g - w).abs() <= tol, "x = {x}: {g} vs {w}");
        }
    }
}
