//! Every fill the probe uses changes only the region's pixels.

use clarity_image::{Channels, Image};
use clarity_perturb::{Fill, RegionMask, derive_seed, mask_region, rng_from_seed};

fn image16() -> Image {
    let v: Vec<u16> = (0..40u32 * 30)
        .map(|i| (i.wrapping_mul(2654435761) >> 16) as u16)
        .collect();
    Image::from_u16(40, 30, Channels::Gray, v).unwrap()
}

fn image_rgb8() -> Image {
    let v: Vec<u8> = (0..40u32 * 30 * 3).map(|i| (i * 37 % 251) as u8).collect();
    Image::from_u8(40, 30, Channels::Rgb, v).unwrap()
}

#[test]
fn fills_leave_outside_pixels_unchanged() {
    // An irregular component-like mask.
    let mask: Vec<bool> = (0..40 * 30)
        .map(|i: i32| {
            let (x, y) = (i % 40, i / 40);
            (x - 12).pow(2) + (y - 14).pow(2) <= 30 || ((25..31).contains(&x) && y == 3)
        })
        .collect();
    let region = RegionMask::Pixels {
        width: 40,
        height: 30,
        mask: mask.clone(),
    };
    for img in [image16(), image_rgb8()] {
        let c = img.channels().count();
        for fill in [
            Fill::Constant(0.0),
            Fill::Constant(1.0),
            Fill::Mean,
            Fill::Blur { sigma: 3.0 },
            Fill::Noise,
            Fill::Inpaint,
        ] {
            let mut rng = rng_from_seed(derive_seed(0, "case", "probe/C1/fill"));
            let out = mask_region(&img, &region, fill, &mut rng).unwrap();
            let (a, b): (Vec<u32>, Vec<u32>) = match (img.samples(), out.samples()) {
                (clarity_image::Samples::U8(a), clarity_image::Samples::U8(b)) => (
                    a.iter().map(|&x| x as u32).collect(),
                    b.iter().map(|&x| x as u32).collect(),
                ),
                (clarity_image::Samples::U16(a), clarity_image::Samples::U16(b)) => (
                    a.iter().map(|&x| x as u32).collect(),
                    b.iter().map(|&x| x as u32).collect(),
                ),
                _ => panic!("depth changed"),
            };
            let mut changed_inside = 0;
            for (p, m) in mask.iter().enumerate() {
                let (pa, pb) = (&a[p * c..(p + 1) * c], &b[p * c..(p + 1) * c]);
                if *m {
                    changed_inside += (pa != pb) as usize;
                } else {
                    assert_eq!(pa, pb, "{fill:?}: pixel {p} outside the region changed");
                }
            }
            assert!(changed_inside > 0, "{fill:?} changed nothing inside");
        }
    }
}
