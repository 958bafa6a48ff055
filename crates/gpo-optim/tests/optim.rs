//! gpo-optim against PyTorch and against itself.
//!
//! `fixtures/adamw.json` comes from `reference/make_adamw.py` (torch 2.11, CPU float32):
//! `torch.optim.AdamW` trajectories with explicit gradients and
//! `torch.nn.utils.clip_grad_norm_` values. Tolerances: parameters 1e-6 absolute (float32
//! rounding differences of a few ulps over six steps), norms 1e-6 relative (ours sums in
//! f64, torch in f32).

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use gpo_optim::{clip_grad_norm, AdamW, AdamWConfig, GradAccumulator};

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    config: Hyper,
    max_norm: Option<f64>,
    shapes: BTreeMap<String, Vec<usize>>,
    init: BTreeMap<String, Vec<f32>>,
    steps: Vec<Step>,
}

#[derive(serde::Deserialize)]
struct Hyper {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

#[derive(serde::Deserialize)]
struct Step {
    lr: f64,
    grads: BTreeMap<String, Option<Vec<f32>>>,
    norm: Option<f64>,
    clipped: Option<BTreeMap<String, Option<Vec<f32>>>>,
    params: BTreeMap<String, Vec<f32>>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/adamw.json")).expect("fixtures/adamw.json")
}

impl Case {
    fn params(&self) -> Vec<(String, Var)> {
        self.init
            .iter()
            .map(|(name, data)| {
                let t =
                    Tensor::from_slice(data, self.shapes[name].as_slice(), &Device::Cpu).unwrap();
                (name.clone(), Var::from_tensor(&t).unwrap())
            })
            .collect()
    }

    fn config(&self) -> AdamWConfig {
        let c = &self.config;
        AdamWConfig {
            lr: 1e-3,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
        }
    }
}

/// A store holding the given gradients (a `None` gradient is left out).
fn store(
    params: &[(String, Var)],
    grads: &BTreeMap<String, Option<Vec<f32>>>,
    dtype: DType,
) -> GradStore {
    let mut store = GradStore::default();
    for (name, var) in params {
        if let Some(g) = &grads[name] {
            let g = Tensor::from_slice(g, var.shape(), &Device::Cpu).unwrap();
            store.insert(var.as_tensor(), g.to_dtype(dtype).unwrap());
        }
    }
    store
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: {g} vs torch {w} (tolerance {tol})"
        );
    }
}

/// Runs every fixture case with parameters and gradients in `dtype` and compares each step
/// with torch's float32 parameters.
fn check_trajectories(dtype: DType, tol: f32) {
    for case in fixture().cases {
        let params: Vec<(String, Var)> = case
            .params()
            .into_iter()
            .map(|(n, v)| {
                (
                    n,
                    Var::from_tensor(&v.as_tensor().to_dtype(dtype).unwrap()).unwrap(),
                )
            })
            .collect();
        let mut opt = AdamW::new(params.clone(), case.config()).unwrap();
        for (k, step) in case.steps.iter().enumerate() {
            let mut grads = store(&params, &step.grads, dtype);
            if let Some(max_norm) = case.max_norm {
                clip_grad_norm(&mut grads, &params, max_norm).unwrap();
            }
            let stats = opt.step(&grads, step.lr).unwrap();
            let skipped: Vec<&String> = step
                .grads
                .iter()
                .filter(|(_, g)| g.is_none())
                .map(|(n, _)| n)
                .collect();
            assert_eq!(stats.without_grad.iter().collect::<Vec<_>>(), skipped);
            for (name, var) in &params {
                let what = format!("{} step {k} {name}", case.name);
                assert_close(&what, &flat(var.as_tensor()), &step.params[name], tol);
            }
        }
    }
}

#[test]
fn adamw_matches_pytorch() {
    // f32 on the CPU: the fused kernel. Measured: at most 1 ulp (1.2e-7) from torch.
    check_trajectories(DType::F32, 1e-6);
}

#[test]
fn adamw_in_f64_agrees_with_pytorch_f32() {
    // f64 takes the tensor-op path with f64 state; torch's float32 rounding is the error.
    check_trajectories(DType::F64, 1e-6);
}

#[test]
fn clip_grad_norm_matches_pytorch() {
    let mut checked = 0;
    for case in fixture().cases {
        let params = case.params();
        for (k, step) in case.steps.iter().enumerate() {
            let (Some(max_norm), Some(want_norm), Some(clipped)) =
                (case.max_norm, step.norm, &step.clipped)
            else {
                continue;
            };
            let mut grads = store(&params, &step.grads, DType::F32);
            let norm = clip_grad_norm(&mut grads, &params, max_norm).unwrap();
            assert!(
                (norm - want_norm).abs() <= 1e-6 * want_norm,
                "{} step {k}: norm {norm} vs torch {want_norm}",
                case.name
            );
            for (name, var) in &params {
                let got = grads.get(var.as_tensor()).map(flat);
                match (&got, &clipped[name]) {
                    (Some(g), Some(w)) => {
                        assert_close(&format!("{} step {k} {name}", case.name), g, w, 1e-6)
                    }
                    (None, None) => {}
                    _ => panic!("{} step {k} {name}: gradient presence differs", case.name),
                }
            }
            checked += 1;
        }
    }
    // Both clipping cases, including steps where the norm is under max_norm.
    assert_eq!(checked, 10);
}

/// Parameters for the resumption test: an f32 matrix (fused kernel), a bf16 vector (tensor
/// path with f32 state) and a vector that gets no gradient at step 1.
fn resume_params() -> Vec<(String, Var)> {
    let dev = Device::Cpu;
    let a = Tensor::new(&[[0.5f32, -1.0, 2.0], [1.5, -0.25, 0.75]], &dev).unwrap();
    let b = Tensor::new(&[3f32, -3.0, 0.5, 0.25], &dev)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    let c = Tensor::new(&[0.1f32, 0.2], &dev).unwrap();
    [("a", a), ("b", b), ("c", c)]
        .into_iter()
        .map(|(n, t)| (n.to_string(), Var::from_tensor(&t).unwrap()))
        .collect()
}

/// Step `k` of a toy loss `sum(cos(k + i) * p_i^2)` (c skipped at k = 1), clipped at 1.
fn resume_step(opt: &mut AdamW, params: &[(String, Var)], k: usize) {
    let mut loss = Tensor::new(0f32, &Device::Cpu).unwrap();
    for (name, var) in params {
        if name == "c" && k == 1 {
            continue;
        }
        let p = var.as_tensor().to_dtype(DType::F32).unwrap();
        let w: Vec<f32> = (0..p.elem_count())
            .map(|i| ((k + i) as f32).cos())
            .collect();
        let w = Tensor::from_vec(w, p.shape(), &Device::Cpu).unwrap();
        loss = (loss + (p.sqr().unwrap() * w).unwrap().sum_all().unwrap()).unwrap();
    }
    let mut grads = loss.backward().unwrap();
    clip_grad_norm(&mut grads, params, 1.0).unwrap();
    opt.step(&grads, 0.05).unwrap();
}

#[test]
fn saved_state_resumes_exactly() {
    let cfg = AdamWConfig {
        weight_decay: 0.1,
        ..AdamWConfig::paper()
    };
    let straight = resume_params();
    let mut opt = AdamW::new(straight.clone(), cfg).unwrap();
    for k in 0..4 {
        resume_step(&mut opt, &straight, k);
    }

    let resumed = resume_params();
    let mut first = AdamW::new(resumed.clone(), cfg).unwrap();
    for k in 0..2 {
        resume_step(&mut first, &resumed, k);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    first.save(&path).unwrap();
    drop(first);
    let mut second = AdamW::new(resumed.clone(), cfg).unwrap();
    second.load(&path).unwrap();
    assert_eq!(second.step_count(), 2);
    for k in 2..4 {
        resume_step(&mut second, &resumed, k);
    }
    for ((name, a), (_, b)) in straight.iter().zip(&resumed) {
        let (a, b) = (
            a.as_tensor().to_dtype(DType::F32).unwrap(),
            b.as_tensor().to_dtype(DType::F32).unwrap(),
        );
        assert_eq!(flat(&a), flat(&b), "parameter {name} after resuming");
    }
    assert_eq!(
        opt.state_dict().unwrap().keys().collect::<Vec<_>>(),
        second.state_dict().unwrap().keys().collect::<Vec<_>>()
    );
    for ((key, x), (_, y)) in opt
        .state_dict()
        .unwrap()
        .iter()
        .zip(&second.state_dict().unwrap())
    {
        let (x, y) = (
            x.to_dtype(DType::F64).unwrap(),
            y.to_dtype(DType::F64).unwrap(),
        );
        assert_eq!(
            x.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            y.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            "{key}"
        );
    }
}

/// A bf16 vector and its optimiser (the paper's betas and eps), stepped `steps` times at
/// lr 5e-7 (the paper's defender rate, below half a bf16 ulp of these weights) on the toy
/// loss of [`resume_step`] (k = 0, 1, ..).
fn bf16_at_lr_5e_7(var: &Var, opt: &mut AdamW, steps: std::ops::Range<usize>) {
    for k in steps {
        let p = var.as_tensor().to_dtype(DType::F32).unwrap();
        let w: Vec<f32> = (0..4).map(|i| ((k + i) as f32).cos()).collect();
        let w = Tensor::from_vec(w, 4, &Device::Cpu).unwrap();
        let loss = (p.sqr().unwrap() * w).unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap(), 5e-7).unwrap();
    }
}

fn bf16_var() -> Var {
    let t = Tensor::new(&[3f32, -3.0, 0.5, 0.25], &Device::Cpu).unwrap();
    Var::from_tensor(&t.to_dtype(DType::BF16).unwrap()).unwrap()
}

#[test]
fn bf16_masters_resume_exactly_from_a_file() {
    let cfg = AdamWConfig::paper();
    let straight = bf16_var();
    let mut opt = AdamW::new(vec![("b".into(), straight.clone())], cfg).unwrap();
    bf16_at_lr_5e_7(&straight, &mut opt, 0..6);

    let resumed = bf16_var();
    let mut first = AdamW::new(vec![("b".into(), resumed.clone())], cfg).unwrap();
    bf16_at_lr_5e_7(&resumed, &mut first, 0..3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    first.save(&path).unwrap();
    drop(first);
    let mut second = AdamW::new(vec![("b".into(), resumed.clone())], cfg).unwrap();
    second.load(&path).unwrap();
    bf16_at_lr_5e_7(&resumed, &mut second, 3..6);

    let master = flat(opt.master("b").unwrap());
    assert_eq!(flat(second.master("b").unwrap()), master);
    let value = flat(&straight.as_tensor().to_dtype(DType::F32).unwrap());
    assert_eq!(
        flat(&resumed.as_tensor().to_dtype(DType::F32).unwrap()),
        value
    );
    // The master holds progress the bf16 value cannot: the file must carry it.
    assert_ne!(master, value);
}

#[test]
fn v1_state_files_load_with_masters_re_created() {
    let var = bf16_var();
    let mut opt = AdamW::new(vec![("b".into(), var.clone())], AdamWConfig::paper()).unwrap();
    bf16_at_lr_5e_7(&var, &mut opt, 0..3);
    let mut state = opt.state_dict().unwrap();
    state.remove("master.b");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    let meta = [("format".to_string(), "gpo-optim/adamw-v1".to_string())];
    safetensors::tensor::serialize_to_file(state, Some(meta.into()), &path).unwrap();
    let mut back = AdamW::new(vec![("b".into(), var.clone())], AdamWConfig::paper()).unwrap();
    back.load(&path).unwrap();
    assert_eq!(back.step_count(), 3);
    let value = flat(&var.as_tensor().to_dtype(DType::F32).unwrap());
    assert_eq!(flat(back.master("b").unwrap()), value);
}

#[test]
fn state_for_other_parameters_is_refused_with_the_file_named() {
    let params = resume_params();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    AdamW::new(params, AdamWConfig::default())
        .unwrap()
        .save(&path)
        .unwrap();
    let other = vec![("q".to_string(), Var::new(&[1f32], &Device::Cpu).unwrap())];
    let err = AdamW::new(other, AdamWConfig::default())
        .unwrap()
        .load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("optim.safetensors: no state for parameter(s) `q`"),
        "{err}"
    );
    assert!(err.contains("another model or LoRA setting"), "{err}");
}

#[test]
fn accumulated_micro_batches_equal_the_full_batch() {
    // Mean squared error of a linear map over 8 rows == mean over 4 micro-batches of 2 rows
    // of their own mean losses.
    let dev = Device::Cpu;
    let xs: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    let xs = Tensor::from_vec(xs, (8, 3), &dev).unwrap();
    let ys = Tensor::new(
        &[
            [1f32, 0.0],
            [0.5, -1.0],
            [2.0, 1.0],
            [-1.0, 0.0],
            [0.0, 0.3],
            [1.0, 1.0],
            [-2.0, 0.5],
            [0.7, -0.7],
        ],
        &dev,
    )
    .unwrap();
    let w = Var::new(&[[0.3f32, -0.7], [0.1, 0.4], [-0.5, 0.2]], &dev).unwrap();
    let b = Var::new(&[0.05f32, -0.1], &dev).unwrap();
    let params = vec![("w".to_string(), w.clone()), ("b".to_string(), b.clone())];
    let loss = |rows: std::ops::Range<usize>| {
        let x = xs.narrow(0, rows.start, rows.len()).unwrap();
        let y = ys.narrow(0, rows.start, rows.len()).unwrap();
        let pred = x
            .matmul(w.as_tensor())
            .unwrap()
            .broadcast_add(b.as_tensor())
            .unwrap();
        (pred - y).unwrap().sqr().unwrap().mean_all().unwrap()
    };
    let full = loss(0..8).backward().unwrap();
    let mut acc = GradAccumulator::new(&params);
    for i in 0..4 {
        acc.add(loss(2 * i..2 * i + 2).backward().unwrap()).unwrap();
    }
    assert_eq!(acc.micro_batches(), 4);
    let mean = acc.mean().unwrap();
    for (name, var) in &params {
        let got = flat(mean.get(var.as_tensor()).unwrap());
        let want = flat(full.get(var.as_tensor()).unwrap());
        assert_close(&format!("gradient of {name}"), &got, &want, 1e-6);
    }
}
