//! Small pictures for people: text labels (an 8x8 bitmap font), lines, and the confusion matrix.

use std::path::Path;

use image::{Rgb, RgbImage};
use ldae_pipeline::{Error, Result};

use ldae_pipeline::atomic_file::{commit, temp_path};

/// Width of one character at scale 1, in pixels.
pub const CHAR: u32 = 8;

/// Draw `text` with its top-left corner at (x, y), each font pixel `scale` pixels wide.
/// Characters outside ASCII are drawn as `?`; what falls outside the image is clipped.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, colour: Rgb<u8>, scale: u32) {
    for (i, ch) in text.chars().enumerate() {
        let code = if ch.is_ascii() {
            ch as usize
        } else {
            '?' as usize
        };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let left = x + i as u32 * CHAR * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u32 {
                // Bit 0 is the leftmost pixel of the row.
                if bits >> col & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (px, py) = (left + col * scale + dx, y + row as u32 * scale + dy);
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Draw a straight line from (x0, y0) to (x1, y1), clipped to the image.
pub fn draw_line(img: &mut RgbImage, from: (f64, f64), to: (f64, f64), colour: Rgb<u8>) {
    let (x0, y0) = from;
    let (x1, y1) = to;
    let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for k in 0..=n {
        let f = k as f64 / n as f64;
        let (x, y) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// Draw the x axis (bottom) and y axis (left) of a plot area inset by `(left, top, right,
/// bottom)` pixels from the picture's edges.
pub fn draw_axes(img: &mut RgbImage, inset: (u32, u32, u32, u32), colour: Rgb<u8>) {
    let (left, top, right, bottom) = inset;
    let (w, h) = (img.width(), img.height());
    let (x0, x1) = (left as f64, (w - right) as f64);
    let (y0, y1) = (top as f64, (h - bottom) as f64);
    draw_line(img, (x0, y1), (x1, y1), colour);
    draw_line(img, (x0, y0), (x0, y1), colour);
}

/// Save a picture as PNG atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let temp = temp_path(path);
    img.save_with_format(&temp, image::ImageFormat::Png)
        .map_err(|e| Error::external(format!("{}", path.display()), e))?;
    commit(&temp, path)
}

/// Draw a confusion matrix (`counts[true][predicted]`): rows are true classes, columns
/// predictions; each cell is shaded by the share of its row and shows that share in percent.
/// Class names label the rows (and numbers the columns, in the same order).
pub fn draw_confusion(counts: &[Vec<usize>], names: &[String], title: &str) -> RgbImage {
    let classes = counts.len() as u32;
    let cell = 36u32;
    let label_width = names
        .iter()
        .map(|n| n.chars().count().min(14) as u32 + 4)
        .max()
        .unwrap_or(4)
        * CHAR;
    let (left, top) = (label_width + 8, 40u32);
    let width = (left + classes * cell + 16).max(title.len() as u32 * CHAR + 16);
    let height = top + classes * cell + 28;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let black = Rgb([0, 0, 0]);
    draw_text(&mut img, 8, 8, title, black, 1);
    draw_text(&mut img, left, 24, "predicted ->", black, 1);
    for (t, row) in counts.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        let name: String = names
            .get(t)
            .cloned()
            .unwrap_or_else(|| t.to_string())
            .chars()
            .take(14)
            .collect();
        let y = top + t as u32 * cell;
        draw_text(
            &mut img,
            8,
            y + cell / 2 - 4,
            &format!("{t:>2} {name}"),
            black,
            1,
        );
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            // White to dark blue by share.
            let shade = |full: f64| (255.0 - share * (255.0 - full)) as u8;
            let colour = Rgb([shade(20.0), shade(50.0), shade(140.0)]);
            let x = left + p as u32 * cell;
            for dy in 1..cell {
                for dx in 1..cell {
                    img.put_pixel(x + dx, y + dy, colour);
                }
            }
            if count > 0 {
                let text = format!("{:.0}", share * 100.0);
                let ink = if share > 0.5 {
                    Rgb([255, 255, 255])
                } else {
                    black
                };
                let tx = x + (cell - text.len() as u32 * CHAR) / 2;
                draw_text(&mut img, tx, y + cell / 2 - 4, &text, ink, 1);
            }
        }
    }
    for p in 0..classes {
        let text = p.to_string();
        let x = left + p * cell + (cell - text.len() as u32 * CHAR) / 2;
        draw_text(&mut img, x, top + classes * cell + 8, &text, black, 1);
    }
    img
}

/// One line of a [`draw_error_bars`] chart: a value (mean, lowest, highest) per category.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Line and bar colour.
    pub colour: Rgb<u8>,
    /// Per category (in the chart's order): `(mean, low, high)`, or `None` where missing.
    pub points: Vec<Option<(f64, f64, f64)>>,
}

/// A line chart over categorical x values (`categories`, evenly spaced), each point its mean
/// with a vertical bar from its lowest to its highest value: how a measurement moves with a
/// setting, with the spread between seeds.
pub fn draw_error_bars(
    title: &str,
    x_label: &str,
    categories: &[String],
    series: &[Series],
) -> RgbImage {
    let (width, height) = (640u32, 400u32);
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let black = Rgb([0, 0, 0]);
    let (left, right, top, bottom) = (6 * CHAR + 8, 16u32, 3 * CHAR + 8, 4 * CHAR + 8);
    draw_text(&mut img, left, 4, title, black, 1);
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .flat_map(|&(m, lo, hi)| [m, lo, hi]);
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (plot_w, plot_h) = (
        (width - left - right) as f64,
        (height - top - bottom) as f64,
    );
    draw_axes(&mut img, (left, top, right, bottom), black);
    if !min.is_finite() || categories.is_empty() {
        return img;
    }
    // A little room above and below, so bars do not touch the frame.
    let pad = ((max - min) * 0.08).max(0.5);
    let (min, max) = (min - pad, max + pad);
    let x_of = |i: usize| left as f64 + plot_w * (i as f64 + 0.5) / categories.len() as f64;
    let y_of = |v: f64| top as f64 + plot_h * (1.0 - (v - min) / (max - min));
    for (i, c) in categories.iter().enumerate() {
        let x = (x_of(i) as u32).saturating_sub(c.len() as u32 * CHAR / 2);
        draw_text(&mut img, x, height - bottom + 6, c, black, 1);
    }
    let label_x = (left + (width - left - right) / 2).saturating_sub(x_label.len() as u32 * 4);
    draw_text(
        &mut img,
        label_x,
        height - bottom + 6 + 2 * CHAR,
        x_label,
        black,
        1,
    );
    for v in [min + pad, max - pad] {
        let y = (y_of(v) as u32).saturating_sub(CHAR / 2);
        draw_text(&mut img, 2, y, &format!("{v:.1}"), black, 1);
        draw_line(
            &mut img,
            (left as f64 - 4.0, y_of(v)),
            (left as f64, y_of(v)),
            black,
        );
    }
    for (k, s) in series.iter().enumerate() {
        let legend_y = 4 + (k as u32 + 1) * (CHAR + 2);
        draw_text(
            &mut img,
            width - right - 24 * CHAR,
            legend_y,
            &s.name,
            s.colour,
            1,
        );
        let mut previous: Option<(f64, f64)> = None;
        for (i, point) in s.points.iter().enumerate() {
            let Some((mean, lo, hi)) = *point else {
                previous = None;
                continue;
            };
            let x = x_of(i) + k as f64 * 3.0;
            draw_line(&mut img, (x, y_of(lo)), (x, y_of(hi)), s.colour);
            for v in [lo, hi] {
                draw_line(&mut img, (x - 3.0, y_of(v)), (x + 3.0, y_of(v)), s.colour);
            }
            for d in -2..=2 {
                let d = d as f64;
                draw_line(
                    &mut img,
                    (x - 2.0, y_of(mean) + d),
                    (x + 2.0, y_of(mean) + d),
                    s.colour,
                );
            }
            if let Some(p) = previous {
                draw_line(&mut img, p, (x, y_of(mean)), s.colour);
            }
            previous = Some((x, y_of(mean)));
        }
    }
    img
}
