//! The noise operator: a row's noise is the same whatever the batch size or thread count.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Float32Type;
use ldae_datasets::SourceOptions;
use ldae_operators::decode::{Decode, DecodeConfig};
use ldae_operators::noise::{Noise, NoiseSchedule};
use ldae_operators::normalize::{Normalization, Normalize};
use ldae_operators::patchify::Patchify;
use ldae_operators::pca::{LatentScale, PcaFit, PcaFitConfig, PcaModel};
use ldae_pipeline::{Collect, Operator, Pipeline, ProgressMode, RunOptions};

fn front() -> Vec<Arc<dyn Operator>> {
    vec![
        Arc::new(
            Decode::new(DecodeConfig {
                image_size: 16,
                ..DecodeConfig::default()
            })
            .unwrap(),
        ),
        Arc::new(Normalize::new(Normalization::default())),
        Arc::new(Patchify::new(4)),
    ]
}

fn source(batch_size: usize) -> Box<dyn ldae_pipeline::Source> {
    let options = SourceOptions {
        batch_size: Some(batch_size),
        ..SourceOptions::default()
    };
    ldae_datasets::open("synthetic:90", &options).unwrap()
}

fn options(threads: usize) -> RunOptions {
    RunOptions {
        threads,
        progress: ProgressMode::Off,
        ..RunOptions::default()
    }
}

fn model(dir: &std::path::Path) -> PcaModel {
    let out = dir.join("pca.safetensors");
    let mut p = Pipeline::new(
        source(32),
        Box::new(PcaFit::new(
            PcaFitConfig {
                out: out.clone(),
                partial: false,
                latent_scale: LatentScale::Global,
            },
            "synthetic:90".into(),
        )),
    );
    for op in front() {
        p = p.then(op);
    }
    p.run(&options(2)).unwrap();
    PcaModel::load(&out).unwrap()
}

fn noisy(model: &PcaModel, schedule: NoiseSchedule, batch: usize, threads: usize) -> Vec<u32> {
    let got = Collect::new();
    let mut p = Pipeline::new(source(batch), Box::new(got.clone()));
    for op in front() {
        p = p.then(op);
    }
    let noise = Noise::new(model, 8, LatentScale::Global, schedule, 42, 3).unwrap();
    p.then(Arc::new(noise)).run(&options(threads)).unwrap();
    let batches = got.batches();
    // Noisy patches of every row, then the sigma of every row (row order, not batch order).
    let mut noisy: Vec<u32> = Vec::new();
    let mut sigmas: Vec<u32> = Vec::new();
    for b in batches.iter() {
        let list = b.column_by_name("noisy").unwrap().as_fixed_size_list();
        let values = list.values().as_primitive::<Float32Type>();
        noisy.extend(values.values().iter().map(|x| x.to_bits()));
        let s = b
            .column_by_name("sigma")
            .unwrap()
            .as_primitive::<Float32Type>();
        sigmas.extend(s.values().iter().map(|x| x.to_bits()));
    }
    noisy.extend(sigmas);
    noisy
}

#[test]
fn noise_is_identical_across_batch_sizes_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let differing = |a: &[u32], b: &[u32]| {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).filter(|(x, y)| x != y).count()
    };
    let reference = noisy(&m, NoiseSchedule::MultiLevel, 7, 1);
    let bigger = noisy(&m, NoiseSchedule::MultiLevel, 64, 4);
    assert_eq!(differing(&reference, &bigger), 0);
    let one_thread = noisy(&m, NoiseSchedule::MultiLevel, 64, 1);
    assert_eq!(differing(&reference, &one_thread), 0);
    let single = noisy(&m, NoiseSchedule::SingleLevel { sigma: 0.577 }, 7, 1);
    assert!(differing(&reference, &single) > reference.len() / 2);
}

#[test]
fn zero_noise_gives_the_rank_d_reconstruction() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let got = Collect::new();
    let mut p = Pipeline::new(source(30), Box::new(got.clone()));
    for op in front() {
        p = p.then(op);
    }
    let noise = Noise::new(
        &m,
        48,
        LatentScale::Whiten,
        NoiseSchedule::SingleLevel { sigma: 0.0 },
        0,
        0,
    )
    .unwrap();
    p.then(Arc::new(noise)).run(&options(2)).unwrap();
    for b in got.batches().iter() {
        let clean = b.column_by_name("patches").unwrap().as_fixed_size_list();
        let noisy = b.column_by_name("noisy").unwrap().as_fixed_size_list();
        let c = clean.values().as_primitive::<Float32Type>().values();
        let n = noisy.values().as_primitive::<Float32Type>().values();
        let worst = c
            .iter()
            .zip(n.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{worst}");
    }
}
