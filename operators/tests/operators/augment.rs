//! Augmentation crops: inside the image, a function of row and epoch; the centre square.

use ldae_operators::augment::{center_square, random_resized_crop, AugmentConfig, CropPlan};

#[test]
fn crops_stay_inside_and_depend_on_row_and_epoch() {
    let c = AugmentConfig::default();
    for i in 0..200 {
        let id = format!("row{i}");
        let p = random_resized_crop(&c, &id, 40, 30);
        assert!(p.x + p.width <= 40 && p.y + p.height <= 30 && p.width > 0);
        assert_eq!(p, random_resized_crop(&c, &id, 40, 30));
    }
    let e1 = AugmentConfig {
        epoch: 1,
        ..c.clone()
    };
    let differ = (0..50)
        .filter(|i| {
            let id = format!("row{i}");
            random_resized_crop(&c, &id, 64, 64) != random_resized_crop(&e1, &id, 64, 64)
        })
        .count();
    assert!(differ > 40);
}

#[test]
fn center_square_is_centred() {
    assert_eq!(
        center_square(50, 30),
        CropPlan {
            x: 10,
            y: 0,
            width: 30,
            height: 30,
            flip: false
        }
    );
}
