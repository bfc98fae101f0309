//! Noise draws: functions of (seed, epoch, row) only; levels and noise have the schedule's law.

use ldae_operators::noise::{draw_noise, sigma_of, NoiseSchedule};

#[test]
fn draws_depend_on_row_seed_and_epoch_only() {
    let a = draw_noise(NoiseSchedule::MultiLevel, 1, 0, "x", 8);
    assert_eq!(a, draw_noise(NoiseSchedule::MultiLevel, 1, 0, "x", 8));
    assert_ne!(a.2, draw_noise(NoiseSchedule::MultiLevel, 1, 1, "x", 8).2);
    assert_ne!(a.2, draw_noise(NoiseSchedule::MultiLevel, 2, 0, "x", 8).2);
    let single = draw_noise(NoiseSchedule::SingleLevel { sigma: 0.5 }, 1, 0, "x", 4);
    assert_eq!((single.0, single.1), (-1, 0.5));
}

#[test]
fn levels_cover_the_schedule_and_noise_is_standard_normal() {
    let mut ts = Vec::new();
    let mut eps = Vec::new();
    for i in 0..2000 {
        let (t, sigma, e) = draw_noise(NoiseSchedule::MultiLevel, 3, 0, &format!("r{i}"), 10);
        assert!((sigma - sigma_of(t as u32)).abs() < 1e-7);
        ts.push(t);
        eps.extend(e);
    }
    let mean_t = ts.iter().sum::<i64>() as f64 / ts.len() as f64;
    assert!((mean_t - 499.5).abs() < 20.0, "{mean_t}");
    let n = eps.len() as f64;
    let m = eps.iter().map(|&v| v as f64).sum::<f64>() / n;
    let v = eps.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.03, "{m} {v}");
}
