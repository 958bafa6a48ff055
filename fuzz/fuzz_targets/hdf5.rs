//! The Keras HDF5 weights reader (`H5File`): the toxicity model's datasets read from it
//! (`ToxicityModel::from_parts`), then one prediction, which indexes the weights by the
//! shapes the file declared.
#![no_main]

// Linked for its allocator, which caps single allocations (fuzz/src/lib.rs).
extern crate gpo_fuzz;

use std::path::Path;

use gpo_keras::hdf5::H5File;
use gpo_judge::toxicity::keras_tokenizer::KerasTokenizer;
use gpo_judge::toxicity::ToxicityModel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(h5) = H5File::from_bytes(Path::new("model.weights.h5"), data.to_vec()) else {
        return;
    };
    // A dataset path the fuzzer can also steer: the input's last bytes, if text.
    let tail = &data[data.len().saturating_sub(24)..];
    if let Ok(name) = std::str::from_utf8(tail) {
        let _ = h5.read_f32(name);
    }
    if let Ok(model) = ToxicityModel::from_parts(KerasTokenizer::empty(), &h5) {
        let _ = model.predict_ids(&[0, 1, 2, 3, u32::MAX]);
    }
});
