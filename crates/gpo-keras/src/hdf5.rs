//! A minimal HDF5 reader: just enough of the format for the weights file Keras 3 writes
//! through h5py with the default ("earliest") file format.
//!
//! Supported: superblock version 0 or 1, version-1 object headers (with continuation
//! blocks), groups stored as symbol tables (v1 B-tree + local heap), and little-endian f32
//! datasets in contiguous or compact layout. Anything else is reported as unsupported, so
//! a file written differently fails loudly instead of being misread.
//!
//! Layout reference: the HDF5 File Format Specification, version 2 (sections II-IV).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
const UNDEFINED: u64 = u64::MAX;

/// Header message types used here.
const MSG_DATASPACE: u16 = 0x0001;
const MSG_DATATYPE: u16 = 0x0003;
const MSG_LAYOUT: u16 = 0x0008;
const MSG_CONTINUATION: u16 = 0x0010;
const MSG_SYMBOL_TABLE: u16 = 0x0011;

/// An HDF5 file held in memory.
pub struct H5File {
    path: PathBuf,
    bytes: Vec<u8>,
    offset_size: usize,
    length_size: usize,
    root_header: u64,
}

/// One header message: its type and body.
struct Message<'a> {
    kind: u16,
    body: &'a [u8],
}

impl H5File {
    /// Reads and checks the superblock of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Parses an in-memory file; `path` is only used in error messages.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let mut f = H5File {
            path: path.to_path_buf(),
            bytes,
            offset_size: 8,
            length_size: 8,
            root_header: 0,
        };
        if f.slice(0, 8)? != SIGNATURE {
            return Err(f.bad("not an HDF5 file (no signature at offset 0)"));
        }
        let version = f.u8_at(8)?;
        if version > 1 {
            return Err(f.bad(format!(
                "superblock version {version} is not supported (only 0 and 1, h5py's default)"
            )));
        }
        f.offset_size = f.u8_at(13)? as usize;
        f.length_size = f.u8_at(14)? as usize;
        if !matches!(f.offset_size, 2 | 4 | 8) || !matches!(f.length_size, 2 | 4 | 8) {
            return Err(f.bad("unsupported offset/length sizes in the superblock"));
        }
        // 16: leaf K, internal K (u16 each), flags (u32); version 1 adds 4 bytes.
        let mut pos = 24 + if version == 1 { 4 } else { 0 };
        let base = f.offset_at(pos)?;
        if base != 0 {
            return Err(f.bad("a non-zero base address is not supported"));
        }
        pos += 4 * f.offset_size; // base, free-space, end-of-file, driver-info addresses
                                  // Root group symbol table entry: link name offset, object header address, ...
        f.root_header = f.offset_at(pos + f.offset_size)?;
        Ok(f)
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The f32 dataset at `path` (`a/b/c`): its shape and values in row-major order.
    pub fn read_f32(&self, path: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let mut header = self.root_header;
        for name in path.split('/').filter(|s| !s.is_empty()) {
            header = self.child(header, name).map_err(|e| match e {
                Error::BadFile { msg, .. } => self.bad(format!("{path}: {msg}")),
                other => other,
            })?;
        }
        let messages = self.messages(header)?;
        let find = |kind: u16| {
            messages
                .iter()
                .find(|m| m.kind == kind)
                .map(|m| m.body)
                .ok_or_else(|| self.bad(format!("{path}: not a dataset (no message {kind:#x})")))
        };
        let shape = self.dataspace(find(MSG_DATASPACE)?, path)?;
        self.check_f32(find(MSG_DATATYPE)?, path)?;
        let raw = self.layout_data(find(MSG_LAYOUT)?, path)?;
        let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let Some(n) = n.filter(|&n| n.checked_mul(4).is_some_and(|b| b <= raw.len())) else {
            return Err(self.bad(format!(
                "{path}: {} bytes of data for shape {shape:?} of f32 values",
                raw.len()
            )));
        };
        let values = raw[..n * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((shape, values))
    }

    /// The object header address of the member `name` of the group at `header`.
    fn child(&self, header: u64, name: &str) -> Result<u64> {
        let messages = self.messages(header)?;
        let table = messages
            .iter()
            .find(|m| m.kind == MSG_SYMBOL_TABLE)
            .ok_or_else(|| self.bad(format!("`{name}`: parent is not a symbol-table group")))?;
        let btree = self.offset_in(table.body, 0)?;
        let heap = self.offset_in(table.body, self.offset_size)?;
        let heap_data = self.local_heap_data(heap)?;
        let mut seen = HashSet::new();
        self.btree_find(btree, None, heap_data, name, &mut seen)?
            .ok_or_else(|| self.bad(format!("no member `{name}`")))
    }

    /// Address of a local heap's data segment.
    fn local_heap_data(&self, addr: u64) -> Result<u64> {
        let a = self.addr(addr)?;
        if self.slice(a, 4)? != b"HEAP" {
            return Err(self.bad(format!("no local heap at {addr:#x}")));
        }
        // HEAP, version, 3 reserved, data size (L), free-list offset (L), data address (O).
        self.offset_at(a + 8 + 2 * self.length_size)
    }

    /// Walks a group B-tree (v1, type 0) looking for `name`. A child node sits one level
    /// below its parent (`level`, none for the root), and no node is visited twice: a corrupt
    /// tree could otherwise recurse without end or search one node millions of times.
    fn btree_find(
        &self,
        addr: u64,
        level: Option<u8>,
        heap_data: u64,
        name: &str,
        seen: &mut HashSet<u64>,
    ) -> Result<Option<u64>> {
        let a = self.addr(addr)?;
        if self.slice(a, 4)? != b"TREE" {
            return Err(self.bad(format!("no B-tree node at {addr:#x}")));
        }
        if self.u8_at(a + 4)? != 0 {
            return Err(self.bad("a group B-tree of a node type other than 0"));
        }
        if !seen.insert(addr) {
            return Err(self.bad(format!("B-tree node at {addr:#x} is reached twice")));
        }
        let level = match (self.u8_at(a + 5)?, level) {
            (l, Some(parent)) if parent.checked_sub(1) != Some(l) => {
                return Err(self.bad(format!(
                    "B-tree node at {addr:#x} has level {l} below a node of level {parent}"
                )))
            }
            (l, _) => l,
        };
        let used = self.u16_at(a + 6)? as usize;
        // Keys and children interleave after the two sibling addresses: key0 child0 key1 ...
        let mut pos = a + 8 + 2 * self.offset_size + self.length_size;
        for _ in 0..used {
            let child = self.offset_at(pos)?;
            pos += self.offset_size + self.length_size;
            let found = if level > 0 {
                self.btree_find(child, Some(level), heap_data, name, seen)?
            } else if seen.insert(child) {
                self.snod_find(child, heap_data, name)?
            } else {
                return Err(self.bad(format!("symbol node at {child:#x} is reached twice")));
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Looks `name` up in a symbol table node.
    fn snod_find(&self, addr: u64, heap_data: u64, name: &str) -> Result<Option<u64>> {
        let a = self.addr(addr)?;
        if self.slice(a, 4)? != b"SNOD" {
            return Err(self.bad(format!("no symbol table node at {addr:#x}")));
        }
        let n = self.u16_at(a + 6)? as usize;
        let entry = 2 * self.offset_size + 24;
        for i in 0..n {
            let e = a + 8 + i * entry;
            let name_off = self.offset_at(e)?;
            let at = heap_data
                .checked_add(name_off)
                .ok_or_else(|| self.bad(format!("name offset {name_off:#x} overflows")))?;
            if self.c_string(at)? == name.as_bytes() {
                return Ok(Some(self.offset_at(e + self.offset_size)?));
            }
        }
        Ok(None)
    }

    /// Every message of a version-1 object header, following continuation blocks.
    fn messages(&self, header: u64) -> Result<Vec<Message<'_>>> {
        let a = self.addr(header)?;
        if self.u8_at(a)? != 1 {
            return Err(self.bad(format!(
                "object header at {header:#x}: only version-1 headers are supported"
            )));
        }
        let count = self.u16_at(a + 2)? as usize;
        let size = self.u32_at(a + 8)? as usize;
        let mut blocks = vec![(a + 16, size)];
        let mut out = Vec::new();
        while let Some((start, len)) = blocks.pop() {
            let mut pos = start;
            while pos + 8 <= start.saturating_add(len) && out.len() < count {
                let kind = self.u16_at(pos)?;
                let msize = self.u16_at(pos + 2)? as usize;
                let body = self.slice(pos + 8, msize)?;
                if kind == MSG_CONTINUATION {
                    let off = self.offset_in(body, 0)?;
                    let clen = self.length_in(body, self.offset_size)?;
                    blocks.push((self.addr(off)?, clen as usize));
                }
                out.push(Message { kind, body });
                pos += 8 + msize;
            }
        }
        Ok(out)
    }

    fn dataspace(&self, body: &[u8], path: &str) -> Result<Vec<usize>> {
        let version = *body.first().ok_or_else(|| self.bad("empty dataspace"))?;
        let rank = *body.get(1).ok_or_else(|| self.bad("short dataspace"))? as usize;
        let start = match version {
            1 => 8,
            2 => 4,
            v => return Err(self.bad(format!("{path}: dataspace version {v}"))),
        };
        (0..rank)
            .map(|i| Ok(self.length_in(body, start + i * self.length_size)? as usize))
            .collect()
    }

    fn check_f32(&self, body: &[u8], path: &str) -> Result<()> {
        let class = body.first().map(|b| b & 0x0f);
        let big_endian = body.get(1).map(|b| b & 1 == 1);
        let size = body
            .get(4..8)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        if class != Some(1) || size != Some(4) || big_endian != Some(false) {
            return Err(self.bad(format!(
                "{path}: only little-endian f32 datasets are supported \
                 (class {class:?}, size {size:?})"
            )));
        }
        Ok(())
    }

    fn layout_data<'a>(&'a self, body: &'a [u8], path: &str) -> Result<&'a [u8]> {
        let version = body.first().copied();
        if version != Some(3) {
            return Err(self.bad(format!("{path}: layout message version {version:?}")));
        }
        match body.get(1).copied() {
            Some(0) => {
                let n = body
                    .get(2..4)
                    .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
                    .ok_or_else(|| self.bad("short compact layout"))?;
                body.get(4..4 + n)
                    .ok_or_else(|| self.bad(format!("{path}: short compact data")))
            }
            Some(1) => {
                let addr = self.offset_in(body, 2)?;
                let size = self.length_in(body, 2 + self.offset_size)? as usize;
                if addr == UNDEFINED {
                    return Err(self.bad(format!("{path}: dataset has no storage allocated")));
                }
                self.slice(self.addr(addr)?, size)
            }
            c => Err(self.bad(format!(
                "{path}: layout class {c:?} (chunked/virtual) is not supported"
            ))),
        }
    }

    fn bad(&self, msg: impl Into<String>) -> Error {
        Error::bad(&self.path, format!("HDF5: {}", msg.into()))
    }

    fn addr(&self, a: u64) -> Result<usize> {
        usize::try_from(a)
            .ok()
            .filter(|&a| a < self.bytes.len())
            .ok_or_else(|| self.bad(format!("address {a:#x} is outside the file")))
    }

    fn slice(&self, at: usize, len: usize) -> Result<&[u8]> {
        self.bytes
            .get(at..at.saturating_add(len))
            .ok_or_else(|| self.bad(format!("truncated: {len} bytes at {at:#x}")))
    }

    fn u8_at(&self, at: usize) -> Result<u8> {
        Ok(self.slice(at, 1)?[0])
    }

    fn u16_at(&self, at: usize) -> Result<u16> {
        let s = self.slice(at, 2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32_at(&self, at: usize) -> Result<u32> {
        let s = self.slice(at, 4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn uint(&self, s: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(b)
    }

    fn offset_at(&self, at: usize) -> Result<u64> {
        let s = self.slice(at, self.offset_size)?;
        let v = self.uint(s);
        Ok(if s.iter().all(|&b| b == 0xff) {
            UNDEFINED
        } else {
            v
        })
    }

    fn offset_in(&self, body: &[u8], at: usize) -> Result<u64> {
        let s = body
            .get(at..at + self.offset_size)
            .ok_or_else(|| self.bad("short header message"))?;
        Ok(if s.iter().all(|&b| b == 0xff) {
            UNDEFINED
        } else {
            self.uint(s)
        })
    }

    fn length_in(&self, body: &[u8], at: usize) -> Result<u64> {
        let s = body
            .get(at..at + self.length_size)
            .ok_or_else(|| self.bad("short header message"))?;
        Ok(self.uint(s))
    }

    fn c_string(&self, at: u64) -> Result<&[u8]> {
        let a = self.addr(at)?;
        let end = self.bytes[a..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.bad("unterminated name in a local heap"))?;
        Ok(&self.bytes[a..a + end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panicking() {
        let p = Path::new("x.h5");
        let e = H5File::from_bytes(p, b"not hdf5".to_vec()).err().unwrap();
        assert!(e.to_string().contains("not an HDF5 file"), "{e}");
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend([0, 0, 0, 0, 0, 8, 8, 0]);
        let e = H5File::from_bytes(p, bytes).err().unwrap();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
