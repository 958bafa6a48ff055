//! The paper's theoretical algorithm on finite games: KL-proximal (mirror-descent) steps from
//! uniform policies, i.e. multiplicative weights, with averaged and last iterates.
//!
//! The paper (docs/method.md, "Theory"):
//! `pi_{t+1} = argmax_pi E_{x~mu_t}[E_{y~pi} r - beta KL(pi || pi_t)]`, closed form
//! `pi_{t+1}(y|x) ∝ pi_t(y|x) exp(r(x,y) / beta)`, then `mu_{t+1}` likewise against
//! `pi_{t+1}`. With step `eta = 1 / beta`:
//!
//! - matrix game: `x_{t+1} ∝ x_t exp(eta A y_t)` and `y_{t+1} ∝ y_t exp(-eta A^T x')`;
//! - prompt-response game: `pi_{t+1}(j|i) ∝ pi_t(j|i) exp(eta r[i][j])` on every prompt (the
//!   KL of the proximal step is weighted by `mu_t` like the reward, so `mu_t` cancels, as in
//!   the paper's closed form) and `mu_{t+1}(i) ∝ mu_t(i) exp(-eta v_i(pi'))`,
//!   `v_i(pi) = sum_j pi(j|i) r[i][j]`;
//!
//! where `x' = x_{t+1}`, `pi' = pi_{t+1}` for [`UpdateOrder::Alternating`] (the paper's order)
//! and `x' = x_t`, `pi' = pi_t` for [`UpdateOrder::Simultaneous`].
//!
//! With the attacker's entropy bonus `-h H(mu)` (the paper's "Theory") its proximal step is
//! `argmin_y eta (<loss, y> - h H(y)) + KL(y || y_t)`, closed form
//! `ln y_{t+1} = (ln y_t - eta loss) / (1 + eta h) + const`.
//!
//! Step size ([`default_eta`]). Each player runs Hedge, whose regret against any payoff
//! sequence with range R over N actions is at most `ln N / eta + eta T R^2 / 8`
//! (Hoeffding's lemma; Cesa-Bianchi and Lugosi, Theorem 2.2). The Nash gap of the averaged
//! strategies is the sum of the two players' average regrets, so with
//! `eta = sqrt(8 ln N / T) / R` (the minimiser, `beta = R sqrt(T / (8 ln N))`, the paper's
//! `beta ~ sqrt(T)`) it is at most `R sqrt(2 ln N / T)`: the theorem's `O(T^-1/2)`.
//! Alternating play changes this by at most `R / T` (the attacker's average is over
//! `x_2..x_{T+1}` instead of `x_1..x_T`, and the defender's own step only raises
//! `x_{t+1}^T A y_t` above `x_t^T A y_t`). In the prompt-response game the defender faces a
//! fixed reward, so its regret is at most `ln N / eta` and the same bound holds.

use serde::Serialize;

use crate::game::Game;
use crate::simplex_ops::{check_distribution, dot, normalise_log};
use crate::{Error, Result};

/// The order of the two updates within one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Both players update against the other's current strategy.
    Simultaneous,
    /// The defender updates first, then the attacker against the defender's new strategy
    /// (the paper: `mu_{t+1}` takes its step against `pi_{t+1}`; the default).
    #[default]
    Alternating,
}

/// A defender strategy: one distribution over rows (matrix game) or one distribution over
/// responses per prompt (prompt-response game). Serialises as a JSON array, respectively an
/// array of arrays.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DefenderPolicy {
    /// `x` over the rows of a [`crate::MatrixGame`].
    Mixed(Vec<f64>),
    /// `pi(.|i)` for each prompt `i` of a [`crate::PromptResponseGame`].
    PerPrompt(Vec<Vec<f64>>),
}

/// The measurements after `iter` rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measure {
    /// Rounds played.
    pub iter: u64,
    /// `J(x_avg, y_avg)`: the payoff of the averaged strategies (unregularised).
    pub value_estimate: f64,
    /// Nash gap of the averaged strategies `(1/t) sum_{s<=t} (x_s, y_s)`.
    pub nash_gap_avg: f64,
    /// Nash gap of the last iterates `(x_{t+1}, y_{t+1})`, the strategies held after round `t`.
    pub nash_gap_last: f64,
    /// Gap of the averaged strategies in the entropy-regularised game (= `nash_gap_avg` at
    /// entropy 0).
    pub regularized_gap_avg: f64,
    /// Gap of the last iterates in the entropy-regularised game.
    pub regularized_gap_last: f64,
}

/// What a run returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The measurements after the last round.
    pub end: Measure,
    /// The step size used.
    pub eta: f64,
    /// Averaged defender strategy.
    pub defender_avg: DefenderPolicy,
    /// Averaged attacker strategy.
    pub attacker_avg: Vec<f64>,
    /// Last defender iterate.
    pub defender_last: DefenderPolicy,
    /// Last attacker iterate.
    pub attacker_last: Vec<f64>,
}

/// The step size that minimises the Hedge regret bound after `iters` rounds:
/// `eta = sqrt(8 ln N / T) / R`, N = `max_actions` (at least 2), R = `range` (1 when the
/// game is constant). Derivation in the module doc of `mwu.rs`.
pub fn default_eta(range: f64, max_actions: usize, iters: u64) -> f64 {
    let n = max_actions.max(2) as f64;
    let r = if range > 0.0 { range } else { 1.0 };
    (8.0 * n.ln() / iters.max(1) as f64).sqrt() / r
}

/// Options of a run; [`MwuBuilder::build`] validates them into an [`Mwu`].
#[derive(Debug, Clone)]
pub struct MwuBuilder {
    iters: u64,
    eta: Option<f64>,
    entropy: f64,
    order: UpdateOrder,
    trace_every: Option<u64>,
    initial: Option<(Vec<f64>, Vec<f64>)>,
}

impl MwuBuilder {
    /// `iters` rounds from uniform strategies, default step size, no entropy bonus,
    /// alternating updates, no trace.
    pub fn new(iters: u64) -> Self {
        Self {
            iters,
            eta: None,
            entropy: 0.0,
            order: UpdateOrder::default(),
            trace_every: None,
            initial: None,
        }
    }

    /// A fixed step size `eta = 1 / beta` instead of [`default_eta`].
    pub fn with_eta(mut self, eta: f64) -> Self {
        self.eta = Some(eta);
        self
    }

    /// The attacker's entropy-bonus coefficient `h` (0 = the unregularised game).
    pub fn with_entropy(mut self, h: f64) -> Self {
        self.entropy = h;
        self
    }

    /// The update order.
    pub fn with_order(mut self, order: UpdateOrder) -> Self {
        self.order = order;
        self
    }

    /// Report a [`Measure`] every `k` rounds.
    pub fn with_trace(mut self, k: u64) -> Self {
        self.trace_every = Some(k);
        self
    }

    /// Start a matrix game from `(x_1, y_1)` instead of uniform strategies (entries must be
    /// positive: a multiplicative update never revives a zero). Only for [`Game::Matrix`].
    pub fn with_initial(mut self, defender: Vec<f64>, attacker: Vec<f64>) -> Self {
        self.initial = Some((defender, attacker));
        self
    }

    /// Validates the options.
    pub fn build(self) -> Result<Mwu> {
        if self.iters == 0 {
            return Err(Error::Invalid(
                "iters is 0: run at least one iteration".into(),
            ));
        }
        if let Some(eta) = self.eta {
            if !(eta.is_finite() && eta > 0.0) {
                return Err(Error::Invalid(format!(
                    "eta is {eta}: the step size must be a finite number > 0 (or left out for the default)"
                )));
            }
        }
        if !(self.entropy.is_finite() && self.entropy >= 0.0) {
            return Err(Error::Invalid(format!(
                "entropy is {}: the attacker's entropy coefficient must be finite and >= 0",
                self.entropy
            )));
        }
        if self.trace_every == Some(0) {
            return Err(Error::Invalid(
                "trace is 0: give the number of iterations between trace lines (>= 1)".into(),
            ));
        }
        Ok(Mwu { opts: self })
    }
}

/// Validated options of the KL-proximal dynamics; [`Mwu::run`] plays them on a [`Game`].
#[derive(Debug, Clone)]
pub struct Mwu {
    opts: MwuBuilder,
}

/// One player's strategy in log space, plus the running sum for the average.
#[derive(Debug, Clone)]
struct Player {
    logp: Vec<f64>,
    p: Vec<f64>,
    sum: Vec<f64>,
}

impl Player {
    fn from_probs(p: &[f64]) -> Self {
        let mut player = Self {
            logp: p.iter().map(|q| q.ln()).collect(),
            p: vec![0.0; p.len()],
            sum: vec![0.0; p.len()],
        };
        normalise_log(&mut player.logp, &mut player.p);
        player
    }

    fn uniform(n: usize) -> Self {
        Self::from_probs(&vec![1.0 / n as f64; n])
    }

    fn accumulate(&mut self) {
        for (s, q) in self.sum.iter_mut().zip(&self.p) {
            *s += q;
        }
    }

    /// The KL-proximal step `argmax_p eta (<gain, p> + h H(p)) - KL(p || p_t)`.
    fn step(&mut self, eta: f64, gain: &[f64], h: f64) {
        let shrink = 1.0 / (1.0 + eta * h);
        for (l, g) in self.logp.iter_mut().zip(gain) {
            *l = (*l + eta * g) * shrink;
        }
        normalise_log(&mut self.logp, &mut self.p);
    }

    fn average(&self, t: u64) -> Vec<f64> {
        self.sum.iter().map(|s| s / t as f64).collect()
    }
}

/// The defender's state in either variant.
enum Defender {
    Mixed(Player),
    PerPrompt(Vec<Player>),
}

impl Defender {
    fn accumulate(&mut self) {
        match self {
            Self::Mixed(p) => p.accumulate(),
            Self::PerPrompt(ps) => ps.iter_mut().for_each(Player::accumulate),
        }
    }

    fn last(&self) -> DefenderPolicy {
        match self {
            Self::Mixed(p) => DefenderPolicy::Mixed(p.p.clone()),
            Self::PerPrompt(ps) => {
                DefenderPolicy::PerPrompt(ps.iter().map(|p| p.p.clone()).collect())
            }
        }
    }

    fn average(&self, t: u64) -> DefenderPolicy {
        match self {
            Self::Mixed(p) => DefenderPolicy::Mixed(p.average(t)),
            Self::PerPrompt(ps) => {
                DefenderPolicy::PerPrompt(ps.iter().map(|p| p.average(t)).collect())
            }
        }
    }
}

impl Game {
    /// The attacker's loss per action against the defender's current strategy:
    /// `A^T x`, or `v_i(pi)` per prompt.
    fn attacker_loss(&self, defender: &Defender) -> Vec<f64> {
        match (self, defender) {
            (Game::Matrix(g), Defender::Mixed(x)) => g.col_payoffs(&x.p),
            (Game::PromptResponse(g), Defender::PerPrompt(ps)) => ps
                .iter()
                .enumerate()
                .map(|(i, p)| dot(g.rewards_of(i), &p.p))
                .collect(),
            _ => unreachable!("the defender state is built from the game's variant"),
        }
    }

    /// The defender's KL-proximal step against the attacker strategy `y`.
    fn defender_step(&self, defender: &mut Defender, y: &[f64], eta: f64) {
        match (self, defender) {
            (Game::Matrix(g), Defender::Mixed(x)) => x.step(eta, &g.row_payoffs(y), 0.0),
            (Game::PromptResponse(g), Defender::PerPrompt(ps)) => {
                for (i, p) in ps.iter_mut().enumerate() {
                    p.step(eta, g.rewards_of(i), 0.0);
                }
            }
            _ => unreachable!("the defender state is built from the game's variant"),
        }
    }

    /// `(J(d, y), nash gap, regularised gap)` for strategies the dynamics produced.
    fn evaluate(&self, d: &DefenderPolicy, y: &[f64], h: f64) -> (f64, f64, f64) {
        match (self, d) {
            (Game::Matrix(g), DefenderPolicy::Mixed(x)) => (
                dot(&g.col_payoffs(x), y),
                g.gap_unchecked(x, y, 0.0),
                g.gap_unchecked(x, y, h),
            ),
            (Game::PromptResponse(g), DefenderPolicy::PerPrompt(pi)) => (
                dot(&g.prompt_values(pi), y),
                g.gap_unchecked(pi, y, 0.0),
                g.gap_unchecked(pi, y, h),
            ),
            _ => unreachable!("the defender policy is built from the game's variant"),
        }
    }

    /// The Nash gap (the paper's NEGap) of a defender policy and an attacker strategy of
    /// either variant; see [`crate::MatrixGame::nash_gap`] and
    /// [`crate::PromptResponseGame::nash_gap`].
    pub fn nash_gap(&self, defender: &DefenderPolicy, attacker: &[f64]) -> Result<f64> {
        match (self, defender) {
            (Game::Matrix(g), DefenderPolicy::Mixed(x)) => g.nash_gap(x, attacker),
            (Game::PromptResponse(g), DefenderPolicy::PerPrompt(pi)) => g.nash_gap(pi, attacker),
            _ => Err(Error::Invalid(format!(
                "a {:?} game needs a {} defender policy",
                self.variant(),
                match self {
                    Game::Matrix(_) => "mixed (one distribution)",
                    Game::PromptResponse(_) => "per-prompt (one distribution per prompt)",
                }
            ))),
        }
    }
}

impl Mwu {
    /// Shorthand for [`MwuBuilder::new`].
    pub fn builder(iters: u64) -> MwuBuilder {
        MwuBuilder::new(iters)
    }

    /// The step size this run uses on `game`.
    pub fn eta_for(&self, game: &Game) -> f64 {
        self.opts
            .eta
            .unwrap_or_else(|| default_eta(game.range(), game.max_actions(), self.opts.iters))
    }

    /// Plays `iters` rounds on `game`, calling `on_trace` every `trace` rounds.
    pub fn run(&self, game: &Game, mut on_trace: impl FnMut(&Measure)) -> Result<Outcome> {
        let o = &self.opts;
        let eta = self.eta_for(game);
        let h = o.entropy;
        let (mut defender, mut attacker) = self.initial_state(game)?;
        let measure = |t: u64, d: &Defender, a: &Player| {
            let (value, gap_avg, reg_avg) = game.evaluate(&d.average(t), &a.average(t), h);
            let (_, gap_last, reg_last) = game.evaluate(&d.last(), &a.p, h);
            Measure {
                iter: t,
                value_estimate: value,
                nash_gap_avg: gap_avg,
                nash_gap_last: gap_last,
                regularized_gap_avg: reg_avg,
                regularized_gap_last: reg_last,
            }
        };
        let mut neg_loss = vec![0.0; attacker.p.len()];
        for t in 1..=o.iters {
            defender.accumulate();
            attacker.accumulate();
            let before = match o.order {
                UpdateOrder::Simultaneous => Some(game.attacker_loss(&defender)),
                UpdateOrder::Alternating => None,
            };
            game.defender_step(&mut defender, &attacker.p, eta);
            let loss = before.unwrap_or_else(|| game.attacker_loss(&defender));
            for (n, l) in neg_loss.iter_mut().zip(&loss) {
                *n = -l;
            }
            attacker.step(eta, &neg_loss, h);
            if o.trace_every.is_some_and(|k| t % k == 0) {
                on_trace(&measure(t, &defender, &attacker));
            }
        }
        let end = measure(o.iters, &defender, &attacker);
        let finite = [
            end.value_estimate,
            end.nash_gap_avg,
            end.nash_gap_last,
            end.regularized_gap_avg,
            end.regularized_gap_last,
        ]
        .iter()
        .all(|x| x.is_finite());
        if !finite || !attacker.p.iter().all(|x| x.is_finite()) {
            return Err(Error::Invalid(format!(
                "the play overflowed f64 (step size eta {eta:e} on payoffs of range {:e}): \
                 scale the payoffs down or choose a smaller eta",
                game.range()
            )));
        }
        Ok(Outcome {
            end,
            eta,
            defender_avg: defender.average(o.iters),
            attacker_avg: attacker.average(o.iters),
            defender_last: defender.last(),
            attacker_last: attacker.p.clone(),
        })
    }

    fn initial_state(&self, game: &Game) -> Result<(Defender, Player)> {
        match (game, &self.opts.initial) {
            (Game::Matrix(g), None) => Ok((
                Defender::Mixed(Player::uniform(g.rows())),
                Player::uniform(g.cols()),
            )),
            (Game::Matrix(g), Some((x, y))) => {
                check_distribution("initial defender strategy", x, g.rows())?;
                check_distribution("initial attacker strategy", y, g.cols())?;
                if x.iter().chain(y).any(|&q| q <= 0.0) {
                    return Err(Error::Invalid(
                        "initial strategies must be positive everywhere: a multiplicative update never revives a zero".into(),
                    ));
                }
                Ok((
                    Defender::Mixed(Player::from_probs(x)),
                    Player::from_probs(y),
                ))
            }
            (Game::PromptResponse(g), None) => Ok((
                Defender::PerPrompt(
                    (0..g.prompts())
                        .map(|_| Player::uniform(g.responses()))
                        .collect(),
                ),
                Player::uniform(g.prompts()),
            )),
            (Game::PromptResponse(_), Some(_)) => Err(Error::Invalid(
                "initial strategies are supported for matrix games only".into(),
            )),
        }
    }
}
