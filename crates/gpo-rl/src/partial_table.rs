//! Partly written sub-tables of a configuration: a key the table leaves out keeps the
//! enclosing configuration's default, not the sub-type's own (`optimizer = { lr = 1e-5 }` in
//! `[defender.rl]` keeps the paper's betas, not PyTorch's).

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Reads a table over `default`: each key it gives replaces the default's, and unknown keys
/// are still refused by `T`'s own reader.
pub(crate) fn over_default<'de, D, T>(d: D, default: T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Serialize + DeserializeOwned,
{
    let given = Value::deserialize(d)?;
    let mut merged = serde_json::to_value(default).map_err(D::Error::custom)?;
    match (&mut merged, given) {
        (Value::Object(fields), Value::Object(given)) => fields.extend(given),
        (_, given) => merged = given,
    }
    serde_json::from_value(merged).map_err(D::Error::custom)
}
