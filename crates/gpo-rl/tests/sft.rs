//! Supervised fine-tuning on a tiny random LoRA model: the targets' likelihood rises, every
//! adapter tensor learns, the base weights do not move, and bad settings are refused.

use candle_core::Device;
use gpo_lm::{attach_lora, Architecture, CausalLm, LmConfig, LoraConfig, PairBatch, Trainable};
use gpo_rl::{fine_tune, sft_loss, SftConfig, SftRun};

const PAD: u32 = 0;

fn lora_model() -> CausalLm {
    let mut model = CausalLm::random(
        LmConfig::tiny(Architecture::Llama),
        5,
        Trainable::Frozen,
        &Device::Cpu,
    )
    .expect("tiny model");
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        ..LoraConfig::default()
    };
    attach_lora(&mut model, &lora, 9).expect("lora");
    model
}

/// Two "harmful" prompts answered with one fixed refusal, two "benign" ones with their own
/// answers: what the defender's warm start looks like, in token ids.
fn pairs() -> Vec<(Vec<u32>, Vec<u32>)> {
    vec![
        (vec![3, 4, 5], vec![7, 8, 9]),
        (vec![3, 6], vec![7, 8, 9]),
        (vec![10, 11, 12, 13], vec![14, 15]),
        (vec![16, 17], vec![18, 19, 20, 21]),
    ]
}

/// Every adapter value of `model`, in the order of its trainable variables.
fn adapter_values(model: &CausalLm) -> Vec<f32> {
    model
        .trainable_vars()
        .iter()
        .flat_map(|(_, v)| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        })
        .collect()
}

fn loss(model: &CausalLm) -> f32 {
    let batch = PairBatch::new(&pairs(), PAD, &Device::Cpu).unwrap();
    sft_loss(model, &batch).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn fine_tuning_raises_the_targets_likelihood_and_trains_only_the_adapters() {
    let model = lora_model();
    let before_vars: Vec<Vec<f32>> = model
        .trainable_vars()
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let before = loss(&model);
    let cfg = SftConfig {
        epochs: 20,
        batch_size: 2,
        optimizer: gpo_optim::AdamWConfig {
            lr: 1e-2,
            ..Default::default()
        },
        ..SftConfig::default()
    };
    let mut steps = Vec::new();
    fine_tune(&model, &pairs(), PAD, &cfg, |s| steps.push(*s)).unwrap();
    let after = loss(&model);
    // 4 pairs in batches of 2 over 20 epochs: 40 steps, numbered from 1.
    assert_eq!(steps.len(), 40);
    assert_eq!(
        (steps[0].step, steps[39].step, steps[39].epoch),
        (1, 40, 19)
    );
    assert!(steps
        .iter()
        .all(|s| s.loss.is_finite() && s.grad_norm > 0.0));
    // Measured: 4.19 -> 3.51 nats. The random model starts near ln(64) = 4.16, and its
    // frozen random LM head keeps every logit small, so about 3.5 is as low as adapters
    // can take it; 0.4 nats of the 0.68 gained is the bound.
    assert!(after < before - 0.4, "loss {before} -> {after}");
    assert!(steps[39].loss < steps[0].loss - 0.4);
    // Every adapter tensor moved (lora_B starts at zero, so its update is what makes A matter).
    for ((name, var), old) in model.trainable_vars().iter().zip(&before_vars) {
        let new: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let moved = new.iter().zip(old).any(|(a, b)| a != b);
        assert!(moved, "{name} did not move");
    }
}

#[test]
fn bad_settings_and_empty_inputs_are_refused_by_name() {
    let model = lora_model();
    let bad = |cfg: SftConfig, want: &str| {
        let err = fine_tune(&model, &pairs(), PAD, &cfg, |_| {}).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    };
    bad(
        SftConfig {
            epochs: 0,
            ..SftConfig::default()
        },
        "epochs",
    );
    bad(
        SftConfig {
            batch_size: 0,
            ..SftConfig::default()
        },
        "batch_size",
    );
    let mut nan_lr = SftConfig::default();
    nan_lr.optimizer.lr = f64::NAN;
    bad(nan_lr, "lr");
    bad(
        SftConfig {
            max_grad_norm: 0.0,
            ..SftConfig::default()
        },
        "max_grad_norm",
    );
    let err = fine_tune(&model, &[], PAD, &SftConfig::default(), |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("no (prompt, target) pairs"),
        "{err}"
    );
    let frozen = CausalLm::random(
        LmConfig::tiny(Architecture::Llama),
        5,
        Trainable::Frozen,
        &Device::Cpu,
    )
    .unwrap();
    let err = fine_tune(&frozen, &pairs(), PAD, &SftConfig::default(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("no trainable variables"), "{err}");
}

#[test]
fn micro_batches_change_memory_not_the_step() {
    let run = |micro: usize| {
        let model = lora_model();
        let cfg = SftConfig {
            epochs: 2,
            batch_size: 4,
            micro_batch_size: micro,
            ..SftConfig::default()
        };
        let mut losses = Vec::new();
        fine_tune(&model, &pairs(), PAD, &cfg, |s| losses.push(s.loss)).unwrap();
        (losses, adapter_values(&model))
    };
    let (whole_loss, whole) = run(4);
    for micro in [1, 3] {
        let (loss, split) = run(micro);
        // Same sums in another order: equal to float rounding (f32, a few ulps of each sum).
        for (a, b) in whole_loss.iter().zip(&loss) {
            assert!((a - b).abs() < 1e-5, "loss {a} vs {b} (micro {micro})");
        }
        let worst = whole
            .iter()
            .zip(&split)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "adapters differ by {worst} (micro {micro})");
    }
}

#[test]
fn a_run_resumed_after_an_epoch_ends_where_the_uninterrupted_run_ends() {
    let cfg = SftConfig {
        epochs: 3,
        batch_size: 3,
        ..SftConfig::default()
    };
    let whole = lora_model();
    let mut whole_losses = Vec::new();
    fine_tune(&whole, &pairs(), PAD, &cfg, |s| whole_losses.push(s.loss)).unwrap();

    // One epoch, then the adapter and optimiser go to disk and a fresh process (a new model
    // with other random adapters) picks them up.
    let tmp = tempfile::tempdir().unwrap();
    let first = lora_model();
    let mut run = SftRun::new(&first, pairs().len(), &cfg).unwrap();
    let mut losses = Vec::new();
    run.run_epoch(&first, &pairs(), PAD, |s| losses.push(s.loss))
        .unwrap();
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        ..LoraConfig::default()
    };
    gpo_lm::save_lora(&first, &lora, tmp.path(), "tiny").unwrap();
    run.save_optimizer(&tmp.path().join("optimizer.safetensors"))
        .unwrap();
    let mut second = CausalLm::random(
        LmConfig::tiny(Architecture::Llama),
        5,
        Trainable::Frozen,
        &Device::Cpu,
    )
    .unwrap();
    gpo_lm::load_lora(&mut second, tmp.path()).unwrap();
    let mut resumed = SftRun::resume(
        &second,
        pairs().len(),
        &cfg,
        1,
        &tmp.path().join("optimizer.safetensors"),
    )
    .unwrap();
    let mut steps = Vec::new();
    while resumed.epochs_done() < cfg.epochs {
        resumed
            .run_epoch(&second, &pairs(), PAD, |s| {
                losses.push(s.loss);
                steps.push(s.step);
            })
            .unwrap();
    }
    // 4 pairs in batches of 3: two steps an epoch; the resumed run numbers on from step 3.
    assert_eq!(steps, vec![3, 4, 5, 6]);
    // Same shuffles, same optimiser state, same arithmetic: equal bit for bit.
    assert_eq!(losses, whole_losses);
    assert_eq!(adapter_values(&second), adapter_values(&whole));
}
