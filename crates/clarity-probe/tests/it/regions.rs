use clarity_probe::SaliencyMap;
use clarity_probe::regions::{self, RegionKind};

fn map(w: u32, h: u32, f: impl Fn(u32, u32) -> f32) -> SaliencyMap {
    let mut values = Vec::new();
    for y in 0..h {
        for x in 0..w {
            values.push(f(x, y));
        }
    }
    SaliencyMap {
        width: w,
        height: h,
        values,
    }
}

#[test]
fn components_are_ranked_by_mass_with_exact_boxes() {
    // Two blobs: a 3×3 block of 1.0 at (1..4, 1..4), a 2×2 block of 0.8 at (6..8, 5..7), and a
    // sub-threshold speck.
    let m = map(10, 8, |x, y| {
        if (1..4).contains(&x) && (1..4).contains(&y) {
            1.0
        } else if (6..8).contains(&x) && (5..7).contains(&y) {
            0.8
        } else if x == 9 && y == 0 {
            0.3
        } else {
            0.0
        }
    });
    let cs = regions::components(&m, 0.5, 3);
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].id, "C1");
    assert_eq!(cs[0].kind, RegionKind::Component);
    assert_eq!(cs[0].bbox, [1, 1, 4, 4]);
    assert_eq!(cs[0].area, 9);
    assert!((cs[0].mass - 9.0).abs() < 1e-9);
    assert_eq!(cs[1].bbox, [6, 5, 8, 7]);
    assert_eq!(cs[1].area, 4);
    assert!((cs[1].mass - 3.2).abs() < 1e-6);
    // top_k cuts, a lower threshold picks the speck up as a third component.
    assert_eq!(regions::components(&m, 0.5, 1).len(), 1);
    assert_eq!(regions::components(&m, 0.2, 5).len(), 3);
    // An all-zero map has no region.
    assert!(regions::components(&map(4, 4, |_, _| 0.0), 0.5, 3).is_empty());
}

#[test]
fn diagonal_pixels_are_one_component() {
    let m = map(4, 4, |x, y| if x == y { 1.0 } else { 0.0 });
    let cs = regions::components(&m, 0.5, 3);
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].bbox, [0, 0, 4, 4]);
    assert_eq!(cs[0].area, 4);
}

#[test]
fn grid_tiles_cover_the_image_once() {
    let m = map(10, 7, |x, _| x as f32 / 10.0);
    let g = regions::grid(&m, 3);
    assert_eq!(g.len(), 9);
    assert_eq!(g[0].id, "G1");
    assert_eq!(g[0].bbox, [0, 0, 3, 2]);
    assert_eq!(g[8].bbox, [6, 4, 10, 7]);
    let total: u64 = g.iter().map(|r| r.area).sum();
    assert_eq!(total, 70);
    for i in 0..70 {
        assert_eq!(g.iter().filter(|r| r.mask[i]).count(), 1, "pixel {i}");
    }
    // The right column holds the most mass.
    let top = regions::top_by_mass(&g, 1);
    assert!(
        ["G3", "G6", "G9"].contains(&top[0].id.as_str()),
        "{}",
        top[0].id
    );
}

#[test]
fn control_has_the_same_shape_in_low_saliency_tissue() {
    // Salient L-shape at the top left; saliency falls off to the right; the bottom rows are
    // background (no tissue).
    let m = map(16, 16, |x, y| {
        if (x < 3 && y < 4) || (y == 3 && x < 5) {
            1.0
        } else {
            (16 - x) as f32 / 64.0
        }
    });
    let ev = &regions::components(&m, 0.9, 1)[0];
    let gray: Vec<f32> = (0..256)
        .map(|i| if i / 16 >= 12 { 0.0 } else { 0.7 })
        .collect();
    let tissue = regions::tissue_mask(&gray);
    let ctl = regions::place_control(&m, ev, &ev.mask, &tissue, "K1".into()).unwrap();
    assert_eq!(ctl.kind, RegionKind::Control);
    assert_eq!(ctl.control_of.as_deref(), Some("C1"));
    assert_eq!(ctl.area, ev.area);
    // Same shape: translated mask.
    let (dx, dy) = (ctl.bbox[0] - ev.bbox[0], ctl.bbox[1] - ev.bbox[1]);
    for y in 0..16u32 {
        for x in 0..16u32 {
            if ev.contains(x, y, 16) {
                assert!(ctl.contains(x + dx, y + dy, 16));
            }
        }
    }
    // At the right edge (least saliency), on tissue, not overlapping the evidence.
    assert_eq!(ctl.bbox[2], 16);
    assert!(ctl.bbox[3] <= 12);
    assert!(ctl.mask.iter().zip(&ev.mask).all(|(a, b)| !(a & b)));
    assert!(ctl.mass < ev.mass / 4.0);
}

#[test]
fn iou_of_boxes() {
    assert_eq!(regions::bbox_iou([0, 0, 2, 2], [0, 0, 2, 2]), 1.0);
    assert_eq!(regions::bbox_iou([0, 0, 2, 2], [2, 2, 4, 4]), 0.0);
    assert!((regions::bbox_iou([0, 0, 2, 2], [1, 0, 3, 2]) - 1.0 / 3.0).abs() < 1e-12);
}
