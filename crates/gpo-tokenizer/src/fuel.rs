//! The render budget (minijinja's fuel, see `chat.rs`) for the work gpo's own template
//! functions do. The engine charges for the values they return, not for producing them, so
//! printing `messages * 1000000` or `tojson(indent=10**9)` would build gigabytes before any
//! charge; these functions charge as they go instead.

use minijinja::Error;

/// Draws `n` units from the render's fuel (`State::consume_fuel`), failing when it runs out.
pub(crate) type Charge<'a> = &'a dyn Fn(u64) -> Result<(), Error>;

/// Bytes of text one unit pays for, minijinja's own rate.
const BYTES_PER_UNIT: usize = 64;

/// The units of visiting one value and writing `bytes` of text for it.
pub(crate) fn units(bytes: usize) -> u64 {
    1 + (bytes / BYTES_PER_UNIT) as u64
}
