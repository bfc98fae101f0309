//! PCA fit on in-memory patches: `cargo bench --bench pca_fit -- PATCHES.f32 D`.
//!
//! Reads a raw little-endian f32 file of `rows x D` patches (written by benches/ingest.py, which
//! times numpy on the same file), then times the accumulation of the f64 statistics and the
//! eigendecomposition, and prints one line of JSON.

use std::time::Instant;

use ldae_operators::normalize::Normalization;
use ldae_operators::patchify::PatchGeometry;
use ldae_operators::pca::{LatentScale, PcaMeta, PcaModel, PcaStats};

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let (Some(path), Some(d)) = (
        args.get(1),
        args.get(2).and_then(|d| d.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: cargo bench --bench pca_fit -- PATCHES.f32 D");
        return;
    };
    let bytes = std::fs::read(path).expect("patch file");
    let patches: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let meta = PcaMeta {
        geometry: PatchGeometry {
            size: 32,
            patch: 4,
            channels: d / 16,
        },
        normalization: Normalization::default(),
        latent_scale: LatentScale::Global,
        samples: 0,
        images: 0,
        fingerprint: String::new(),
        input: path.clone(),
    };
    let mut best = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let start = Instant::now();
        let mut stats = PcaStats::new(d);
        // The pipeline hands the fit 256-image batches: 16384 patches at p=4, 32x32.
        for batch in patches.chunks(16384 * d) {
            stats.add(batch).expect("accumulate");
        }
        let accumulate = start.elapsed().as_secs_f64();
        let model = PcaModel::fit(&stats, meta.clone()).expect("fit");
        let total = start.elapsed().as_secs_f64();
        assert_eq!(model.dim(), d);
        best = (best.0.min(accumulate), best.1.min(total));
    }
    println!(
        "{{\"rows\": {}, \"accumulate_s\": {:.4}, \"fit_s\": {:.4}}}",
        patches.len() / d,
        best.0,
        best.1
    );
}
