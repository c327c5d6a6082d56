//! Behaviour of the phantom generator: determinism, sizes, depths, ground truth, errors.

use clarity_image::{BitDepth, Samples};
use clarity_phantom::{
    LesionKind, LesionSpec, PhantomError, PhantomSpec, Zone, class_names, cohort, cohort_spec,
    generate, label_for,
};

fn spec(size: u32, seed: u64, lesion: Option<LesionSpec>) -> PhantomSpec {
    PhantomSpec {
        size,
        depth: BitDepth::Eight,
        seed,
        lesion,
    }
}

fn nodule(zone: Zone) -> LesionSpec {
    LesionSpec {
        kind: LesionKind::Nodule,
        zone,
        size: 0.08,
        contrast: 0.2,
    }
}

fn gray8(p: &clarity_phantom::Phantom) -> &[u8] {
    match p.image.samples() {
        Samples::U8(v) => v,
        Samples::U16(_) => panic!("expected 8-bit"),
    }
}

fn mean_in(p: &clarity_phantom::Phantom, [x0, y0, x1, y1]: [u32; 4]) -> f64 {
    let w = p.image.width() as usize;
    let px = gray8(p);
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in y0 as usize..y1 as usize {
        for x in x0 as usize..x1 as usize {
            sum += f64::from(px[y * w + x]);
            n += 1.0;
        }
    }
    sum / n
}

#[test]
fn same_seed_same_pixels_different_seed_different() {
    let a = generate(&spec(96, 7, Some(nodule(Zone::LeftMiddle)))).unwrap();
    let b = generate(&spec(96, 7, Some(nodule(Zone::LeftMiddle)))).unwrap();
    let c = generate(&spec(96, 8, Some(nodule(Zone::LeftMiddle)))).unwrap();
    assert_eq!(a.image.content_hash(), b.image.content_hash());
    assert_eq!(a.truth, b.truth);
    assert_ne!(a.image.content_hash(), c.image.content_hash());
    assert_eq!(a.id, "phantom-0000000000000007");
}

#[test]
fn golden_hash_pins_the_renderer() {
    // Any change to the renderer changes this hash: bump it deliberately, never by accident,
    // since recorded sweeps and the builtin model's training data depend on these pixels.
    let p = generate(&spec(64, 1, Some(nodule(Zone::RightUpper)))).unwrap();
    assert_eq!(p.image.content_hash(), GOLDEN_64_SEED1);
}
const GOLDEN_64_SEED1: &str = "1f9202dba718c7800957a5328c1c92d01736fb1df3240e205895d2d47cbef3d3";

#[test]
fn sizes_64_and_1024_and_both_depths() {
    for size in [64, 1024] {
        let p = generate(&spec(size, 3, None)).unwrap();
        assert_eq!((p.image.width(), p.image.height()), (size, size));
        assert_eq!(p.image.depth(), BitDepth::Eight);
    }
    let s16 = PhantomSpec {
        depth: BitDepth::Sixteen,
        ..spec(128, 3, None)
    };
    let p16 = generate(&s16).unwrap();
    let p8 = generate(&spec(128, 3, None)).unwrap();
    assert_eq!(p16.image.depth(), BitDepth::Sixteen);
    // Same field quantised twice: the 16-bit image reduced to 8 bits is within one step.
    let (reduced, _) = p16.image.to_gray8();
    let Samples::U8(r) = reduced.samples() else {
        panic!()
    };
    let diff = r
        .iter()
        .zip(gray8(&p8))
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(diff <= 1, "max 8-bit difference {diff}");
    // 16-bit carries more than 256 distinct levels.
    let Samples::U16(v) = p16.image.samples() else {
        panic!()
    };
    let mut levels: Vec<u16> = v.clone();
    levels.sort_unstable();
    levels.dedup();
    assert!(levels.len() > 1000, "{} levels", levels.len());
}

#[test]
fn anatomy_is_a_chest_film() {
    let p = generate(&spec(128, 11, None)).unwrap();
    // Lungs darker than the mediastinum/spine and than the abdomen; air outside darkest.
    let right_lung = mean_in(&p, [35, 50, 50, 70]);
    let left_lung = mean_in(&p, [88, 50, 100, 70]);
    let spine = mean_in(&p, [61, 40, 67, 60]);
    let abdomen = mean_in(&p, [30, 110, 50, 125]);
    let heart = mean_in(&p, [70, 75, 80, 85]);
    let air = mean_in(&p, [0, 0, 6, 6]);
    assert!(right_lung + 30.0 < spine, "{right_lung} vs {spine}");
    assert!(left_lung + 30.0 < spine, "{left_lung} vs {spine}");
    assert!(right_lung + 30.0 < abdomen);
    assert!(left_lung + 30.0 < heart, "heart {heart} lung {left_lung}");
    assert!(air + 50.0 < right_lung.max(abdomen));
}

#[test]
fn patients_differ_in_exposure_positioning_and_lung_shape() {
    // Mean grey (exposure, habitus) and the centroid of the dark lung pixels (positioning,
    // lung size and shape) spread across seeds; a fixed template would give one value.
    let (mut means, mut cx, mut cy) = (Vec::new(), Vec::new(), Vec::new());
    for seed in 0..12 {
        let p = generate(&spec(128, seed, None)).unwrap();
        let px = gray8(&p);
        let mean = px.iter().map(|&v| f64::from(v)).sum::<f64>() / px.len() as f64;
        let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for y in 16..96 {
            for x in 8..120 {
                // Dark inside the thorax: lung (air outside the body is at the corners).
                if f64::from(px[y * 128 + x]) < mean - 25.0 && (24..104).contains(&x) {
                    n += 1.0;
                    sx += x as f64;
                    sy += y as f64;
                }
            }
        }
        means.push(mean);
        cx.push(sx / n);
        cy.push(sy / n);
    }
    let spread = |v: &[f64]| {
        v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
    };
    assert!(spread(&means) > 10.0, "mean grey {means:?}");
    assert!(spread(&cx) > 2.0, "lung centroid x {cx:?}");
    assert!(spread(&cy) > 2.0, "lung centroid y {cy:?}");
}

#[test]
fn lesion_is_in_its_zone_and_visible() {
    for (i, zone) in Zone::ALL.into_iter().enumerate() {
        for kind in [LesionKind::Nodule, LesionKind::Opacity] {
            let size = if kind == LesionKind::Nodule {
                0.07
            } else {
                0.18
            };
            let lesion = LesionSpec {
                kind,
                zone,
                size,
                contrast: 0.2,
            };
            let with = generate(&spec(256, i as u64, Some(lesion))).unwrap();
            let without = generate(&spec(256, i as u64, None)).unwrap();
            let bbox = with.truth.bbox.unwrap();
            let [x0, y0, x1, y1] = bbox;
            assert!(x0 < x1 && y0 < y1 && x1 <= 256 && y1 <= 256, "{bbox:?}");
            // Centre in the zone; a nodule's whole box inside it.
            let [zx0, zy0, zx1, zy1] = zone.bounds().map(|c| c * 256.0);
            let (cx, cy) = ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0);
            assert!(
                (zx0..zx1).contains(&cx) && (zy0..zy1).contains(&cy),
                "{zone}: {bbox:?}"
            );
            assert_eq!(Zone::from_point(cx / 256.0, cy / 256.0), zone);
            if kind == LesionKind::Nodule {
                // The box's end is rounded up to a whole pixel: allow that one pixel.
                assert!(
                    x0 as f32 >= zx0
                        && y0 as f32 >= zy0
                        && x1 as f32 <= zx1 + 1.0
                        && y1 as f32 <= zy1 + 1.0,
                    "{zone}: {bbox:?}"
                );
            }
            // The lesion brightens its box and leaves the rest of the image alone.
            // Measured on the middle half of the box: soft-edged lesions fade towards it.
            let core = [
                x0 + (x1 - x0) / 4,
                y0 + (y1 - y0) / 4,
                x1 - (x1 - x0) / 4,
                y1 - (y1 - y0) / 4,
            ];
            let gain = mean_in(&with, core) - mean_in(&without, core);
            assert!(gain > 10.0, "{kind} {zone}: gain {gain}");
            let far = if zone.is_right() {
                [200, 40, 230, 60]
            } else {
                [26, 40, 56, 60]
            };
            assert_eq!(mean_in(&with, far), mean_in(&without, far));
            assert_eq!(with.truth.label, format!("{kind}_{}", zone.side()));
            assert_eq!(with.truth.zone, Some(zone));
        }
    }
}

#[test]
fn cohort_is_balanced_deterministic_and_labelled() {
    let a = cohort(10, 64, BitDepth::Eight, 42).unwrap();
    let b = cohort(10, 64, BitDepth::Eight, 42).unwrap();
    assert_eq!(a.len(), 10);
    assert_eq!(a[0].id, "phantom-0000");
    assert_eq!(a[9].id, "phantom-0009");
    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
        assert_eq!(p.image, q.image);
        assert_eq!(p.truth.label, class_names()[i % class_names().len()]);
        assert!(class_names().contains(&p.truth.label.as_str()));
        assert_eq!(
            p.truth.label,
            label_for(p.truth.kind.zip(p.truth.zone)),
            "label must follow kind and zone"
        );
        assert_eq!(p.truth.present, p.truth.kind.is_some());
        assert_eq!(p.truth.present, p.truth.bbox.is_some());
    }
    // Case i does not depend on n; another base seed changes the cohort.
    let short = cohort(3, 64, BitDepth::Eight, 42).unwrap();
    assert_eq!(short[2].image, a[2].image);
    let other = cohort(3, 64, BitDepth::Eight, 43).unwrap();
    assert_ne!(other[2].image, a[2].image);
    assert_eq!(
        cohort_spec(7, 64, BitDepth::Eight, 42),
        cohort_spec(7, 64, BitDepth::Eight, 42)
    );
}

#[test]
fn invalid_inputs_are_rejected_with_clear_errors() {
    for size in [0, 63, 1025] {
        let err = generate(&spec(size, 0, None)).unwrap_err();
        assert_eq!(err, PhantomError::InvalidSize(size));
    }
    assert_eq!(
        PhantomError::InvalidSize(63).to_string(),
        "phantom size must be between 64 and 1024 pixels, got 63"
    );
    let bad_size = LesionSpec {
        size: 0.0,
        ..nodule(Zone::RightLower)
    };
    assert!(matches!(
        generate(&spec(64, 0, Some(bad_size))),
        Err(PhantomError::InvalidLesionSize(_))
    ));
    let nan = LesionSpec {
        contrast: f32::NAN,
        ..nodule(Zone::RightLower)
    };
    let err = generate(&spec(64, 0, Some(nan))).unwrap_err();
    assert!(err.to_string().contains("must be in (0, 1]"), "{err}");
}

#[test]
fn names_and_serde_forms() {
    assert_eq!(Zone::RightUpper.to_string(), "right upper zone");
    assert_eq!(Zone::LeftLower.to_string(), "left lower zone");
    assert_eq!(
        serde_json::to_string(&Zone::RightMiddle).unwrap(),
        "\"right_middle\""
    );
    assert_eq!(
        serde_json::to_string(&LesionKind::Opacity).unwrap(),
        "\"opacity\""
    );
    assert_eq!(
        class_names(),
        [
            "normal",
            "nodule_right",
            "nodule_left",
            "opacity_right",
            "opacity_left"
        ]
    );
    // Patient's right is the image left.
    assert_eq!(Zone::from_point(0.25, 0.2), Zone::RightUpper);
    assert_eq!(Zone::from_point(0.75, 0.6), Zone::LeftLower);
}

#[test]
fn pixels_do_not_depend_on_the_thread_count() {
    let s = spec(256, 21, Some(nodule(Zone::LeftUpper)));
    let many = generate(&s).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| generate(&s).unwrap());
    assert_eq!(many.image.content_hash(), one.image.content_hash());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]

    /// Any valid lesion gives a non-empty box inside the image, centred in its zone, and the
    /// label that matches its kind and side.
    #[test]
    fn any_valid_lesion_is_placed_in_its_zone(
        size in 64u32..=96,
        seed in proptest::prelude::any::<u64>(),
        zone in 0usize..6,
        opacity in proptest::prelude::any::<bool>(),
        diameter in 0.01f32..=0.35,
        contrast in 0.01f32..=1.0,
    ) {
        let zone = Zone::ALL[zone];
        let kind = if opacity { LesionKind::Opacity } else { LesionKind::Nodule };
        let lesion = LesionSpec { kind, zone, size: diameter, contrast };
        let p = generate(&spec(size, seed, Some(lesion))).unwrap();
        let [x0, y0, x1, y1] = p.truth.bbox.unwrap();
        proptest::prop_assert!(x0 < x1 && y0 < y1 && x1 <= size && y1 <= size);
        let s = size as f32;
        let (cx, cy) = ((x0 + x1) as f32 / 2.0 / s, (y0 + y1) as f32 / 2.0 / s);
        // Pixel rounding can move the centre by up to one pixel.
        let [zx0, zy0, zx1, zy1] = zone.bounds();
        let tol = 1.0 / s;
        proptest::prop_assert!(cx >= zx0 - tol && cx <= zx1 + tol && cy >= zy0 - tol && cy <= zy1 + tol);
        proptest::prop_assert_eq!(&p.truth.label, &format!("{kind}_{}", zone.side()));
    }
}
