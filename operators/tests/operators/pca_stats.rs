//! PCA statistics: shards merged equal one pass, the covariance and the strip products against
//! direct formulas.

use ldae_operators::pca::PcaStats;

fn data(rows: usize, d: usize, seed: u32) -> Vec<f32> {
    (0..rows * d)
        .map(|i| {
            (((i as u32).wrapping_mul(2654435761).wrapping_add(seed)) % 1000) as f32 / 500.0 - 1.0
        })
        .collect()
}

#[test]
fn merged_shards_equal_one_pass() {
    let (a, b) = (data(100, 6, 1), data(37, 6, 2));
    let mut one = PcaStats::new(6);
    one.add(&a).unwrap();
    one.add(&b).unwrap();
    let mut s1 = PcaStats::new(6);
    s1.add(&a).unwrap();
    let mut s2 = PcaStats::new(6);
    s2.add(&b).unwrap();
    s1.merge(&s2).unwrap();
    assert_eq!(s1.count, one.count);
    for (x, y) in s1.outer.iter().zip(&one.outer) {
        assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0));
    }
}

#[test]
fn covariance_matches_direct_formula() {
    let x = data(50, 3, 9);
    let mut s = PcaStats::new(3);
    s.add(&x).unwrap();
    let cov = s.covariance().unwrap();
    let m = s.mean();
    for i in 0..3 {
        for j in 0..3 {
            let direct: f64 = x
                .chunks(3)
                .map(|r| (r[i] as f64 - m[i]) * (r[j] as f64 - m[j]))
                .sum::<f64>()
                / 49.0;
            assert!((cov[i * 3 + j] - direct).abs() < 1e-12);
        }
    }
}

#[test]
fn strip_products_equal_the_full_outer_product() {
    // 130 = two full 64-row strips and a 2-row one; 4200 rows = two blocks.
    let (rows, d) = (4200, 130);
    let x = data(rows, d, 5);
    let mut s = PcaStats::new(d);
    s.add(&x).unwrap();
    for i in 0..d {
        for j in 0..d {
            let direct: f64 = x.chunks(d).map(|r| r[i] as f64 * r[j] as f64).sum();
            let got = s.outer[i * d + j];
            assert!(
                (got - direct).abs() <= 1e-9 * direct.abs().max(1.0),
                "({i}, {j}): {got} vs {direct}"
            );
        }
    }
    assert_eq!(s.count, rows as u64);
}
