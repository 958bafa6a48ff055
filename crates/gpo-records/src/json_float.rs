//! Floats in JSON records: serde_json writes a NaN or infinite `f32` as `null`, so a record
//! of a diverged update reads back with `null` as NaN instead of failing to load.

use serde::{Deserialize, Deserializer};

/// An `f32`, or NaN where the JSON holds `null`.
pub(crate) fn f32_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

#[cfg(test)]
mod tests {
    use crate::UpdateStats;

    #[test]
    fn a_nan_loss_survives_a_json_round_trip() {
        let stats = UpdateStats {
            policy_loss: f32::NAN,
            approx_kl: f32::INFINITY,
            entropy: 0.5,
            ..UpdateStats::default()
        };
        let line = serde_json::to_string(&stats).unwrap();
        assert!(line.contains("\"policy_loss\":null"), "{line}");
        let back: UpdateStats = serde_json::from_str(&line).unwrap();
        assert!(back.policy_loss.is_nan() && back.approx_kl.is_nan());
        assert_eq!(back.entropy, 0.5);
        // A missing field is still an error, not NaN.
        assert!(serde_json::from_str::<UpdateStats>("{}").is_err());
    }
}
