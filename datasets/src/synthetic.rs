//! A deterministic synthetic image generator: `classes` classes of procedurally drawn shapes on
//! textured backgrounds. Each class has its own shape and hue, so a probe can learn the classes;
//! position, size, colour jitter, background and noise vary per image. Image `i` depends only on
//! the dataset seed and `i`, never on the run's seed, thread count or batch size.

use rand::{Rng, SeedableRng};

use arrow::buffer::Buffer;
use ldae_pipeline::{Error, Rejection, Result};

use crate::format::{FormatConfig, Probe};
use crate::indexed::{Payload, RawRow, RowReader};

/// Settings of the synthetic dataset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Number of images.
    pub count: usize,
    /// Side of the square RGB images, in pixels.
    pub size: usize,
    /// Number of classes.
    pub classes: usize,
    /// Seed of the dataset itself (not of the run).
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            count: 1000,
            size: 32,
            classes: 10,
            seed: 0,
        }
    }
}

/// Generates synthetic images on demand.
pub struct SyntheticReader {
    config: SyntheticConfig,
}

impl SyntheticReader {
    /// A generator for `config`.
    pub fn new(config: SyntheticConfig) -> Self {
        SyntheticReader { config }
    }
}

/// The shapes classes cycle through.
const SHAPES: [&str; 5] = ["disk", "square", "triangle", "ring", "cross"];

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(1.0) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Whether point (x, y), in units of the shape's radius around its centre, is inside `shape`.
fn inside(shape: &str, x: f32, y: f32) -> bool {
    match shape {
        "disk" => x * x + y * y <= 1.0,
        "square" => x.abs() <= 0.8 && y.abs() <= 0.8,
        "triangle" => y <= 0.8 && y >= -1.0 + 2.0 * x.abs() * 0.9,
        "ring" => {
            let r = x * x + y * y;
            (0.45..=1.0).contains(&r)
        }
        _ => (x.abs() <= 0.3 && y.abs() <= 1.0) || (y.abs() <= 0.3 && x.abs() <= 1.0),
    }
}

/// Draw image `index` of the dataset: `size * size * 3` bytes, row-major HWC.
pub fn draw(config: &SyntheticConfig, index: usize) -> (Vec<u8>, i64) {
    let label = index % config.classes.max(1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        config.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let s = config.size as f32;
    let shape = SHAPES[label % SHAPES.len()];
    let hue = label as f32 / config.classes.max(1) as f32 + rng.random_range(-0.03..0.03);
    let fg = hsv(hue, rng.random_range(0.6..1.0), rng.random_range(0.7..1.0));
    let bg_a = hsv(
        rng.random(),
        rng.random_range(0.0..0.5),
        rng.random_range(0.1..0.5),
    );
    let bg_b = hsv(
        rng.random(),
        rng.random_range(0.0..0.5),
        rng.random_range(0.1..0.5),
    );
    let radius = s * rng.random_range(0.2..0.38);
    let cx = s * 0.5 + rng.random_range(-0.2..0.2) * s;
    let cy = s * 0.5 + rng.random_range(-0.2..0.2) * s;
    let angle: f32 = rng.random_range(-0.4..0.4);
    let (sin, cos) = angle.sin_cos();
    let stripes = rng.random_range(2.0..6.0) / s;
    let noise = rng.random_range(0.0..0.08);
    let mut out = Vec::with_capacity(config.size * config.size * 3);
    for py in 0..config.size {
        for px in 0..config.size {
            let (fx, fy) = (px as f32 + 0.5, py as f32 + 0.5);
            let t = ((fx + fy) * stripes).sin() * 0.5 + 0.5;
            let (dx, dy) = ((fx - cx) / radius, (fy - cy) / radius);
            let (rx, ry) = (cos * dx + sin * dy, -sin * dx + cos * dy);
            let colour = if inside(shape, rx, ry) {
                fg
            } else {
                [0, 1, 2].map(|c| bg_a[c] * t + bg_b[c] * (1.0 - t))
            };
            for c in colour {
                let v = c + rng.random_range(-noise..=noise);
                out.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
    }
    (out, label as i64)
}

impl RowReader for SyntheticReader {
    fn kind(&self) -> &'static str {
        "synthetic"
    }
    fn len(&self) -> usize {
        self.config.count
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        Some([self.config.size, self.config.size, 3])
    }
    fn class_names(&self) -> Option<Vec<String>> {
        Some(
            (0..self.config.classes)
                .map(|k| format!("{}-{k}", SHAPES[k % SHAPES.len()]))
                .collect(),
        )
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let (pixels, label) = draw(&self.config, index);
        Ok(RawRow {
            id: format!("synthetic:{index}"),
            label: Some(label),
            payload: Payload::Pixels(Buffer::from_vec(pixels)),
        })
    }
}

/// `synthetic`: generated images, `input = "synthetic:N"` for N of them: each class a shape
/// and hue on a textured background. Detected from the `synthetic:` prefix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticFormat {
    /// Side of the square RGB images, in pixels.
    pub size: usize,
    /// Number of classes.
    pub classes: usize,
    /// Seed of the dataset itself (not of the run).
    pub seed: u64,
}

impl Default for SyntheticFormat {
    fn default() -> Self {
        let SyntheticConfig {
            size,
            classes,
            seed,
            ..
        } = SyntheticConfig::default();
        SyntheticFormat {
            size,
            classes,
            seed,
        }
    }
}

/// The prefix of a synthetic input.
pub const PREFIX: &str = "synthetic:";

/// Whether `input` names synthetic data rather than a path.
pub fn is_synthetic(input: &str) -> bool {
    input.starts_with(PREFIX)
}

impl FormatConfig for SyntheticFormat {
    const NAME: &'static str = "synthetic";
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>> {
        Ok(is_synthetic(input.input()).then_some(100))
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        let count = input
            .strip_prefix(PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "'{input}': expected synthetic:N, e.g. synthetic:1000"
                ))
            })?;
        if self.size == 0 || self.classes == 0 {
            return Err(Error::invalid(
                "synthetic data needs an image side and a class count of at least 1",
            ));
        }
        Ok(Box::new(SyntheticReader::new(SyntheticConfig {
            count,
            size: self.size,
            classes: self.classes,
            seed: self.seed,
        })))
    }
}

crate::register_format!(SyntheticFormat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_and_distinct() {
        let c = SyntheticConfig::default();
        assert_eq!(draw(&c, 5), draw(&c, 5));
        assert_ne!(draw(&c, 5).0, draw(&c, 15).0);
        assert_eq!(draw(&c, 5).0.len(), 32 * 32 * 3);
        assert_eq!(draw(&c, 13).1, 3);
    }
}
