//! sha256 of files and of streams being written.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Fails with [`Error::Checksum`] naming `path` unless `got == expected` (hex, any case).
pub(crate) fn expect_sha256(path: &Path, expected: &str, got: String) -> Result<()> {
    if got.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Error::Checksum {
            path: path.into(),
            expected: expected.into(),
            got,
        })
    }
}

/// A writer that hashes what passes through it, so an extracted file is checked without
/// reading it a second time.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The writer, the hex digest and the byte count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected digests: `printf 'abc' | sha256sum` and `sha256sum < /dev/null`.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn file_and_stream_digests_match_sha256sum() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), ABC);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (bytes, digest, len) = w.finish();
        assert_eq!(
            (bytes.as_slice(), digest.as_str(), len),
            (&b"abc"[..], ABC, 3)
        );
        assert_eq!(HashingWriter::new(std::io::sink()).finish().1, EMPTY);
    }

    #[test]
    fn mismatch_names_the_file_and_both_digests() {
        let p = Path::new("/x/y.whl");
        assert!(expect_sha256(p, ABC, ABC.to_uppercase()).is_ok());
        let msg = expect_sha256(p, ABC, EMPTY.into()).unwrap_err().to_string();
        assert!(
            msg.contains("/x/y.whl") && msg.contains(ABC) && msg.contains(EMPTY),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let msg = sha256_file(Path::new("/no/such/file"))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("/no/such/file: "), "{msg}");
    }
}
