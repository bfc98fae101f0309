//! PCA numerics: the fitted basis against a direct eigen-equation check, reconstruction error
//! against the discarded eigenvalues, project -> inverse identity at d = D.

use candle_core::Device;
use ldae_operators::normalize::Normalization;
use ldae_operators::patchify::PatchGeometry;
use ldae_operators::pca::{LatentScale, PcaMeta, PcaModel, PcaStats};
use rand::{Rng, SeedableRng};

fn meta() -> PcaMeta {
    PcaMeta {
        geometry: PatchGeometry {
            size: 8,
            patch: 2,
            channels: 3,
        },
        normalization: Normalization::default(),
        latent_scale: LatentScale::Global,
        samples: 0,
        images: 0,
        fingerprint: String::new(),
        input: "test".into(),
    }
}

/// Correlated 12-dimensional data: a random linear map of independent variables of decaying
/// scale, plus an offset.
fn data(rows: usize) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let d = 12;
    let mix: Vec<f32> = (0..d * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut out = Vec::with_capacity(rows * d);
    for _ in 0..rows {
        let z: Vec<f32> = (0..d)
            .map(|k| rng.random_range(-1.0f32..1.0) / (1.0 + k as f32))
            .collect();
        for i in 0..d {
            let v: f32 = (0..d).map(|k| mix[i * d + k] * z[k]).sum();
            out.push(v + 0.3);
        }
    }
    out
}

fn fitted(x: &[f32]) -> PcaModel {
    let mut stats = PcaStats::new(12);
    for chunk in x.chunks(12 * 100) {
        stats.add(chunk).unwrap();
    }
    PcaModel::fit(&stats, meta()).unwrap()
}

#[test]
fn basis_is_orthonormal_sorted_and_solves_the_eigen_equation() {
    let x = data(2000);
    let model = fitted(&x);
    let d = 12;
    let mut stats = PcaStats::new(d);
    stats.add(&x).unwrap();
    let cov = stats.covariance().unwrap();
    for k in 0..d {
        let v = &model.components[k * d..(k + 1) * d];
        // C v = lambda v
        for i in 0..d {
            let cv: f64 = (0..d).map(|j| cov[i * d + j] * v[j]).sum();
            assert!(
                (cv - model.eigenvalues[k] * v[i]).abs() < 1e-12,
                "component {k}"
            );
        }
        for l in 0..d {
            let dot: f64 = (0..d).map(|j| v[j] * model.components[l * d + j]).sum();
            assert!((dot - if k == l { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
        if k > 0 {
            assert!(model.eigenvalues[k] <= model.eigenvalues[k - 1]);
        }
    }
    let total: f64 = model.explained_variance_ratio().iter().sum();
    assert!((total - 1.0).abs() < 1e-12);
}

#[test]
fn reconstruction_error_is_the_sum_of_discarded_eigenvalues() {
    let x = data(3000);
    let model = fitted(&x);
    let n = (x.len() / 12) as f64;
    for dim in [1, 3, 6, 11] {
        let p = model
            .projector(dim, LatentScale::None, &Device::Cpu)
            .unwrap();
        let z = p.project_slice(&x, 100).unwrap();
        let back = p.inverse_slice(&z, 100).unwrap();
        let err: f64 = x
            .iter()
            .zip(&back)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            / n;
        // Mean squared error per patch = (n-1)/n * sum of the discarded eigenvalues (the
        // covariance uses the n-1 denominator).
        let discarded: f64 = model.eigenvalues[dim..].iter().sum::<f64>() * (n - 1.0) / n;
        assert!(
            (err - discarded).abs() < 1e-4 * discarded.max(1e-9) + 1e-6,
            "d={dim}: {err} vs {discarded}"
        );
    }
}

#[test]
fn project_then_inverse_with_all_components_is_identity() {
    let x = data(500);
    let model = fitted(&x);
    for scale in [LatentScale::None, LatentScale::Global, LatentScale::Whiten] {
        let p = model.projector(12, scale, &Device::Cpu).unwrap();
        let back = p
            .inverse_slice(&p.project_slice(&x, 100).unwrap(), 100)
            .unwrap();
        let worst = x
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{scale}: {worst}");
    }
}

#[test]
fn latent_scales_give_unit_variance() {
    let x = data(4000);
    let model = fitted(&x);
    let dim = 6;
    let var = |scale| {
        let z = model
            .projector(dim, scale, &Device::Cpu)
            .unwrap()
            .project_slice(&x, 100)
            .unwrap();
        let n = (z.len() / dim) as f64;
        (0..dim)
            .map(|k| {
                z.iter()
                    .skip(k)
                    .step_by(dim)
                    .map(|v| (*v as f64).powi(2))
                    .sum::<f64>()
                    / n
            })
            .collect::<Vec<f64>>()
    };
    let global = var(LatentScale::Global);
    assert!((global.iter().sum::<f64>() / dim as f64 - 1.0).abs() < 1e-3);
    assert!(var(LatentScale::Whiten)
        .iter()
        .all(|v| (v - 1.0).abs() < 1e-3));
}

#[test]
fn model_round_trips_through_safetensors() {
    let model = fitted(&data(300));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    assert_eq!(PcaModel::load(&path).unwrap(), model);
    std::fs::write(&path, b"garbage").unwrap();
    let err = PcaModel::load(&path).unwrap_err().to_string();
    assert!(err.contains("m.safetensors"), "{err}");
}

#[test]
fn saving_a_model_always_writes_the_same_bytes() {
    // The safetensors header is written from a hash map; a file must not depend on its order.
    let model = fitted(&data(500));
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.safetensors");
    model.save(&first).unwrap();
    let bytes = std::fs::read(&first).unwrap();
    for i in 0..8 {
        let again = dir.path().join(format!("again{i}.safetensors"));
        model.save(&again).unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), bytes);
    }
    assert_eq!(PcaModel::load(&first).unwrap(), model);
}

#[test]
fn compatibility_is_one_check_that_names_what_differs() {
    let m = meta();
    assert_eq!(m.compatible(&m.geometry, &m.normalization), Ok(()));
    let gray = PatchGeometry {
        channels: 1,
        ..m.geometry
    };
    let e = m.compatible(&gray, &m.normalization).unwrap_err();
    assert!(
        e.contains("1 channel(s)") && e.contains("3 channel(s)"),
        "{e}"
    );
    let imagenet = Normalization::MeanStd {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
    };
    let e = m.compatible(&m.geometry, &imagenet).unwrap_err();
    assert!(e.starts_with("normalisation"), "{e}");
}

#[test]
fn patches_of_another_channel_count_are_a_plan_error() {
    use arrow::datatypes::{DataType, Schema};
    use ldae_pipeline::columns::{tensor_field, META_IMAGE_SIZE, META_PATCH_SIZE, PATCHES};
    // The model: 8x8 images, patch 2, 3 channels (D = 12, 16 tokens). The same image and patch
    // size with one channel gives patches of 4 values: the metadata keys agree, the width not.
    let model = fitted(&data(2000));
    let schema = |width: usize| {
        let metadata = [(META_IMAGE_SIZE, "8"), (META_PATCH_SIZE, "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Schema::new(vec![tensor_field(PATCHES, DataType::Float32, &[16, width])])
            .with_metadata(metadata)
    };
    model.check_patch_metadata(&schema(12), "test").unwrap();
    let e = model
        .check_patch_metadata(&schema(4), "test")
        .unwrap_err()
        .chain();
    assert!(
        e.contains("patches of 4 values") && e.contains("3 channel(s)"),
        "{e}"
    );
}
