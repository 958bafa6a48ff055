//! A skim of a GGUF file's metadata for `general.alignment` before candle reads the file:
//! candle's reader divides by that value, so a 0 there panics inside it instead of failing.
//! Anything else the skim cannot follow is left for candle to report.

use std::io::Read;

/// Metadata entries skimmed at most (candle refuses more than this many anyway).
const MAX_ENTRIES: u64 = 1 << 20;

/// The file's `general.alignment` if it is an integer, read from the start of `reader`
/// (which is left wherever the skim stopped). `None` when the key is absent or the header
/// does not parse.
pub(crate) fn declared_alignment<R: Read>(reader: &mut R) -> Option<i64> {
    let magic = read_u32(reader)?;
    if magic != u32::from_le_bytes(*b"GGUF") {
        return None;
    }
    let wide = match read_u32(reader)? {
        1 => false,
        2 | 3 => true,
        _ => return None,
    };
    let len = |r: &mut R| {
        if wide {
            read_u64(r)
        } else {
            read_u32(r).map(u64::from)
        }
    };
    let _tensors = len(reader)?;
    let entries = len(reader)?;
    for _ in 0..entries.min(MAX_ENTRIES) {
        let key_len = len(reader)?;
        let mut key = vec![0u8; usize::try_from(key_len).ok().filter(|&n| n <= 1 << 16)?];
        reader.read_exact(&mut key).ok()?;
        let kind = read_u32(reader)?;
        if key == b"general.alignment" {
            return integer(reader, kind);
        }
        skip_value(reader, kind, &len, 0)?;
    }
    None
}

fn read_u32<R: Read>(r: &mut R) -> Option<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

fn read_u64<R: Read>(r: &mut R) -> Option<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

/// An integer value of GGUF type `kind`: the 8- to 32-bit ones (0-5), the types candle
/// reads an alignment from (it ignores others).
fn integer<R: Read>(r: &mut R, kind: u32) -> Option<i64> {
    let mut b = [0u8; 4];
    let n = match kind {
        0 | 1 => 1,
        2 | 3 => 2,
        4 | 5 => 4,
        _ => return None,
    };
    r.read_exact(&mut b[..n]).ok()?;
    Some(match kind {
        0 => i64::from(b[0]),
        1 => i64::from(b[0] as i8),
        2 => i64::from(u16::from_le_bytes([b[0], b[1]])),
        3 => i64::from(i16::from_le_bytes([b[0], b[1]])),
        4 => i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    })
}

/// Arrays nested deeper than this are not followed (no model file nests them at all).
const MAX_DEPTH: u32 = 4;

/// Moves past one value of GGUF type `kind`, an array at most `depth` levels deep.
fn skip_value<R: Read>(
    r: &mut R,
    kind: u32,
    len: &dyn Fn(&mut R) -> Option<u64>,
    depth: u32,
) -> Option<()> {
    // Read past, not seek: a seek empties a BufReader's buffer, and the token lists hold
    // some 100,000 short strings.
    let fixed = |n: u64, r: &mut R| {
        let read = std::io::copy(&mut r.by_ref().take(n), &mut std::io::sink()).ok()?;
        (read == n).then_some(())
    };
    match kind {
        0 | 1 | 7 => fixed(1, r),
        2 | 3 => fixed(2, r),
        4..=6 => fixed(4, r),
        10..=12 => fixed(8, r),
        8 => {
            let n = len(r)?;
            fixed(n, r)
        }
        9 if depth < MAX_DEPTH => {
            let item = read_u32(r)?;
            let count = len(r)?;
            for _ in 0..count.min(1 << 32) {
                skip_value(r, item, len, depth + 1)?;
            }
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 header with no tensors and `entries` metadata entries (already encoded).
    fn file(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend((entries.len() as u64).to_le_bytes());
        entries.iter().for_each(|e| out.extend(e));
        out
    }

    fn entry(key: &str, kind: u32, value: &[u8]) -> Vec<u8> {
        let mut out = (key.len() as u64).to_le_bytes().to_vec();
        out.extend(key.as_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(value);
        out
    }

    #[test]
    fn finds_the_alignment_after_other_entries() {
        let name = [&5u64.to_le_bytes()[..], b"llama"].concat();
        let tokens = [
            &8u32.to_le_bytes()[..],
            &2u64.to_le_bytes(),
            &1u64.to_le_bytes(),
            b"a",
            &2u64.to_le_bytes(),
            b"bc",
        ]
        .concat();
        let bytes = file(&[
            entry("general.architecture", 8, &name),
            entry("tokenizer.ggml.tokens", 9, &tokens),
            entry("general.alignment", 4, &0u32.to_le_bytes()),
        ]);
        assert_eq!(declared_alignment(&mut bytes.as_slice()), Some(0));
        let bytes = file(&[entry("general.alignment", 5, &64i32.to_le_bytes())]);
        assert_eq!(declared_alignment(&mut bytes.as_slice()), Some(64));
    }

    #[test]
    fn gives_up_quietly_on_what_it_cannot_follow() {
        assert_eq!(declared_alignment(&mut &b"GGML"[..]), None);
        assert_eq!(declared_alignment(&mut &file(&[])[..]), None);
        // Arrays of arrays, 100 deep: not followed (no recursion to the bottom).
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend(9u32.to_le_bytes());
            deep.extend(1u64.to_le_bytes());
        }
        let bytes = file(&[entry("x", 9, &deep)]);
        assert_eq!(declared_alignment(&mut bytes.as_slice()), None);
        // A truncated string.
        let bytes = file(&[entry("x", 8, &100u64.to_le_bytes())]);
        assert_eq!(declared_alignment(&mut bytes.as_slice()), None);
    }
}
