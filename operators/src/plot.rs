//! Small pictures for people: text labels (an 8x8 bitmap font), lines, and the confusion matrix.

use std::path::Path;

use image::{Rgb, RgbImage};
use ldae_pipeline::{Error, Result};

use crate::atomic::{commit, temp_path};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_marks_pixels_and_confusion_has_cells() {
        let mut img = RgbImage::from_pixel(40, 10, Rgb([255, 255, 255]));
        draw_text(&mut img, 0, 0, "1", Rgb([0, 0, 0]), 1);
        let dark = img.pixels().filter(|p| p.0[0] == 0).count();
        assert!(dark > 5 && dark < 40, "{dark} pixels drawn for '1'");
        let c = draw_confusion(&[vec![9, 1], vec![0, 10]], &["a".into(), "b".into()], "t");
        // The diagonal cells are dark (most of their row), the empty cell white.
        let probe = |px: u32, py: u32| c.get_pixel(px, py).0[0];
        let left = 8 * 5 + 8;
        assert!(probe(left + 3, 40 + 3) < 100);
        assert_eq!(probe(left + 36 + 3, 40 + 36 + 3), 20);
        assert_eq!(probe(left + 3, 40 + 36 + 3), 255);
    }
}
