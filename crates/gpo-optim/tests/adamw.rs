//! AdamW and clipping against PyTorch (fixtures/adamw.json from reference/make_adamw.py),
//! exact resumption from saved state, and micro-batch accumulation.

use candle_core::{Device, Tensor, Var};
use gpo_optim::{clip_grad_norm, AdamW, AdamWConfig, Grads};

#[derive(serde::Deserialize)]
struct Step {
    norm: f64,
    p1: Vec<Vec<f32>>,
    p2: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    init: (Vec<Vec<f32>>, Vec<f32>),
    steps: Vec<Step>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/adamw.json")).unwrap()
}

fn params(f: &Fixture) -> Vec<(String, Var)> {
    let p1 = Var::new(f.init.0.clone(), &Device::Cpu).unwrap();
    let p2 = Var::new(f.init.1.clone(), &Device::Cpu).unwrap();
    vec![("p1".into(), p1), ("p2".into(), p2)]
}

/// Gradients g = cos(0.7 k + 0.3 i) (k + 1), produced by backward of sum(p * g).
fn grads(params: &[(String, Var)], k: usize) -> Grads {
    let mut loss = Tensor::new(0f32, &Device::Cpu).unwrap();
    for (_, p) in params {
        let n = p.elem_count();
        let g: Vec<f32> = (0..n)
            .map(|i| ((0.7 * k as f64 + 0.3 * i as f64).cos() * (k + 1) as f64) as f32)
            .collect();
        let g = Tensor::from_vec(g, p.shape(), &Device::Cpu).unwrap();
        loss = (loss + (p.as_tensor() * g).unwrap().sum_all().unwrap()).unwrap();
    }
    Grads::from_store(loss.backward().unwrap(), params)
}

fn cfg() -> AdamWConfig {
    AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-6,
        weight_decay: 0.1,
    }
}

fn run(opt: &mut AdamW, params: &[(String, Var)], steps: std::ops::Range<usize>) -> Vec<f64> {
    steps
        .map(|k| {
            let g = grads(params, k);
            let (norm, scale) = clip_grad_norm(&g, params, 1.0, 1.0).unwrap();
            opt.step(&g, 1e-2, scale).unwrap();
            norm
        })
        .collect()
}

#[test]
fn adamw_with_clipping_matches_pytorch() {
    let f = fixture();
    let params = params(&f);
    let mut opt = AdamW::new(params.clone(), cfg()).unwrap();
    for (k, want) in f.steps.iter().enumerate() {
        let norm = run(&mut opt, &params, k..k + 1)[0];
        assert!(
            (norm - want.norm).abs() < 1e-5 * want.norm,
            "step {k}: norm {norm} vs {}",
            want.norm
        );
        let p1 = params[0].1.as_tensor().to_vec2::<f32>().unwrap();
        let p2 = params[1].1.as_tensor().to_vec1::<f32>().unwrap();
        for (a, b) in p1
            .iter()
            .flatten()
            .zip(want.p1.iter().flatten())
            .chain(p2.iter().zip(&want.p2))
        {
            assert!((a - b).abs() < 1e-6, "step {k}: {a} vs torch {b}");
        }
    }
}

#[test]
fn saved_state_resumes_exactly() {
    let f = fixture();
    let straight = params(&f);
    let mut opt = AdamW::new(straight.clone(), cfg()).unwrap();
    run(&mut opt, &straight, 0..4);

    let resumed = params(&f);
    let mut first = AdamW::new(resumed.clone(), cfg()).unwrap();
    run(&mut first, &resumed, 0..2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    first.save(&path).unwrap();
    let mut second = AdamW::new(resumed.clone(), cfg()).unwrap();
    second.load(&path).unwrap();
    assert_eq!(second.step_count(), 2);
    run(&mut second, &resumed, 2..4);
    for ((_, a), (_, b)) in straight.iter().zip(&resumed) {
        let d = (a.as_tensor() - b.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0);
    }
    // State for other parameters is refused with the file named.
    let other = vec![("q".to_string(), Var::new(&[1f32], &Device::Cpu).unwrap())];
    let err = AdamW::new(other, cfg())
        .unwrap()
        .load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("optim.safetensors") && err.contains("missing `m.q`"),
        "{err}"
    );
}

#[test]
fn accumulated_micro_batches_equal_the_full_batch() {
    // loss = mean_i (w . x_i)^2 over 4 rows == mean of 4 single-row losses.
    let xs = Tensor::new(
        &[[1f32, 2.0], [0.5, -1.0], [3.0, 0.0], [-2.0, 1.0]],
        &Device::Cpu,
    )
    .unwrap();
    let w = Var::new(&[0.3f32, -0.7], &Device::Cpu).unwrap();
    let params = vec![("w".to_string(), w.clone())];
    let full_loss = xs
        .matmul(&w.as_tensor().unsqueeze(1).unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let full = Grads::from_store(full_loss.backward().unwrap(), &params);
    let mut acc = Grads::default();
    for i in 0..4 {
        let row = xs.narrow(0, i, 1).unwrap();
        let loss = row
            .matmul(&w.as_tensor().unsqueeze(1).unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap();
        acc.accumulate(Grads::from_store(loss.backward().unwrap(), &params))
            .unwrap();
    }
    let a = (acc.get(&w).unwrap() * 0.25)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = full.get(&w).unwrap().to_vec1::<f32>().unwrap();
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}
