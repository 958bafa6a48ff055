//! AdamW state as named tensors and as a safetensors file, so training resumes exactly.
//!
//! Keys: `step` (i64 scalar: optimiser steps taken), and per parameter `NAME`:
//! `m.NAME` and `v.NAME` (first and second moments, the parameter's shape, f32 or f64) and
//! `step.NAME` (i64 scalar: updates applied to that parameter, PyTorch's per-parameter
//! `state["step"]`), and for a bf16 or f16 parameter `master.NAME` (f32, its shape: the
//! master copy the updates apply to, finer than the rounded parameter). The file's metadata
//! records the hyper-parameters for readers; loading ignores them, so a run may resume
//! with, say, a different learning rate.
//!
//! State without `master.NAME` (format `gpo-optim/adamw-v1`, or saved while the parameter
//! was f32) still loads: the master is re-created from the variable, which must then hold
//! the checkpoint's weights already (as gpo-rl's checkpoint loading arranges). The run
//! continues from the rounded weights, losing only the saved run's sub-ulp progress. A
//! `master.NAME` for a parameter that is f32 now is ignored: the variable's own value is
//! what an f32 parameter continues from.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::adamw::{master_of, AdamW, Moments, Slot};
use crate::{Error, Result};

/// The `format` metadata value of files written by [`AdamW::save`].
pub const STATE_FORMAT: &str = "gpo-optim/adamw-v2";

/// Older formats [`AdamW::load`] reads: v1 has no master copies.
const OLDER_FORMATS: [&str; 1] = ["gpo-optim/adamw-v1"];

/// At most this many names are listed in a mismatch message.
const LIST_MAX: usize = 5;

impl AdamW {
    /// The state as named CPU tensors (copies: they do not change with later steps). Keys are
    /// described in the module documentation of `state.rs`: `step`, `m.NAME`, `v.NAME`,
    /// `step.NAME` and, for half-precision parameters, `master.NAME`.
    pub fn state_dict(&self) -> Result<BTreeMap<String, Tensor>> {
        let cpu = Device::Cpu;
        let mut out = BTreeMap::new();
        out.insert("step".to_string(), Tensor::new(to_i64(self.step)?, &cpu)?);
        for s in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Host { m, v } => (
                    Tensor::from_slice(m, s.var.shape(), &cpu)?,
                    Tensor::from_slice(v, s.var.shape(), &cpu)?,
                ),
                Moments::Tensors { m, v } => {
                    (m.to_device(&cpu)?.copy()?, v.to_device(&cpu)?.copy()?)
                }
            };
            out.insert(format!("m.{}", s.name), m);
            out.insert(format!("v.{}", s.name), v);
            out.insert(
                format!("step.{}", s.name),
                Tensor::new(to_i64(s.step)?, &cpu)?,
            );
            if let Some(master) = &s.master {
                out.insert(
                    format!("master.{}", s.name),
                    master.to_device(&cpu)?.copy()?,
                );
            }
        }
        Ok(out)
    }

    /// Restores state from [`AdamW::state_dict`]'s keys. Every parameter must have its `m`,
    /// `v` and `step` entries with its shape, and every entry must belong to a parameter;
    /// otherwise nothing changes and the error lists what is missing or extra. A missing
    /// `master` entry is re-created from the variable (module documentation).
    pub fn load_state_dict(&mut self, state: HashMap<String, Tensor>) -> Result<()> {
        self.load_from(state, "optimiser state dict")
    }

    /// Writes [`AdamW::state_dict`] to `path` as safetensors, atomically: the data goes to a
    /// temporary file beside `path`, is synced, then renamed over `path`, so a crash never
    /// leaves a partial file under that name. The parent directory must exist.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let state = self.state_dict()?;
        let c = &self.cfg;
        let metadata: HashMap<String, String> = [
            ("format", STATE_FORMAT.to_string()),
            ("lr", c.lr.to_string()),
            ("beta1", c.beta1.to_string()),
            ("beta2", c.beta2.to_string()),
            ("eps", c.eps.to_string()),
            ("weight_decay", c.weight_decay.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        write_atomic(path, |tmp| {
            let bytes = safetensors::tensor::serialize(state, Some(metadata))
                .map_err(std::io::Error::other)?;
            std::fs::write(tmp, with_sorted_metadata(bytes))
        })
    }

    /// Restores state written by [`AdamW::save`], with the checks of
    /// [`AdamW::load_state_dict`]; errors name `path`.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "read",
            path: path.into(),
            source,
        })?;
        let format_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Format {
            path: path.into(),
            source,
        };
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| format_err(Box::new(e)))?;
        let format = meta.metadata().as_ref().and_then(|m| m.get("format"));
        let readable = |f: &str| f == STATE_FORMAT || OLDER_FORMATS.contains(&f);
        if let Some(f) = format.filter(|f| !readable(f)) {
            return Err(Error::StateMismatch {
                origin: path.display().to_string(),
                msg: format!("format `{f}` is not gpo's AdamW state (`{STATE_FORMAT}`)"),
            });
        }
        let state = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| format_err(Box::new(e)))?;
        self.load_from(state, &path.display().to_string())
    }

    fn load_from(&mut self, mut state: HashMap<String, Tensor>, origin: &str) -> Result<()> {
        let mismatch = |msg: String| Error::StateMismatch {
            origin: origin.to_string(),
            msg,
        };
        let step = state.remove("step").ok_or_else(|| {
            mismatch("no `step` entry: this is not AdamW state written by gpo (AdamW::save)".into())
        })?;
        let step = read_count(&step)
            .ok_or_else(|| mismatch("`step` is not a non-negative integer scalar".into()))?;
        let missing: Vec<&str> = self
            .slots
            .iter()
            .filter(|s| {
                !["m", "v", "step"]
                    .iter()
                    .all(|k| state.contains_key(&format!("{k}.{}", s.name)))
            })
            .map(|s| s.name.as_str())
            .collect();
        let known: std::collections::HashSet<String> = self
            .slots
            .iter()
            .flat_map(|s| ["m", "v", "step", "master"].map(|k| format!("{k}.{}", s.name)))
            .collect();
        let mut extra: Vec<&str> = state
            .keys()
            .filter(|k| !known.contains(*k))
            .map(String::as_str)
            .collect();
        extra.sort_unstable();
        if !missing.is_empty() || !extra.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("no state for parameter(s) {}", list(&missing)));
            }
            if !extra.is_empty() {
                parts.push(format!(
                    "entries for no parameter of this optimiser: {}",
                    list(&extra)
                ));
            }
            return Err(mismatch(format!(
                "{}; was it saved for another model or LoRA setting?",
                parts.join("; ")
            )));
        }
        // Check and convert everything before changing anything.
        let mut restored = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            restored.push(restore_slot(s, &mut state, &mismatch)?);
        }
        for (s, r) in self.slots.iter_mut().zip(restored) {
            s.moments = r.moments;
            s.step = r.step;
            s.master = r.master;
        }
        self.step = step;
        Ok(())
    }
}

/// One parameter's state, checked and converted to its slot's layout.
struct Restored {
    moments: Moments,
    step: u64,
    master: Option<Tensor>,
}

/// Takes `s`'s entries out of `state` and converts them to `s`'s layout, device and
/// dtypes (`copy`, so that no caller-held tensor shares the optimiser's memory).
fn restore_slot(
    s: &Slot,
    state: &mut HashMap<String, Tensor>,
    mismatch: &dyn Fn(String) -> Error,
) -> Result<Restored> {
    let mut take = |kind: &str| -> Result<Option<Tensor>> {
        let key = format!("{kind}.{}", s.name);
        let Some(t) = state.remove(&key) else {
            return Ok(None);
        };
        check_entry(&key, &t, s).map_err(mismatch)?;
        Ok(Some(t))
    };
    let required = |t: Option<Tensor>, kind: &str| {
        t.ok_or_else(|| mismatch(format!("no `{kind}.{}`", s.name)))
    };
    let m = required(take("m")?, "m")?;
    let v = required(take("v")?, "v")?;
    let saved_master = take("master")?;
    let key = format!("step.{}", s.name);
    let t = state
        .remove(&key)
        .ok_or_else(|| mismatch(format!("no `{key}`")))?;
    let step = read_count(&t)
        .ok_or_else(|| mismatch(format!("`{key}` is not a non-negative integer scalar")))?;
    let like = |x: Tensor, old: &Tensor| -> Result<Tensor> {
        Ok(x.to_dtype(old.dtype())?.to_device(old.device())?.copy()?)
    };
    let moments = match &s.moments {
        Moments::Host { .. } => Moments::Host {
            m: m.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            v: v.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
        },
        Moments::Tensors { m: old, .. } => Moments::Tensors {
            m: like(m, old)?,
            v: like(v, old)?,
        },
    };
    let master = match (&s.master, saved_master) {
        (Some(old), Some(saved)) => Some(like(saved, old)?),
        (Some(_), None) => master_of(&s.var)?,
        (None, _) => None,
    };
    Ok(Restored {
        moments,
        step,
        master,
    })
}

/// Why the float entry `key` cannot be state of `s`, if it cannot.
fn check_entry(key: &str, t: &Tensor, s: &Slot) -> std::result::Result<(), String> {
    if t.dims() != s.var.dims() {
        return Err(format!(
            "`{key}` has shape {:?} but parameter `{}` has {:?}",
            t.dims(),
            s.name,
            s.var.dims()
        ));
    }
    if !t.dtype().is_float() {
        return Err(format!(
            "`{key}` has dtype {:?}, not a float type",
            t.dtype()
        ));
    }
    Ok(())
}

fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Invalid(format!("step count {n} does not fit in i64")))
}

/// A non-negative integer scalar (shape `[]` or `[1]`).
fn read_count(t: &Tensor) -> Option<u64> {
    if t.elem_count() != 1 || t.dtype().is_float() {
        return None;
    }
    let v = t
        .flatten_all()
        .ok()?
        .to_dtype(DType::I64)
        .ok()?
        .to_vec1::<i64>()
        .ok()?;
    u64::try_from(*v.first()?).ok()
}

fn list(names: &[&str]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(LIST_MAX)
        .map(|n| format!("`{n}`"))
        .collect();
    let more = names.len().saturating_sub(LIST_MAX);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// [`gpo_fs::write_atomic_with`], its error naming the file.
/// A safetensors file's bytes with its `__metadata__` keys sorted: safetensors writes them in
/// a `HashMap`'s order, which changes from process to process, and a checkpoint must be the
/// same bytes for the same state. Bytes whose header does not parse are returned as they are.
fn with_sorted_metadata(bytes: Vec<u8>) -> Vec<u8> {
    let Some(n) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    else {
        return bytes;
    };
    let Some(end) = usize::try_from(n).ok().and_then(|n| n.checked_add(8)) else {
        return bytes;
    };
    let Some(Ok(mut header)) = bytes
        .get(8..end)
        .map(serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>)
    else {
        return bytes;
    };
    if let Some(serde_json::Value::Object(meta)) = header.get_mut("__metadata__") {
        meta.sort_keys();
    }
    let Ok(text) = serde_json::to_string(&header) else {
        return bytes;
    };
    let mut head = text.into_bytes();
    head.resize(head.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + head.len() + bytes.len() - end);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&bytes[end..]);
    out
}

fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    gpo_fs::write_atomic_with(path, write).map_err(|source| Error::Io {
        action: "write",
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_is_the_same_bytes_every_time() {
        // safetensors writes metadata in HashMap order; the saved file sorts it, so two
        // saves of one state (and two processes' saves) are identical.
        let var = candle_core::Var::ones(3, DType::F32, &Device::Cpu).unwrap();
        let opt = AdamW::new(vec![("w".to_string(), var)], crate::AdamWConfig::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<Vec<u8>> = (0..4)
            .map(|i| {
                let p = dir.path().join(format!("s{i}.safetensors"));
                opt.save(&p).unwrap();
                std::fs::read(&p).unwrap()
            })
            .collect();
        assert!(files.windows(2).all(|w| w[0] == w[1]));
        let n = u64::from_le_bytes(files[0][..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&files[0][8..8 + n]).unwrap();
        let keys = ["beta1", "beta2", "eps", "format", "lr", "weight_decay"];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| header.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{header}");
        let mut back = AdamW::new(
            vec![(
                "w".to_string(),
                candle_core::Var::ones(3, DType::F32, &Device::Cpu).unwrap(),
            )],
            crate::AdamWConfig::default(),
        )
        .unwrap();
        back.load(dir.path().join("s0.safetensors")).unwrap();
    }
    use crate::AdamWConfig;
    use candle_core::Var;

    fn opt_with(names: &[(&str, usize)]) -> AdamW {
        let params = names
            .iter()
            .map(|(n, len)| {
                (
                    n.to_string(),
                    Var::zeros(*len, DType::F32, &Device::Cpu).unwrap(),
                )
            })
            .collect();
        AdamW::new(params, AdamWConfig::default()).unwrap()
    }

    #[test]
    fn state_dict_has_documented_keys() {
        let keys: Vec<String> = opt_with(&[("w", 3)])
            .state_dict()
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(keys, ["m.w", "step", "step.w", "v.w"]);
    }

    #[test]
    fn mismatched_names_are_listed_and_nothing_changes() {
        let state = opt_with(&[("a", 2), ("b", 2)]).state_dict().unwrap();
        let mut other = opt_with(&[("a", 2), ("c", 2)]);
        other.slots[0].step = 7;
        let err = other
            .load_state_dict(state.into_iter().collect())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no state for parameter(s) `c`"), "{err}");
        assert!(
            err.contains("entries for no parameter of this optimiser: `m.b`, `step.b`, `v.b`"),
            "{err}"
        );
        assert_eq!(other.slots[0].step, 7);
    }

    #[test]
    fn mismatched_shape_is_named() {
        let state = opt_with(&[("w", 2)]).state_dict().unwrap();
        let err = opt_with(&[("w", 3)])
            .load_state_dict(state.into_iter().collect())
            .unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("`m.w` has shape [2] but parameter `w` has [3]"),
            "{err}"
        );
    }

    /// A bf16 parameter `w` of 3 elements, stepped 3 times at lr 5e-7 (below half a bf16
    /// ulp of its weights, so its master and its value differ).
    fn trained_bf16() -> AdamW {
        let w = Tensor::new(&[1f32, -0.5, 0.25], &Device::Cpu).unwrap();
        let w = Var::from_tensor(&w.to_dtype(DType::BF16).unwrap()).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        for _ in 0..3 {
            let mut grads = candle_core::backprop::GradStore::default();
            grads.insert(w.as_tensor(), w.as_tensor().ones_like().unwrap());
            opt.step(&grads, 5e-7).unwrap();
        }
        opt
    }

    /// A fresh optimiser over a bf16 `w` of 3 zeros that then takes `like`'s value, as
    /// a checkpoint's weights are restored before its optimiser state.
    fn fresh_bf16_like(like: &AdamW) -> AdamW {
        let w = Var::zeros(3, DType::BF16, &Device::Cpu).unwrap();
        let opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        w.set(like.slots[0].var.as_tensor()).unwrap();
        opt
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.to_dtype(DType::F32).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn half_precision_masters_round_trip() {
        let opt = trained_bf16();
        let state = opt.state_dict().unwrap();
        let keys: Vec<&String> = state.keys().collect();
        assert_eq!(keys, ["m.w", "master.w", "step", "step.w", "v.w"]);
        let mut back = fresh_bf16_like(&opt);
        back.load_state_dict(state.into_iter().collect()).unwrap();
        let want = values(opt.master("w").unwrap());
        assert_eq!(values(back.master("w").unwrap()), want);
        assert_ne!(want, values(opt.slots[0].var.as_tensor()));
    }

    #[test]
    fn state_without_masters_re_creates_them_from_the_variables() {
        let opt = trained_bf16();
        let mut state: HashMap<String, Tensor> = opt.state_dict().unwrap().into_iter().collect();
        state.remove("master.w");
        let mut back = fresh_bf16_like(&opt);
        back.load_state_dict(state).unwrap();
        let var = values(opt.slots[0].var.as_tensor());
        assert_eq!(values(back.master("w").unwrap()), var);
    }

    #[test]
    fn a_master_for_a_parameter_now_f32_is_ignored() {
        let state = trained_bf16().state_dict().unwrap();
        let mut f32_opt = opt_with(&[("w", 3)]);
        f32_opt
            .load_state_dict(state.into_iter().collect())
            .unwrap();
        assert!(f32_opt.master("w").is_none());
        assert_eq!(values(f32_opt.slots[0].var.as_tensor()), [0.0; 3]);
    }

    #[test]
    fn long_lists_are_cut() {
        assert_eq!(list(&["a", "b"]), "`a`, `b`");
        assert_eq!(
            list(&["1", "2", "3", "4", "5", "6", "7"]),
            "`1`, `2`, `3`, `4`, `5` and 2 more"
        );
    }

    #[test]
    fn files_that_are_not_state_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut opt = opt_with(&[("w", 2)]);
        let missing = dir.path().join("nope.safetensors");
        let err = opt.load(&missing).unwrap_err();
        assert!(
            err.to_string().contains("cannot read optimiser state")
                && err.to_string().contains("nope.safetensors")
        );
        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not safetensors").unwrap();
        let err = opt.load(&junk).unwrap_err().to_string();
        assert!(
            err.contains("junk.safetensors is not a readable safetensors file"),
            "{err}"
        );
        // A model checkpoint: valid safetensors, but no optimiser state.
        let weights = dir.path().join("model.safetensors");
        let t = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        candle_core::safetensors::save(&HashMap::from([("w".to_string(), t)]), &weights).unwrap();
        let err = opt.load(&weights).unwrap_err().to_string();
        assert!(err.contains("model.safetensors: no `step` entry"), "{err}");
    }

    #[test]
    fn save_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/optim.safetensors");
        let err = opt_with(&[("w", 2)]).save(&path).unwrap_err().to_string();
        assert!(
            err.contains("cannot write optimiser state") && err.contains("optim.safetensors"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn save_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optim.safetensors");
        let opt = opt_with(&[("w", 2)]);
        opt.save(&path).unwrap();
        opt.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["optim.safetensors"]);
    }
}
