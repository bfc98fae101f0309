//! Random and mutated inputs for every binary parser of the sources (IDX headers, CIFAR
//! records, tar headers): never a panic, and when a file opens, every row is accounted for
//! (rows in = rows out + rows rejected).

use std::io::Write;
use std::path::Path;

use ldae_datasets::{open, SourceOptions};
use proptest::prelude::*;

/// Open `path` and read it to the end. Panics only if the row accounting is off.
fn read_to_end(path: &Path) {
    let options = SourceOptions {
        batch_size: Some(7),
        ..SourceOptions::default()
    };
    let Ok(mut source) = open(path.to_str().unwrap(), &options) else {
        return;
    };
    let planned = source.total_rows().unwrap() as usize;
    let mut seen = 0;
    while let Some(batch) = source.next_batch() {
        let Ok(p) = batch else { return };
        seen += p.batch.num_rows() + p.rejected.len();
    }
    assert_eq!(seen, planned, "rows in = rows out + rows rejected");
}

fn idx_file(dims: &[u32], data_len: usize) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend((0..data_len).map(|i| i as u8));
    out
}

/// A small valid tar of `samples` PNG-named members with labels.
fn small_tar(samples: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..samples {
        for (ext, data) in [("png", vec![i as u8; 300 + 50 * i]), ("cls", b"3".to_vec())] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_path(format!("s{i}.{ext}")).unwrap();
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// `bytes` with each `(position, value)` written in (positions taken modulo the length), then
/// cut to `keep` (as a fraction of the length, 1.0 keeps all).
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: f64) -> Vec<u8> {
    if !bytes.is_empty() {
        let n = bytes.len();
        for &(at, v) in edits {
            bytes[at % n] = v;
        }
    }
    let keep = ((bytes.len() as f64) * keep.clamp(0.0, 1.0)) as usize;
    bytes.truncate(keep);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn idx_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = ldae_datasets::idx::read_idx(&mut &bytes[..], Path::new("fuzz"));
        let mut with_magic = vec![0, 0, 8];
        with_magic.extend(&bytes);
        let _ = ldae_datasets::idx::read_idx(&mut &with_magic[..], Path::new("fuzz"));
    }

    #[test]
    fn idx_files_with_any_dimensions_never_panic(
        dims in proptest::collection::vec(prop_oneof![0u32..6, any::<u32>()], 0..6),
        data_len in 0usize..400,
        gzip in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-images-idx3-ubyte");
        let bytes = idx_file(&dims, data_len);
        let bytes = if gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            e.finish().unwrap()
        } else {
            bytes
        };
        std::fs::write(&path, bytes).unwrap();
        read_to_end(&path);
    }

    #[test]
    fn cifar_files_of_any_length_never_panic(
        len in 0usize..(3 * 3073 + 100),
        labels in proptest::collection::vec(any::<u8>(), 4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data_batch_1.bin");
        let mut bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        for (r, l) in labels.iter().enumerate() {
            if let Some(b) = bytes.get_mut(r * 3073) {
                *b = *l;
            }
        }
        std::fs::write(&path, bytes).unwrap();
        read_to_end(&path);
    }

    #[test]
    fn mutated_tar_shards_never_panic(
        samples in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        keep in prop_oneof![Just(1.0f64), 0.0f64..1.0],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard.tar");
        std::fs::write(&path, mutate(small_tar(samples), &edits, keep)).unwrap();
        read_to_end(&path);
    }

    #[test]
    fn tar_headers_with_random_fields_never_panic(
        field in prop_oneof![Just(100usize), Just(124), Just(136), Just(148), Just(156), Just(257), Just(345)],
        value in proptest::collection::vec(any::<u8>(), 1..12),
        member in 0usize..4,
    ) {
        // Overwrite one header field of one member (mode, size, mtime, checksum, type, magic,
        // prefix), with the checksum recomputed half the time so the reader gets past it.
        let dir = tempfile::tempdir().unwrap();
        let mut tar = small_tar(2);
        let offsets = [0usize, 1024, 2048, 3072];
        let at = offsets[member] + field;
        for (i, v) in value.iter().enumerate() {
            if at + i < tar.len() {
                tar[at + i] = *v;
            }
        }
        if value[0] % 2 == 0 {
            let h = offsets[member];
            tar[h + 148..h + 156].copy_from_slice(b"        ");
            let sum: u32 = tar[h..h + 512].iter().map(|&b| b as u32).sum();
            tar[h + 148..h + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        }
        let path = dir.path().join("shard.tar");
        std::fs::write(&path, tar).unwrap();
        read_to_end(&path);
    }
}
