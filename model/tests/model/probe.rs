//! Probe behaviour on features whose answer is known: linearly separable classes are learned
//! perfectly, random labels stay at chance.

use candle_core::Device;
use ldae_model::probe::{fit_linear, knn_classify, FeatureMatrix, KnnConfig, LinearConfig, Scores};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CLASSES: usize = 10;

/// Rows around class centres `margin` apart on separate axes (linearly separable for a large
/// margin), with labels either true or drawn at random.
fn features(rows: usize, dim: usize, margin: f32, random_labels: bool, seed: u64) -> FeatureMatrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut m = FeatureMatrix::new(dim);
    for i in 0..rows {
        let class = i % CLASSES;
        let row: Vec<f32> = (0..dim)
            .map(|j| {
                let centre = if j == class { margin } else { 0.0 };
                centre + rng.random_range(-0.5f32..0.5) * (1.0 + j as f32 * 0.1)
            })
            .collect();
        let label = if random_labels {
            rng.random_range(0..CLASSES as u32)
        } else {
            class as u32
        };
        m.push(&row, label);
    }
    m
}

fn quick() -> LinearConfig {
    LinearConfig {
        epochs: 20,
        batch_size: 256,
        ..LinearConfig::default()
    }
}

#[test]
fn separable_features_are_classified_perfectly() {
    let (train, test) = (
        features(2000, 32, 4.0, false, 1),
        features(500, 32, 4.0, false, 2),
    );
    let fit = fit_linear(train.clone(), CLASSES, &quick(), &Device::Cpu).unwrap();
    let linear = Scores::new(&fit.predict(&test).unwrap(), &test.labels, CLASSES);
    assert_eq!(linear.top1, 1.0, "linear probe {:?}", linear.per_class);
    // 62 rows per feature: the grid is tried on standardised and on decorrelated features.
    assert_eq!(
        fit.grid.len(),
        18,
        "3 learning rates x 3 weight decays x 2 coordinates tried"
    );
    assert_eq!(fit.grid.iter().filter(|g| g.decorrelated).count(), 9);
    let knn = knn_classify(&train, &test, CLASSES, &KnnConfig::default(), &Device::Cpu).unwrap();
    assert_eq!(Scores::new(&knn, &test.labels, CLASSES).top1, 1.0);
}

#[test]
fn random_labels_stay_near_chance() {
    let (train, test) = (
        features(3000, 32, 4.0, true, 3),
        features(2000, 32, 4.0, true, 4),
    );
    let fit = fit_linear(train.clone(), CLASSES, &quick(), &Device::Cpu).unwrap();
    let linear = Scores::new(&fit.predict(&test).unwrap(), &test.labels, CLASSES).top1;
    let knn = knn_classify(&train, &test, CLASSES, &KnnConfig::default(), &Device::Cpu).unwrap();
    let knn = Scores::new(&knn, &test.labels, CLASSES).top1;
    // Chance is 10%; 2000 test rows give a standard deviation of about 0.7 points.
    for (name, top1) in [("linear", linear), ("knn", knn)] {
        assert!(
            (0.06..0.14).contains(&top1),
            "{name} top-1 {top1} on random labels"
        );
    }
}

#[test]
fn results_do_not_depend_on_the_batch_size_of_prediction() {
    let (train, test) = (
        features(1000, 16, 1.0, false, 5),
        features(300, 16, 1.0, false, 6),
    );
    let fit = fit_linear(train.clone(), CLASSES, &quick(), &Device::Cpu).unwrap();
    let whole = fit.logits(&test).unwrap();
    let half: Vec<f32> = [0..150usize, 150..300]
        .into_iter()
        .flat_map(|r| fit.logits(&test.select(&r.collect::<Vec<_>>())).unwrap())
        .collect();
    assert_eq!(whole, half);
    let a = fit_linear(train.clone(), CLASSES, &quick(), &Device::Cpu).unwrap();
    assert_eq!(a.logits(&test).unwrap(), whole, "same seed, same probe");
}
