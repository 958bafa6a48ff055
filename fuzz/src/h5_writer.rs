//! Writes the subset of HDF5 that gpo's reader supports (`gpo_judge::toxicity::hdf5`), the
//! way h5py writes Keras weights with the "earliest" format: superblock 0, version-1 object
//! headers, groups as symbol tables (B-tree, local heap, one symbol node), little-endian f32
//! datasets in contiguous layout. Offsets and lengths are 8 bytes. Enough for a seed file; not
//! a general writer (a group holds at most one symbol node's worth of members).

use std::collections::BTreeMap;

/// A group's members: datasets (shape, values) or subgroups.
#[derive(Default)]
pub struct Group {
    members: BTreeMap<String, Node>,
}

enum Node {
    Group(Group),
    Dataset(Vec<u64>, Vec<f32>),
}

impl Group {
    /// Adds the dataset at `path` (`a/b/c`), creating the groups on the way.
    pub fn add(&mut self, path: &str, shape: &[u64], values: Vec<f32>) {
        match path.split_once('/') {
            None => {
                let node = Node::Dataset(shape.to_vec(), values);
                self.members.insert(path.to_string(), node);
            }
            Some((head, rest)) => {
                let child = self
                    .members
                    .entry(head.to_string())
                    .or_insert_with(|| Node::Group(Group::default()));
                if let Node::Group(g) = child {
                    g.add(rest, shape, values);
                }
            }
        }
    }
}

/// The file holding `root`.
pub fn write(root: &Group) -> Vec<u8> {
    let mut out = vec![0u8; SUPERBLOCK_LEN];
    let root_header = write_group(&mut out, root);
    let head = superblock(root_header, out.len() as u64);
    out[..SUPERBLOCK_LEN].copy_from_slice(&head);
    out
}

const SUPERBLOCK_LEN: usize = 96;
const UNDEFINED: u64 = u64::MAX;

fn superblock(root_header: u64, eof: u64) -> Vec<u8> {
    let mut b = b"\x89HDF\r\n\x1a\n".to_vec();
    // Versions (superblock, free space, root table, reserved, shared header), offset and
    // length sizes, reserved; leaf and internal K; consistency flags.
    b.extend([0, 0, 0, 0, 0, 8, 8, 0]);
    b.extend(4u16.to_le_bytes());
    b.extend(16u16.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    // Base, free-space, end-of-file and driver-info addresses.
    for a in [0, UNDEFINED, eof, UNDEFINED] {
        b.extend(a.to_le_bytes());
    }
    // The root group's symbol table entry: name offset, header, cache type 0, scratch.
    b.extend(0u64.to_le_bytes());
    b.extend(root_header.to_le_bytes());
    b.resize(SUPERBLOCK_LEN, 0);
    b
}

/// Appends `bytes` at an 8-byte boundary and returns their address.
fn append(out: &mut Vec<u8>, bytes: &[u8]) -> u64 {
    out.resize(out.len().next_multiple_of(8), 0);
    let at = out.len() as u64;
    out.extend_from_slice(bytes);
    at
}

/// A version-1 object header holding `messages` (type, body).
fn object_header(out: &mut Vec<u8>, messages: &[(u16, Vec<u8>)]) -> u64 {
    let mut body = Vec::new();
    for (kind, m) in messages {
        let padded = m.len().next_multiple_of(8);
        body.extend(kind.to_le_bytes());
        body.extend((padded as u16).to_le_bytes());
        body.extend([0u8; 4]);
        body.extend(m);
        body.resize(body.len() + padded - m.len(), 0);
    }
    let mut h = vec![1u8, 0];
    h.extend((messages.len() as u16).to_le_bytes());
    h.extend(1u32.to_le_bytes());
    h.extend((body.len() as u32).to_le_bytes());
    h.extend([0u8; 4]);
    h.extend(body);
    append(out, &h)
}

fn write_dataset(out: &mut Vec<u8>, shape: &[u64], values: &[f32]) -> u64 {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let addr = append(out, &data);
    let mut space = vec![1u8, shape.len() as u8, 0, 0, 0, 0, 0, 0];
    shape.iter().for_each(|d| space.extend(d.to_le_bytes()));
    // Class 1 (float) version 1, little-endian IEEE; size 4; offset 0, precision 32,
    // exponent at 23 (8 bits), mantissa at 0 (23 bits), bias 127.
    let mut dtype = vec![0x11u8, 0x20, 0x1f, 0x00];
    dtype.extend(4u32.to_le_bytes());
    dtype.extend([0, 0, 32, 0, 23, 8, 0, 23]);
    dtype.extend(127u32.to_le_bytes());
    let mut layout = vec![3u8, 1];
    layout.extend(addr.to_le_bytes());
    layout.extend((data.len() as u64).to_le_bytes());
    object_header(out, &[(0x1, space), (0x3, dtype), (0x8, layout)])
}

fn write_group(out: &mut Vec<u8>, group: &Group) -> u64 {
    let mut heap = vec![0u8; 8];
    let mut entries = Vec::new();
    for (name, node) in &group.members {
        let header = match node {
            Node::Group(g) => write_group(out, g),
            Node::Dataset(shape, values) => write_dataset(out, shape, values),
        };
        entries.push((heap.len() as u64, header));
        heap.extend(name.as_bytes());
        heap.push(0);
        heap.resize(heap.len().next_multiple_of(8), 0);
    }
    let heap_data = append(out, &heap);
    let mut snod = b"SNOD".to_vec();
    snod.extend([1, 0]);
    snod.extend((entries.len() as u16).to_le_bytes());
    for (name, header) in &entries {
        snod.extend(name.to_le_bytes());
        snod.extend(header.to_le_bytes());
        snod.extend([0u8; 24]);
    }
    let snod = append(out, &snod);
    let mut tree = b"TREE".to_vec();
    tree.extend([0, 0]);
    tree.extend(1u16.to_le_bytes());
    tree.extend(UNDEFINED.to_le_bytes());
    tree.extend(UNDEFINED.to_le_bytes());
    tree.extend(0u64.to_le_bytes());
    tree.extend(snod.to_le_bytes());
    tree.extend(0u64.to_le_bytes());
    let tree = append(out, &tree);
    let mut local_heap = b"HEAP".to_vec();
    local_heap.extend([0, 0, 0, 0]);
    local_heap.extend((heap.len() as u64).to_le_bytes());
    local_heap.extend(UNDEFINED.to_le_bytes());
    local_heap.extend(heap_data.to_le_bytes());
    let local_heap = append(out, &local_heap);
    let mut table = tree.to_le_bytes().to_vec();
    table.extend(local_heap.to_le_bytes());
    object_header(out, &[(0x11, table)])
}

/// The toxicity model's datasets at the smallest sizes that chain: 4 words of 2 values, an
/// LSTM of 1 unit each way, a dense layer of 2 and the 6 outputs.
pub fn tiny_toxicity_weights() -> Vec<u8> {
    let ramp = |n: usize| {
        (0..n)
            .map(|i| (i as f32 - 3.0) / 10.0)
            .collect::<Vec<f32>>()
    };
    let mut root = Group::default();
    root.add("layers/embedding/vars/0", &[4, 2], ramp(8));
    for dir in ["forward_layer", "backward_layer"] {
        let p = format!("layers/bidirectional/{dir}/cell/vars");
        root.add(&format!("{p}/0"), &[2, 4], ramp(8));
        root.add(&format!("{p}/1"), &[1, 4], ramp(4));
        root.add(&format!("{p}/2"), &[4], ramp(4));
    }
    root.add("layers/dense/vars/0", &[2, 2], ramp(4));
    root.add("layers/dense/vars/1", &[2], ramp(2));
    root.add("layers/dense_1/vars/0", &[2, 6], ramp(12));
    root.add("layers/dense_1/vars/1", &[6], ramp(6));
    write(&root)
}
