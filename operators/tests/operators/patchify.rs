//! Patch geometry: unpatchify inverts patchify, patchify_into appends the same values, the
//! documented element order, bad sizes.

use ldae_operators::patchify::PatchGeometry;

#[test]
fn unpatchify_inverts_patchify() {
    for (s, c, p) in [(32, 3, 4), (28, 1, 7), (16, 3, 16), (6, 2, 1)] {
        let g = PatchGeometry::new(s, c, p).unwrap();
        let image: Vec<f32> = (0..s * s * c).map(|x| (x as f32).sin()).collect();
        let mut patches = vec![0.0; image.len()];
        g.patchify(&image, &mut patches);
        let mut back = vec![0.0; image.len()];
        g.unpatchify(&patches, &mut back);
        assert_eq!(back, image);
    }
}

#[test]
fn patchify_into_appends_what_patchify_writes() {
    for (s, c, p) in [(32, 3, 4), (28, 1, 7), (16, 3, 16), (6, 2, 1)] {
        let g = PatchGeometry::new(s, c, p).unwrap();
        let image: Vec<f32> = (0..s * s * c).map(|x| (x as f32).cos()).collect();
        let mut patches = vec![0.0; image.len()];
        g.patchify(&image, &mut patches);
        // Two images one after another, after something already in the buffer.
        let mut appended = vec![7.0];
        g.patchify_into(&image, &mut appended);
        g.patchify_into(&image, &mut appended);
        assert_eq!(appended.len(), 1 + 2 * image.len());
        assert_eq!(appended[0], 7.0);
        assert_eq!(&appended[1..1 + image.len()], &patches[..]);
        assert_eq!(&appended[1 + image.len()..], &patches[..]);
    }
}

#[test]
fn element_order_is_as_documented() {
    let g = PatchGeometry::new(4, 3, 2).unwrap();
    let image: Vec<f32> = (0..48).map(|x| x as f32).collect();
    let mut patches = vec![0.0; 48];
    g.patchify(&image, &mut patches);
    // token 1 = grid (0, 1); element (py=1, px=0, c=2) = pixel (1, 2) channel 2.
    let d = g.patch_dim();
    assert_eq!(patches[d + (2) * 3 + 2], image[(4 + 2) * 3 + 2]);
}

#[test]
fn rejects_patch_not_dividing_size() {
    assert!(PatchGeometry::new(32, 3, 5).is_err());
}
