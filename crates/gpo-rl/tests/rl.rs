//! Training invariants of the RL loop on a tiny random LoRA model: gradient accumulation
//! changes nothing, a seeded run reproduces its golden trajectory, a resumed run continues
//! exactly, every trainable tensor learns, and the critic learns apart from the policy.

use std::path::PathBuf;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use gpo_lm::{attach_lora, Architecture, CausalLm, LmConfig, LoraConfig, Pass, Trainable};
use gpo_rl::{
    CriticConfig, CriticKind, Estimator, KlEstimator, KlPlacement, LossAggregation, Policy,
    RlConfig, RolloutBatch, StepStats, Trainer,
};

const PAD: u32 = 0;
const EOS: u32 = 1;

fn lora_cfg() -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        ..LoraConfig::default()
    }
}

fn tiny_model(trainable: Trainable) -> CausalLm {
    let cfg = LmConfig::tiny(Architecture::Llama);
    CausalLm::random(cfg, 5, trainable, &Device::Cpu).expect("tiny model")
}

fn policy(estimator: Estimator) -> Policy {
    let mut model = tiny_model(Trainable::Frozen);
    attach_lora(&mut model, &lora_cfg(), 9).expect("lora");
    let p = Policy::lora(model, lora_cfg()).expect("policy");
    match estimator.critic() {
        Some(c) => p.with_critic(c.kind, 11).expect("critic"),
        None => p,
    }
}

/// PPO with `critic`.
fn ppo(critic: CriticConfig) -> Estimator {
    let mut e = Estimator::ppo();
    if let Estimator::Ppo { critic: c, .. } = &mut e {
        *c = critic;
    }
    e
}

/// PPO with a critic of its own LoRA adapters.
fn ppo_lora_critic() -> Estimator {
    ppo(CriticConfig {
        kind: CriticKind::Lora,
        ..CriticConfig::default()
    })
}

fn config(estimator: Estimator) -> RlConfig {
    let mut cfg = RlConfig {
        estimator,
        epochs: 2,
        minibatch_size: 4,
        micro_batch_size: 2,
        ..RlConfig::default()
    };
    cfg.optimizer.lr = 1e-2;
    cfg.schedule = gpo_optim::LrSchedule::Constant;
    cfg.sampling.max_new_tokens = 6;
    cfg.sampling.repetition_penalty = 1.0;
    cfg.sampling.n = 2;
    cfg
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![5, 9, 12], vec![7, 3], vec![20, 21, 22, 23], vec![40]]
}

/// A verifiable reward: the fraction of response tokens with an even id.
fn reward(ids: &[u32]) -> f32 {
    ids.iter().filter(|&&t| t % 2 == 0).count() as f32 / ids.len() as f32
}

fn iterate(trainer: &mut Trainer, policy: &Policy) -> StepStats {
    let prompts = prompts();
    let samples = trainer.sample(policy, &prompts).expect("sample");
    let rewards: Vec<f32> = samples.iter().map(|s| reward(&s.ids)).collect();
    let mut batch = RolloutBatch::from_samples(&prompts, samples, &rewards).expect("batch");
    trainer.learn(policy, &mut batch).expect("learn")
}

fn trainer(policy: &Policy, cfg: RlConfig) -> Trainer {
    Trainer::new(policy, cfg, 17, vec![EOS], PAD).expect("trainer")
}

fn values_of(vars: &[(String, Var)]) -> Vec<Vec<f32>> {
    vars.iter()
        .map(|(_, v)| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        })
        .collect()
}

fn weights(policy: &Policy) -> Vec<Vec<f32>> {
    values_of(&policy.all_vars())
}

fn critic_vars(policy: &Policy) -> Vec<(String, Var)> {
    policy.critic.as_ref().expect("a critic").vars()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn one_minibatch_of_eight_equals_eight_accumulated_micro_batches_of_one() {
    for (estimator, aggregation) in [
        (Estimator::ppo(), LossAggregation::TokenMean),
        (ppo_lora_critic(), LossAggregation::TokenMean),
        (Estimator::grpo(), LossAggregation::TokenMean),
        (Estimator::grpo(), LossAggregation::SequenceMean),
    ] {
        let mut runs = Vec::new();
        for micro in [8, 1] {
            let p = policy(estimator);
            let cfg = RlConfig {
                epochs: 1,
                minibatch_size: 8,
                micro_batch_size: micro,
                loss_aggregation: aggregation,
                ..config(estimator)
            };
            let mut t = trainer(&p, cfg);
            let stats = iterate(&mut t, &p);
            runs.push((stats, weights(&p)));
        }
        let ((a, wa), (b, wb)) = (&runs[0], &runs[1]);
        assert_eq!(a.update.optimizer_steps, 1);
        // f32 sums in a different order: 1e-5 relative is the expected rounding noise.
        let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * (1.0 + x.abs().max(y.abs()));
        assert!(
            close(a.update.policy_loss, b.update.policy_loss),
            "{a:?} vs {b:?}"
        );
        assert!(
            close(a.update.value_loss, b.update.value_loss),
            "{a:?} vs {b:?}"
        );
        assert!(
            close(a.update.grad_norm, b.update.grad_norm),
            "{a:?} vs {b:?}"
        );
        assert!(
            close(a.update.critic_grad_norm, b.update.critic_grad_norm),
            "{a:?} vs {b:?}"
        );
        let d = max_diff(wa, wb);
        assert!(d < 1e-5, "{estimator:?}: weights differ by {d}");
    }
}

#[test]
fn every_trainable_tensor_moves_in_an_update() {
    for est in [Estimator::ppo(), ppo_lora_critic()] {
        let p = policy(est);
        let before = weights(&p);
        let mut t = trainer(&p, config(est));
        // Two iterations: LoRA's A gets a gradient only once B is non-zero (and a LoRA
        // critic's B only once the value head is).
        iterate(&mut t, &p);
        iterate(&mut t, &p);
        let after = weights(&p);
        for ((name, _), (b, a)) in p.all_vars().iter().zip(before.iter().zip(&after)) {
            let moved = b.iter().zip(a).any(|(x, y)| x != y);
            assert!(moved, "{est:?}: {name} never changed");
        }
    }
}

#[test]
fn kl_in_the_loss_and_every_estimator_run() {
    for (estimator, kl) in [
        (Estimator::Rloo, KlEstimator::K3),
        (Estimator::Reinforce, KlEstimator::K2),
        (Estimator::grpo(), KlEstimator::K3),
    ] {
        let p = policy(estimator);
        let mut cfg = config(estimator);
        cfg.kl.placement = KlPlacement::Loss;
        cfg.kl.estimator = kl;
        cfg.entropy_coef = 0.01;
        let mut t = trainer(&p, cfg);
        let s1 = iterate(&mut t, &p);
        let s2 = iterate(&mut t, &p);
        assert!(
            s1.kl.abs() < 1e-4,
            "{estimator:?}: first rollout is the reference, kl {}",
            s1.kl
        );
        assert!(s2.kl > 0.0, "{estimator:?}: the policy moved, kl {}", s2.kl);
        assert!(s2.update.entropy > 0.0);
    }
}

#[test]
fn a_resumed_run_continues_exactly() {
    // A LoRA critic whose warm-up ends right after the checkpoint.
    let warm_lora = ppo(CriticConfig {
        kind: CriticKind::Lora,
        warmup_iterations: 1,
        ..CriticConfig::default()
    });
    for est in [Estimator::ppo(), warm_lora] {
        // Uninterrupted: 3 iterations.
        let p = policy(est);
        let mut t = trainer(&p, config(est));
        let straight: Vec<StepStats> = (0..3).map(|_| iterate(&mut t, &p)).collect();
        let straight_w = weights(&p);

        // 1 iteration, checkpoint, then a fresh process: new policy, new trainer, load, 2 more.
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("ckpt");
        let p1 = policy(est);
        let mut t1 = trainer(&p1, config(est));
        let first = iterate(&mut t1, &p1);
        t1.save(&p1, &ckpt, "tiny").unwrap();
        // Saving again replaces the checkpoint atomically.
        t1.save(&p1, &ckpt, "tiny").unwrap();
        let lora_critic = est.critic().is_some_and(|c| c.kind == CriticKind::Lora);
        assert_eq!(
            ckpt.join("critic/adapter_config.json").is_file(),
            lora_critic
        );
        drop((p1, t1));
        let p2 = policy(est);
        let mut t2 = Trainer::new(&p2, config(est), 999, vec![EOS], PAD).unwrap();
        t2.load(&p2, &ckpt).unwrap();
        assert_eq!(t2.iteration(), 1);
        let rest: Vec<StepStats> = (0..2).map(|_| iterate(&mut t2, &p2)).collect();

        let strip = |s: &StepStats| {
            let u = &s.update;
            let losses = (u.policy_loss, u.value_loss, u.grad_norm, u.critic_grad_norm);
            (s.iteration, s.reward, s.kl, losses, u.critic_only)
        };
        assert_eq!(strip(&first), strip(&straight[0]));
        for (a, b) in rest.iter().zip(&straight[1..]) {
            assert_eq!(strip(a), strip(b), "{est:?}");
        }
        assert_eq!(max_diff(&weights(&p2), &straight_w), 0.0, "{est:?}");
    }
}

#[test]
fn a_checkpoint_for_another_model_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let p = policy(Estimator::grpo());
    let t = trainer(&p, config(Estimator::grpo()));
    t.save(&p, &ckpt, "tiny").unwrap();
    // A PPO player is refused a GRPO checkpoint: its settings name the difference.
    let q = policy(Estimator::ppo());
    let mut tq = trainer(&q, config(Estimator::ppo()));
    let err = tq.load(&q, &ckpt).unwrap_err().to_string();
    assert!(
        err.contains("trainer.json") && err.contains("(changed: estimator)"),
        "{err}"
    );
    // With the same settings, a checkpoint missing a file is refused with the file named.
    let ppo = dir.path().join("ppo");
    tq.save(&q, &ppo, "tiny").unwrap();
    std::fs::remove_file(ppo.join("value_head.safetensors")).unwrap();
    let err = tq.load(&q, &ppo).unwrap_err().to_string();
    assert!(err.contains("value_head.safetensors"), "{err}");
}

/// The per-step numbers a golden trajectory pins.
fn trajectory(estimator: Estimator) -> Vec<[f32; 4]> {
    let p = policy(estimator);
    let mut t = trainer(&p, config(estimator));
    (0..4)
        .map(|_| {
            let s = iterate(&mut t, &p);
            let loss = s.update.policy_loss + s.update.value_loss;
            [loss, s.kl, s.reward, s.update.grad_norm]
        })
        .collect()
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.json"))
}

/// Seeded tiny runs reproduce `tests/golden/*.json` (loss, KL, reward, grad norm per step).
/// The files were written by this test with `GPO_UPDATE_GOLDEN=1`; rewrite them only for an
/// intended change of the algorithm, and say so in the commit.
#[test]
fn seeded_tiny_runs_reproduce_their_golden_trajectories() {
    for (name, est) in [
        ("tiny_ppo", Estimator::ppo()),
        ("tiny_ppo_lora_critic", ppo_lora_critic()),
        ("tiny_grpo", Estimator::grpo()),
    ] {
        let got = trajectory(est);
        let path = golden_path(name);
        if std::env::var_os("GPO_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&serde_json::json!({
                "columns": ["loss", "kl", "reward", "grad_norm"],
                "steps": got,
            }))
            .unwrap();
            std::fs::write(&path, text + "\n").unwrap();
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with GPO_UPDATE_GOLDEN=1)", path.display()));
        let want: serde_json::Value = serde_json::from_str(&text).unwrap();
        let want: Vec<[f32; 4]> = serde_json::from_value(want["steps"].clone()).unwrap();
        assert_eq!(got.len(), want.len());
        for (step, (g, w)) in got.iter().zip(&want).enumerate() {
            for k in 0..4 {
                // Same code, same seed: only summation order across thread counts may differ.
                let tol = 1e-4 * (1.0 + w[k].abs());
                assert!(
                    (g[k] - w[k]).abs() <= tol,
                    "{name} step {step} column {k}: got {g:?}, golden {w:?}"
                );
            }
        }
    }
}

#[test]
fn prepare_shapes_rewards_with_the_kl_penalty() {
    let p = policy(Estimator::ppo());
    let cfg = config(Estimator::ppo());
    let mut t = trainer(&p, cfg.clone());
    let prompts = prompts();
    let samples = t.sample(&p, &prompts).unwrap();
    let rewards = vec![1.0; samples.len()];
    let mut batch = RolloutBatch::from_samples(&prompts, samples, &rewards).unwrap();
    gpo_rl::prepare(&p, &mut batch, &cfg, PAD).unwrap();
    for r in &batch.rollouts {
        let n = r.response.len();
        assert_eq!(
            (r.ref_logprobs.len(), r.values.len(), r.advantages.len()),
            (n, n, n)
        );
        // B = 0 at initialisation: the policy is its reference; the behaviour log-probs come
        // from the KV-cache path, so they agree to rounding.
        for (a, b) in r.behaviour_logprobs.iter().zip(&r.ref_logprobs) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        let expect_last = 1.0 - cfg.kl.beta * r.kl[n - 1];
        assert!((r.token_rewards[n - 1] - expect_last).abs() < 1e-6);
        // Zero critic: A_0 = sum_k (gamma lambda)^k r_k with gamma = 1, lambda = 0.95, and
        // the return is A_0 + V_0 = A_0.
        let to_go: f32 = r
            .token_rewards
            .iter()
            .enumerate()
            .map(|(k, x)| 0.95f32.powi(k as i32) * x)
            .sum();
        assert!(
            (r.returns[0] - to_go).abs() < 1e-5,
            "{} vs {to_go}",
            r.returns[0]
        );
    }
}

#[test]
fn whitening_a_group_baseline_rescales_per_response_and_keeps_tied_groups_at_zero() {
    let p = policy(Estimator::grpo());
    let mut cfg = config(Estimator::grpo());
    cfg.kl.beta = 0.0;
    assert!(cfg.whiten_advantages);
    let mut t = trainer(&p, cfg.clone());
    let prompts = prompts();
    let samples = t.sample(&p, &prompts).unwrap();
    // Prompt 0's two answers differ (1, 0); every other prompt's two answers tie (0.5).
    let mut first_of_prompt0 = true;
    let rewards: Vec<f32> = samples
        .iter()
        .map(|s| match s.prompt_index {
            0 => f32::from(u8::from(std::mem::replace(&mut first_of_prompt0, false))),
            _ => 0.5,
        })
        .collect();
    let mut batch = RolloutBatch::from_samples(&prompts, samples, &rewards).unwrap();
    gpo_rl::prepare(&p, &mut batch, &cfg, PAD).unwrap();
    let per_response: Vec<f32> = batch
        .rollouts
        .iter()
        .map(|r| {
            assert!(r.advantages.iter().all(|&a| a == r.advantages[0]));
            r.advantages[0]
        })
        .collect();
    // GRPO gives prompt 0's answers +1 and -1 and the tied ones 0; over the 8 responses the
    // standard deviation is sqrt(2 / 8) = 0.5, so whitening makes them +2, -2 and 0,
    // whatever the responses' lengths.
    for (r, a) in batch.rollouts.iter().zip(&per_response) {
        let want = match (r.group, r.reward) {
            (0, x) if x > 0.5 => 2.0,
            (0, _) => -2.0,
            _ => 0.0,
        };
        assert!((a - want).abs() < 1e-4, "{per_response:?}");
    }
}

/// A policy after two training iterations (so that LoRA's B matrices and the value head are
/// non-zero and every variable can get a gradient); the scores of a fresh prepared buffer
/// under a differentiable pass, with the critic's values; the buffer's returns and the
/// weights of its tokens (summing to 1), `[batch, response_width]`.
fn trained_scores(est: Estimator) -> (Policy, gpo_rl::Scores, Tensor, Tensor) {
    let p = policy(est);
    let cfg = config(est);
    let mut t = trainer(&p, cfg.clone());
    iterate(&mut t, &p);
    iterate(&mut t, &p);
    let prompts = prompts();
    let samples = t.sample(&p, &prompts).unwrap();
    let rewards: Vec<f32> = samples.iter().map(|s| reward(&s.ids)).collect();
    let mut batch = RolloutBatch::from_samples(&prompts, samples, &rewards).unwrap();
    gpo_rl::prepare(&p, &mut batch, &cfg, PAD).unwrap();
    let all: Vec<usize> = (0..batch.len()).collect();
    let pairs = batch.pair_batch(&all, PAD, &Device::Cpu).unwrap();
    let temperature = cfg.sampling.temperature;
    let scores = p
        .score(&pairs, temperature, &Pass::train(), true, false)
        .unwrap();
    let width = pairs.response_width;
    let returns: Vec<f32> = batch
        .rollouts
        .iter()
        .flat_map(|r| {
            let pad = width - r.returns.len();
            r.returns
                .iter()
                .copied()
                .chain(std::iter::repeat_n(0.0, pad))
        })
        .collect();
    let returns = Tensor::from_vec(returns, (batch.len(), width), &Device::Cpu).unwrap();
    let mask = &pairs.response_mask;
    let tokens = f64::from(mask.sum_all().unwrap().to_scalar::<f32>().unwrap());
    (p, scores, returns, (mask / tokens).unwrap())
}

/// The unclipped value loss of `trained_scores`.
fn value_loss(scores: &gpo_rl::Scores, returns: &Tensor, weights: &Tensor) -> Tensor {
    let values = scores.values.as_ref().expect("values");
    gpo_rl::ppo_value_loss(values, &values.detach(), returns, weights, None).unwrap()
}

/// Whether `grads` holds a gradient with a non-zero entry for `var`.
fn has_gradient(grads: &GradStore, var: &Var) -> bool {
    grads.get(var.as_tensor()).is_some_and(|g| {
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        g.iter().any(|&x| x != 0.0)
    })
}

#[test]
fn no_value_loss_gradient_reaches_the_policy() {
    for est in [Estimator::ppo(), ppo_lora_critic()] {
        let (p, scores, returns, weights) = trained_scores(est);
        let grads = value_loss(&scores, &returns, &weights).backward().unwrap();
        for (name, var) in p.policy_vars() {
            assert!(!has_gradient(&grads, var), "{est:?}: {name}");
        }
        // The other way round: the policy's loss reaches every policy variable and no
        // critic variable.
        let grads = scores.logprobs.sum_all().unwrap().backward().unwrap();
        for (name, var) in p.policy_vars() {
            assert!(has_gradient(&grads, var), "{est:?}: {name}");
        }
        for (name, var) in critic_vars(&p) {
            assert!(!has_gradient(&grads, &var), "{est:?}: {name}");
        }
    }
}

#[test]
fn a_shared_critic_trains_the_policy_with_its_value_loss() {
    let est = ppo(CriticConfig {
        kind: CriticKind::Shared,
        ..CriticConfig::default()
    });
    let (p, scores, returns, weights) = trained_scores(est);
    let grads = value_loss(&scores, &returns, &weights).backward().unwrap();
    for (name, var) in p.policy_vars() {
        assert!(has_gradient(&grads, var), "{name}");
    }
}

#[test]
fn every_critic_variable_gets_a_gradient_from_the_value_loss() {
    for est in [Estimator::ppo(), ppo_lora_critic()] {
        let (p, scores, returns, weights) = trained_scores(est);
        let grads = value_loss(&scores, &returns, &weights).backward().unwrap();
        let vars = critic_vars(&p);
        let expected = match est.critic().unwrap().kind {
            CriticKind::Head | CriticKind::Shared => 2,
            CriticKind::Lora => 2 + p.policy_vars().len(),
        };
        assert_eq!(vars.len(), expected);
        for (name, var) in vars {
            assert!(has_gradient(&grads, &var), "{est:?}: {name}");
        }
    }
}

#[test]
fn critic_warm_up_leaves_the_policy_unchanged_while_the_critic_moves() {
    for kind in [CriticKind::Head, CriticKind::Lora] {
        let est = ppo(CriticConfig {
            kind,
            warmup_iterations: 2,
            ..CriticConfig::default()
        });
        let p = policy(est);
        let mut t = trainer(&p, config(est));
        let policy_before = values_of(p.policy_vars());
        let critic_before = values_of(&critic_vars(&p));
        for _ in 0..2 {
            let s = iterate(&mut t, &p);
            assert!(s.update.critic_only, "{kind:?}");
            assert_eq!((s.update.grad_norm, s.update.lr), (0.0, 0.0));
            assert!(s.update.critic_grad_norm > 0.0, "{kind:?}");
        }
        assert_eq!(max_diff(&values_of(p.policy_vars()), &policy_before), 0.0);
        assert!(max_diff(&values_of(&critic_vars(&p)), &critic_before) > 0.0);
        assert_eq!(t.optimizers().policy.step_count(), 0);
        // After the warm-up, the policy learns too.
        let s = iterate(&mut t, &p);
        assert!(!s.update.critic_only && s.update.grad_norm > 0.0);
        assert!(max_diff(&values_of(p.policy_vars()), &policy_before) > 0.0);
    }
}

#[test]
fn a_critic_other_than_the_configured_one_is_refused() {
    let head = policy(Estimator::ppo());
    let err = Trainer::new(&head, config(ppo_lora_critic()), 0, vec![EOS], PAD)
        .err()
        .expect("a head critic under a lora config")
        .to_string();
    assert!(
        err.contains("estimator.critic.kind = \"lora\"") && err.contains("critic is head"),
        "{err}"
    );
    let full = Policy::full(tiny_model(Trainable::Full)).unwrap();
    let err = full
        .with_critic(CriticKind::Lora, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a LoRA policy"), "{err}");
}
