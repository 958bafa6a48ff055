//! The bootstrap intervals against a reference implementation on committed fixtures.
//!
//! `fixtures/bootstrap.json` is written by `fixtures/bootstrap.py` (numpy): per case, the
//! values, the resample indices and numpy's percentile-bootstrap interval over exactly those
//! indices. Fed the same indices, ours must agree to 1e-12 (both sum f64s in index order;
//! the only differences are summation rounding, far below that).
//! `fixtures/cluster_bootstrap.json` is written the same way by
//! `fixtures/cluster_bootstrap.py`: clusters (one per prompt, its samples' values), indices
//! drawing clusters, and numpy's interval of the mean over the drawn samples; same 1e-12.

use gpo_eval::Bootstrap;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    resamples: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    values: Vec<f64>,
    indices: Vec<Vec<usize>>,
    mean: f64,
    ci95: [f64; 2],
    ci90: [f64; 2],
}

const TOL: f64 = 1e-12;

#[derive(Deserialize)]
struct ClusterFixture {
    resamples: usize,
    cases: Vec<ClusterCase>,
}

#[derive(Deserialize)]
struct ClusterCase {
    name: String,
    clusters: Vec<Vec<f64>>,
    indices: Vec<Vec<usize>>,
    mean: f64,
    ci95: [f64; 2],
    ci90: [f64; 2],
}

fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    serde_json::from_str(&text).expect("fixture json")
}

fn fixture() -> Fixture {
    read("bootstrap.json")
}

#[test]
fn intervals_match_numpy_on_the_same_resamples() {
    let fx = fixture();
    assert_eq!(fx.cases.len(), 2);
    for case in &fx.cases {
        assert_eq!(case.indices.len(), fx.resamples);
        for (level, want) in [(0.95, case.ci95), (0.90, case.ci90)] {
            let got = Bootstrap::default()
                .with_level(level)
                .interval_from_indices("x", &case.values, &case.indices)
                .unwrap();
            assert!((got.mean - case.mean).abs() < TOL, "{} mean", case.name);
            assert!(
                (got.lo - want[0]).abs() < TOL && (got.hi - want[1]).abs() < TOL,
                "{} at {level}: got [{}, {}], numpy [{}, {}]",
                case.name,
                got.lo,
                got.hi,
                want[0],
                want[1]
            );
        }
    }
}

/// Our own seeded ChaCha8 resamples differ from numpy's, so only Monte Carlo agreement is
/// expected: with B=2000 here and 500 in the fixture, the ends of the interval agree to
/// within 0.05 (the binary case moves in steps of 1/40 = 0.025).
#[test]
fn seeded_intervals_agree_with_numpy_up_to_monte_carlo_error() {
    for case in fixture().cases {
        let got = Bootstrap::default().interval("x", &case.values).unwrap();
        assert!(
            (got.lo - case.ci95[0]).abs() < 0.05 && (got.hi - case.ci95[1]).abs() < 0.05,
            "{}: got [{}, {}], numpy [{}, {}]",
            case.name,
            got.lo,
            got.hi,
            case.ci95[0],
            case.ci95[1]
        );
    }
}

#[test]
fn cluster_intervals_match_numpy_on_the_same_resamples() {
    let fx: ClusterFixture = read("cluster_bootstrap.json");
    assert_eq!(fx.cases.len(), 4);
    for case in &fx.cases {
        assert_eq!(case.indices.len(), fx.resamples);
        let clusters: Vec<&[f64]> = case.clusters.iter().map(Vec::as_slice).collect();
        for (level, want) in [(0.95, case.ci95), (0.90, case.ci90)] {
            let got = Bootstrap::default()
                .with_level(level)
                .cluster_interval_from_indices("x", &clusters, &case.indices)
                .unwrap();
            assert_eq!(got.n, clusters.len());
            assert!((got.mean - case.mean).abs() < TOL, "{} mean", case.name);
            assert!(
                (got.lo - want[0]).abs() < TOL && (got.hi - want[1]).abs() < TOL,
                "{} at {level}: got [{}, {}], numpy [{}, {}]",
                case.name,
                got.lo,
                got.hi,
                want[0],
                want[1]
            );
        }
    }
}

/// The fixture's `singletons` are `bootstrap.json`'s `attack-success` values, one per
/// cluster, drawn with the same seed: one sample per prompt is the plain bootstrap.
#[test]
fn singleton_clusters_are_the_plain_bootstrap_index_for_index() {
    let plain = &fixture().cases[0];
    let fx: ClusterFixture = read("cluster_bootstrap.json");
    let single = &fx.cases[0];
    assert_eq!(
        (plain.name.as_str(), single.name.as_str()),
        ("attack-success", "singletons")
    );
    assert_eq!(plain.indices, single.indices);
    let clusters: Vec<&[f64]> = single.clusters.iter().map(Vec::as_slice).collect();
    let b = Bootstrap::default();
    let got = b
        .cluster_interval_from_indices("x", &clusters, &single.indices)
        .unwrap();
    let want = b
        .interval_from_indices("x", &plain.values, &plain.indices)
        .unwrap();
    assert_eq!(got, want);
}
