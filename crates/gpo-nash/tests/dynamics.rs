//! The theory of the paper (docs/method.md, "Theory") checked on finite games: the averaged
//! KL-proximal iterates reach a Nash equilibrium at rate T^-1/2, the last iterates do not,
//! and the attacker's entropy bonus makes the last iterates converge to the regularised
//! equilibrium.

use gpo_nash::{DefenderPolicy, Game, MatrixGame, Mwu, PromptResponseGame, UpdateOrder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ORDERS: [UpdateOrder; 2] = [UpdateOrder::Alternating, UpdateOrder::Simultaneous];
const HORIZONS: [u64; 4] = [100, 400, 1600, 6400];

/// Rock-paper-scissors: value 0, unique equilibrium uniform/uniform.
fn rps() -> MatrixGame {
    MatrixGame::new(vec![
        vec![0.0, -1.0, 1.0],
        vec![1.0, 0.0, -1.0],
        vec![-1.0, 1.0, 0.0],
    ])
    .unwrap()
}

/// RPS where rock beats scissors by 2. Skew-symmetric, so the value is 0; `A y = 0` gives
/// `-y1 + 2 y2 = 0, y0 - y2 = 0, -2 y0 + y1 = 0`, i.e. the unique equilibrium
/// y = x = (1/4, 1/2, 1/4), which is not where uniform play starts.
fn biased_rps() -> MatrixGame {
    MatrixGame::new(vec![
        vec![0.0, -1.0, 2.0],
        vec![1.0, 0.0, -1.0],
        vec![-2.0, 1.0, 0.0],
    ])
    .unwrap()
}

/// An m x n game with entries uniform in [0, 1) from a seeded ChaCha8 stream.
fn random_game(seed: u64, m: usize, n: usize) -> MatrixGame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    MatrixGame::new(
        (0..m)
            .map(|_| (0..n).map(|_| rng.random::<f64>()).collect())
            .collect(),
    )
    .unwrap()
}

/// A start away from RPS's equilibrium (from uniform, RPS never moves: see
/// `rps_from_uniform_play_is_already_at_equilibrium`).
fn off_centre() -> (Vec<f64>, Vec<f64>) {
    (vec![0.5, 0.3, 0.2], vec![0.2, 0.3, 0.5])
}

/// An optional start `(x_1, y_1)`; `None` = uniform.
type Start = Option<(Vec<f64>, Vec<f64>)>;

/// The cases of the rate tests: (name, game, start).
fn cases() -> Vec<(String, MatrixGame, Start)> {
    let mut c = vec![
        (
            "rps (off-centre start)".to_string(),
            rps(),
            Some(off_centre()),
        ),
        ("biased rps".to_string(), biased_rps(), None),
    ];
    for seed in 0..4 {
        c.push((
            format!("random 5x7 seed {seed}"),
            random_game(seed, 5, 7),
            None,
        ));
    }
    c
}

fn run(
    game: &MatrixGame,
    iters: u64,
    order: UpdateOrder,
    init: &Start,
    trace: u64,
) -> (gpo_nash::Outcome, Vec<gpo_nash::Measure>) {
    let mut b = Mwu::builder(iters).with_order(order).with_trace(trace);
    if let Some((x, y)) = init {
        b = b.with_initial(x.clone(), y.clone());
    }
    let mut trace_points = Vec::new();
    let out = b
        .build()
        .unwrap()
        .run(&Game::Matrix(game.clone()), |m| trace_points.push(*m))
        .unwrap();
    (out, trace_points)
}

/// Least-squares slope of ln(gap) against ln(T).
fn log_log_slope(points: &[(u64, f64)]) -> f64 {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|&(t, g)| ((t as f64).ln(), g.ln()))
        .collect();
    let n = xy.len() as f64;
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / n;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}

/// The guarantee of the default step size (module doc of `mwu.rs`):
/// gap <= R sqrt(2 ln N / T) + R / T.
fn regret_bound(game: &MatrixGame, t: u64) -> f64 {
    let n = game.rows().max(game.cols()) as f64;
    game.range() * (2.0 * n.ln() / t as f64).sqrt() + game.range() / t as f64
}

#[test]
fn averaged_gap_falls_like_t_to_the_minus_half() {
    // Each T runs with the default eta for that T. Two statistics:
    // - the gap at T. Play cycles around the equilibrium and the averages' error depends on
    //   where in its cycle the run stops, so single values wobble around the T^-1/2 trend
    //   (measured slopes -0.405 .. -0.574 over these 12 runs); tolerance +-0.15;
    // - the envelope max_{T/2 <= t <= T} gap_avg(t) (trace every T/20), which removes the
    //   phase (measured -0.41 .. -0.53); tolerance +-0.1.
    for order in ORDERS {
        for (name, game, init) in cases() {
            let mut at_end = Vec::new();
            let mut envelope = Vec::new();
            for t in HORIZONS {
                let (out, trace) = run(&game, t, order, &init, t / 20);
                let env = trace
                    .iter()
                    .filter(|m| m.iter >= t / 2)
                    .map(|m| m.nash_gap_avg)
                    .fold(0.0, f64::max);
                at_end.push((t, out.end.nash_gap_avg));
                envelope.push((t, env));
            }
            let s_end = log_log_slope(&at_end);
            let s_env = log_log_slope(&envelope);
            eprintln!("{order:?} {name}: slope at T {s_end:.3}, envelope slope {s_env:.3}");
            assert!(
                (s_end + 0.5).abs() <= 0.15,
                "{order:?} {name}: {s_end} {at_end:?}"
            );
            assert!(
                (s_env + 0.5).abs() <= 0.1,
                "{order:?} {name}: {s_env} {envelope:?}"
            );
        }
    }
}

#[test]
fn averaged_gap_stays_below_the_regret_bound() {
    // A theorem, not a fit: no tolerance beyond rounding (measured ratios <= 0.43).
    for order in ORDERS {
        for (name, game, init) in cases() {
            for t in HORIZONS {
                let (out, _) = run(&game, t, order, &init, t);
                let bound = regret_bound(&game, t);
                assert!(
                    out.end.nash_gap_avg <= bound,
                    "{order:?} {name} T={t}: {} > {bound}",
                    out.end.nash_gap_avg
                );
            }
        }
    }
}

#[test]
fn value_estimate_converges_to_the_exact_value() {
    // min_j (x^T A)_j <= value <= max_i (A y)_i and the same two bounds hold for x^T A y, so
    // |value_estimate - value| <= nash_gap_avg (rounding slack 1e-12). At T = 6400 the
    // measured error is <= 1.8e-3 on games of range ~1; tolerance 5e-3 * R.
    for order in ORDERS {
        for (name, game, init) in cases() {
            let exact = game.exact_value().unwrap();
            for t in HORIZONS {
                let (out, _) = run(&game, t, order, &init, t);
                let err = (out.end.value_estimate - exact).abs();
                assert!(
                    err <= out.end.nash_gap_avg + 1e-12,
                    "{order:?} {name} T={t}"
                );
                if t == 6400 {
                    assert!(err <= 5e-3 * game.range(), "{order:?} {name}: {err}");
                }
            }
        }
    }
}

#[test]
fn rps_from_uniform_play_is_already_at_equilibrium() {
    // A * uniform = 0, so every update adds exactly 0 to the log-weights: the gap is 0 at
    // every T and the rate tests start RPS elsewhere.
    for order in ORDERS {
        let (out, _) = run(&rps(), 1000, order, &None, 1000);
        assert_eq!(out.end.nash_gap_avg, 0.0);
        assert_eq!(out.end.nash_gap_last, 0.0);
        assert_eq!(out.end.value_estimate, 0.0);
    }
}

#[test]
fn last_iterates_cycle_without_regularisation() {
    // The averages converge (final gap <= 0.03, measured <= 0.022) while the last iterates
    // orbit the equilibrium: over the second half of the run their gap never drops below
    // 0.2 (measured minimum 0.27; the gap at the start is 1 for rps off-centre and 2 for
    // biased rps against uniform).
    let games = [
        ("rps (off-centre start)", rps(), Some(off_centre())),
        ("biased rps", biased_rps(), None),
    ];
    for order in ORDERS {
        for (name, game, init) in &games {
            let (out, trace) = run(game, 6400, order, init, 400);
            let min_last = trace[trace.len() / 2..]
                .iter()
                .map(|m| m.nash_gap_last)
                .fold(f64::INFINITY, f64::min);
            assert!(out.end.nash_gap_avg <= 0.03, "{order:?} {name}");
            assert!(min_last >= 0.2, "{order:?} {name}: {min_last}");
        }
    }
}

/// Runs with a fixed step and entropy coefficient; returns the outcome.
fn regularised(
    game: &MatrixGame,
    init: &Start,
    order: UpdateOrder,
    eta: f64,
    h: f64,
    iters: u64,
) -> gpo_nash::Outcome {
    let mut b = Mwu::builder(iters)
        .with_order(order)
        .with_eta(eta)
        .with_entropy(h);
    if let Some((x, y)) = init {
        b = b.with_initial(x.clone(), y.clone());
    }
    b.build()
        .unwrap()
        .run(&Game::Matrix(game.clone()), |_| {})
        .unwrap()
}

#[test]
fn attacker_entropy_makes_the_last_iterates_converge() {
    // eta = 0.1, h = 0.1, 4000 alternating rounds. The regularised gap is 0 exactly at the
    // regularised equilibrium; measured at the end: 7.7e-10 (biased rps), 6.9e-10 (rps).
    // Tolerance 1e-8. The same runs with h = 0 end with last-iterate gaps 0.35 and 0.54.
    let games = [
        ("rps (off-centre start)", rps(), Some(off_centre())),
        ("biased rps", biased_rps(), None),
    ];
    for (name, game, init) in &games {
        let out = regularised(game, init, UpdateOrder::Alternating, 0.1, 0.1, 4000);
        eprintln!(
            "{name}: regularised last gap {:e}",
            out.end.regularized_gap_last
        );
        assert!(
            out.end.regularized_gap_last <= 1e-8,
            "{name}: {}",
            out.end.regularized_gap_last
        );
        let plain = regularised(game, init, UpdateOrder::Alternating, 0.1, 0.0, 4000);
        assert!(plain.end.nash_gap_last >= 0.2, "{name}");
    }
}

#[test]
fn regularised_rps_converges_to_uniform() {
    // In RPS the regularised equilibrium is uniform for both (A^T x = 0 at uniform x, so the
    // attacker's soft best reply softmax(-A^T x / h) is uniform, and every x is a best reply
    // to uniform y). Measured distance at the end: 4e-10.
    let out = regularised(
        &rps(),
        &Some(off_centre()),
        UpdateOrder::Alternating,
        0.1,
        0.1,
        4000,
    );
    let DefenderPolicy::Mixed(x) = &out.defender_last else {
        panic!("matrix game")
    };
    eprintln!(
        "regularised rps last iterates {x:?} {:?}",
        out.attacker_last
    );
    for p in x.iter().chain(&out.attacker_last) {
        assert!(
            (p - 1.0 / 3.0).abs() < 1e-8,
            "{x:?} {:?}",
            out.attacker_last
        );
    }
}

#[test]
fn simultaneous_regularised_play_converges_with_a_step_small_against_h() {
    // Simultaneous updates expand the cycle by a factor ~(1 + eta^2) per round while the
    // entropy contracts by ~(1 - eta h): they converge when eta is small against h (with
    // eta = 0.2, h = 0.1 they do not). eta = h = 0.1, 8000 rounds: measured
    // regularised gap at the end 6.4e-10 (biased rps); tolerance 1e-8.
    let out = regularised(
        &biased_rps(),
        &None,
        UpdateOrder::Simultaneous,
        0.1,
        0.1,
        8000,
    );
    eprintln!(
        "simultaneous regularised gap {:e}",
        out.end.regularized_gap_last
    );
    assert!(
        out.end.regularized_gap_last <= 1e-8,
        "{}",
        out.end.regularized_gap_last
    );
}

fn random_reward(seed: u64, prompts: usize, responses: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..prompts)
        .map(|_| (0..responses).map(|_| rng.random::<f64>()).collect())
        .collect()
}

#[test]
fn prompt_response_value_matches_the_lp_on_its_normal_form() {
    // The normal form of a 3-prompt, 3-response game: a pure defender strategy is one response
    // per prompt (27 rows), the attacker picks a prompt (3 columns). The LP value must equal
    // the closed form min_i max_j r[i][j].
    let r = random_reward(11, 3, 3);
    let mut rows = Vec::new();
    for plan in 0..27usize {
        let choice = [plan % 3, (plan / 3) % 3, plan / 9];
        rows.push((0..3).map(|i| r[i][choice[i]]).collect());
    }
    let lp = MatrixGame::new(rows).unwrap().exact_value().unwrap();
    let closed = PromptResponseGame::new(r).unwrap().exact_value();
    assert!((lp - closed).abs() < 1e-12, "{lp} vs {closed}");
}

#[test]
fn prompt_response_play_converges_to_its_value() {
    // Default eta, T = 6400, 4 prompts x 5 responses: the averaged gap is below its
    // regret bound R sqrt(2 ln 5 / T) + R / T, and the value estimate within the gap of
    // min_i max_j r[i][j] (measured gap 9.3e-3 against a bound of 1.9e-2).
    let game = PromptResponseGame::new(random_reward(3, 4, 5)).unwrap();
    let exact = game.exact_value();
    let bound = game.range() * ((2.0 * 5f64.ln() / 6400.0).sqrt() + 1.0 / 6400.0);
    for order in ORDERS {
        let out = Mwu::builder(6400)
            .with_order(order)
            .build()
            .unwrap()
            .run(&Game::PromptResponse(game.clone()), |_| {})
            .unwrap();
        eprintln!(
            "prompt-response {order:?}: gap {:e}, bound {bound:e}",
            out.end.nash_gap_avg
        );
        assert!(
            out.end.nash_gap_avg <= bound,
            "{order:?}: {}",
            out.end.nash_gap_avg
        );
        assert!((out.end.value_estimate - exact).abs() <= out.end.nash_gap_avg + 1e-12);
    }
}

#[test]
fn prompt_entropy_spreads_the_attacker_as_a_softmax() {
    // With the bonus h H(mu) the regularised equilibrium is closed-form: the defender is
    // greedy on every prompt (its reward does not depend on mu) and the attacker plays
    // mu_i ∝ exp(-max_j r[i][j] / h). eta = 0.5, h = 0.2, 4000 rounds; tolerance 1e-6
    // (the defender's remaining non-greedy mass decays like exp(-eta t Δ); measured
    // regularised gap at the end: 1e-16).
    let r = random_reward(5, 4, 3);
    let h = 0.2;
    let best: Vec<f64> = r
        .iter()
        .map(|row| row.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .collect();
    let z: f64 = best.iter().map(|v| (-v / h).exp()).sum();
    let game = Game::PromptResponse(PromptResponseGame::new(r).unwrap());
    let out = Mwu::builder(4000)
        .with_eta(0.5)
        .with_entropy(h)
        .build()
        .unwrap()
        .run(&game, |_| {})
        .unwrap();
    eprintln!(
        "prompt entropy: mu {:?}, reg gap {:e}",
        out.attacker_last, out.end.regularized_gap_last
    );
    for (mu, v) in out.attacker_last.iter().zip(&best) {
        assert!(
            (mu - (-v / h).exp() / z).abs() < 1e-6,
            "{:?}",
            out.attacker_last
        );
    }
    assert!(out.end.regularized_gap_last < 1e-6);
}

#[test]
fn a_step_size_that_overflows_is_an_error_not_null_results() {
    // eta 1e308 on gains up to 2 (uniform play is not this game's equilibrium, so the gains
    // differ): eta x gain overflows f64 in the first step.
    let err = Mwu::builder(10)
        .with_eta(1e308)
        .build()
        .unwrap()
        .run(&Game::Matrix(biased_rps()), |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("overflowed") && err.contains("smaller eta"),
        "{err}"
    );
}
