//! Floats in JSON records: serde_json writes a NaN or infinite `f32` as `null`, so a record
//! of a diverged update reads back with `null` as NaN instead of failing to load.

use serde::{Deserialize, Deserializer};

/// An `f32`, or NaN where the JSON holds `null`.
pub(crate) fn f32_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}
