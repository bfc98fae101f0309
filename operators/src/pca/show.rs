//! A picture of the principal components: each drawn as a `p x p` image patch, enlarged, in a
//! grid ordered by eigenvalue (row-major), each scaled so its largest |value| spans the range
//! (mid-grey = 0).

use image::{Rgb, RgbImage};

use super::model::PcaModel;

/// Draw the first `count` components of `model`, each enlarged `zoom` times.
pub fn draw_components(model: &PcaModel, count: usize, zoom: u32) -> RgbImage {
    let m = &model.meta;
    let (p, c, d) = (m.geometry.patch as u32, m.geometry.channels, model.dim());
    let count = count.clamp(1, d);
    let cols = (count as f64).sqrt().ceil() as u32;
    let rows = (count as u32).div_ceil(cols);
    let (cell, gap) = (p * zoom, 2u32);
    let mut img = RgbImage::from_pixel(
        cols * (cell + gap) + gap,
        rows * (cell + gap) + gap,
        Rgb([255, 255, 255]),
    );
    for k in 0..count {
        let v = &model.components[k * d..(k + 1) * d];
        let peak = v.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-12);
        let (ox, oy) = (
            gap + (k as u32 % cols) * (cell + gap),
            gap + (k as u32 / cols) * (cell + gap),
        );
        for py in 0..p {
            for px in 0..p {
                let base = ((py * p + px) as usize) * c;
                let level = |ch: usize| ((v[base + ch] / peak + 1.0) * 127.5).round() as u8;
                let rgb = if c >= 3 {
                    Rgb([level(0), level(1), level(2)])
                } else {
                    Rgb([level(0); 3])
                };
                for zy in 0..zoom {
                    for zx in 0..zoom {
                        img.put_pixel(ox + px * zoom + zx, oy + py * zoom + zy, rgb);
                    }
                }
            }
        }
    }
    img
}
