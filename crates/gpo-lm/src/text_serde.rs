//! Serde for the settings types spelled as one string (`"cuda:1"`, `"bf16"`): through their
//! `Display` and `FromStr`, so a config file and the command line read the same spelling and
//! a config file gets the same error message.

/// Implements `Serialize` (as `Display`) and `Deserialize` (through `FromStr`) for `$t`.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_as_text;
