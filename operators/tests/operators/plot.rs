//! The plots: error bars, text and confusion cells land where they should.

use image::{Rgb, RgbImage};
use ldae_operators::plot::{draw_confusion, draw_error_bars, draw_text, Series, CHAR};

#[test]
fn error_bars_span_low_to_high_in_the_series_colour() {
    let red = Rgb([200, 0, 0]);
    let img = draw_error_bars(
        "t",
        "x",
        &["a".into(), "b".into()],
        &[Series {
            name: "s".into(),
            colour: red,
            points: vec![Some((50.0, 40.0, 60.0)), None],
        }],
    );
    // The bar of category "a" is a vertical red run at its x, far taller than it is wide.
    let x = (6 * CHAR + 8) as f64 + (640.0 - (6 * CHAR + 8) as f64 - 16.0) * 0.25;
    let red_rows = (0..img.height())
        .filter(|&y| *img.get_pixel(x as u32, y) == red)
        .count();
    assert!(red_rows > 200, "{red_rows} red pixels in the bar's column");
    // Nothing is drawn for the missing point: the right half has no red below the legend.
    let right_half_red = (3 * CHAR + 8..img.height())
        .flat_map(|y| (400..600).map(move |x| (x, y)))
        .filter(|&(x, y)| *img.get_pixel(x, y) == red)
        .count();
    assert_eq!(right_half_red, 0);
}

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
