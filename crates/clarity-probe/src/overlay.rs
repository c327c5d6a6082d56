//! Saliency overlays: the real image in gray, the map blended in with the viridis colormap
//! (perceptually uniform, readable with every common colour-vision deficiency) at alpha
//! proportional to saliency, evidence regions outlined solid and controls dashed (so the
//! distinction needs no hue), each with its id. Small images are enlarged by an integer factor
//! (nearest neighbour) so outlines and ids stay legible.

use clarity_image::colormap::viridis;
use clarity_image::{Channels, Image};

use crate::regions::{Region, RegionKind};
use crate::saliency::SaliencyMap;

/// Alpha of the heatmap at saliency 1 (alpha = `HEAT_ALPHA × value`).
pub const HEAT_ALPHA: f64 = 0.65;
/// Overlays are enlarged to at least this many pixels on the longer side.
pub const MIN_SIDE: u32 = 256;

/// Describes the rendering for `probe.json`.
pub const DESCRIPTION: &str = "gray image; viridis heatmap with alpha = 0.65 × saliency; evidence regions outlined solid white, controls dashed white, ids in white on a black shadow; enlarged by an integer factor (nearest neighbour) to at least 256 px";

/// 3×5 glyphs for region ids (rows top to bottom, 3 bits each, MSB left).
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 2, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'C' => [7, 4, 4, 4, 7],
        'G' => [7, 4, 5, 5, 7],
        'K' => [5, 5, 6, 5, 5],
        _ => return None,
    })
}

/// Renders the overlay as an 8-bit RGB image.
pub fn render(image: &Image, map: &SaliencyMap, regions: &[&Region]) -> Image {
    let (w, h) = (image.width(), image.height());
    let scale = MIN_SIDE.div_ceil(w.max(h)).max(1);
    let (ow, oh) = (w * scale, h * scale);
    let (gray, _) = image.to_gray8();
    let g: &[u8] = match gray.samples() {
        clarity_image::Samples::U8(v) => v,
        clarity_image::Samples::U16(_) => &[],
    };
    let mut out = vec![0u8; (ow * oh * 3) as usize];
    for y in 0..oh {
        for x in 0..ow {
            let (sx, sy) = (x / scale, y / scale);
            let i = (sy * w + sx) as usize;
            let base = g.get(i).copied().unwrap_or(0) as f64;
            let v = map.values.get(i).copied().unwrap_or(0.0) as f64;
            let a = HEAT_ALPHA * v.clamp(0.0, 1.0);
            let c = viridis(v);
            let o = ((y * ow + x) * 3) as usize;
            for k in 0..3 {
                out[o + k] = (base * (1.0 - a) + c[k] * a).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    let thick = (scale / 3).max(1);
    let inside = |r: &Region, x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < ow as i64
            && y < oh as i64
            && r.contains((x as u32) / scale, (y as u32) / scale, w)
    };
    for r in regions {
        let dashed = r.kind == RegionKind::Control;
        let [bx0, by0, bx1, by1] = r.bbox;
        for y in by0 * scale..by1 * scale {
            for x in bx0 * scale..bx1 * scale {
                let (xi, yi) = (x as i64, y as i64);
                if !inside(r, xi, yi) {
                    continue;
                }
                let t = thick as i64;
                let edge = !inside(r, xi - t, yi)
                    || !inside(r, xi + t, yi)
                    || !inside(r, xi, yi - t)
                    || !inside(r, xi, yi + t);
                if !edge || (dashed && ((x + y) / (2 * scale)) % 2 == 1) {
                    continue;
                }
                let o = ((y * ow + x) * 3) as usize;
                out[o..o + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
    }
    // Ids last, so no outline covers them.
    let gs = (scale / 2).max(1);
    for r in regions {
        let (x0, y0) = (r.bbox[0] * scale + thick + 1, r.bbox[1] * scale + thick + 1);
        let mut cx = x0;
        for ch in r.id.chars() {
            if let Some(rows) = glyph(ch) {
                for (shadow, colour) in [(1u32, 0u8), (0, 255)] {
                    for (ry, bits) in rows.iter().enumerate() {
                        for rx in 0..3u32 {
                            if bits & (4 >> rx) == 0 {
                                continue;
                            }
                            for py in 0..gs {
                                for px in 0..gs {
                                    let x = cx + rx * gs + px + shadow;
                                    let y = y0 + ry as u32 * gs + py + shadow;
                                    if x < ow && y < oh {
                                        let o = ((y * ow + x) * 3) as usize;
                                        out[o..o + 3].fill(colour);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            cx += 4 * gs;
        }
    }
    Image::from_u8(ow, oh, Channels::Rgb, out).expect("sizes match")
}

/// The overlay as PNG bytes (deterministic encoder).
pub fn render_png(image: &Image, map: &SaliencyMap, regions: &[&Region]) -> Vec<u8> {
    clarity_image::encode_png(&render(image, map, regions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clarity_image::Samples;

    fn region(id: &str, kind: RegionKind, bbox: [u32; 4], w: u32, h: u32) -> Region {
        let mask: Vec<bool> = (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| x >= bbox[0] && x < bbox[2] && y >= bbox[1] && y < bbox[3])
            })
            .collect();
        Region {
            id: id.into(),
            kind,
            bbox,
            area: mask.iter().filter(|&&m| m).count() as u64,
            mass: 0.0,
            mask,
            control_of: None,
        }
    }

    fn px(img: &Image, x: u32, y: u32) -> [u8; 3] {
        let Samples::U8(v) = img.samples() else {
            panic!("8-bit")
        };
        let o = ((y * img.width() + x) * 3) as usize;
        [v[o], v[o + 1], v[o + 2]]
    }

    #[test]
    fn heatmap_blend_enlargement_outlines_and_ids() {
        let (w, h) = (64u32, 64u32);
        let img = Image::from_u8(w, h, Channels::Gray, vec![100; 64 * 64]).unwrap();
        let mut values = vec![0.0f32; 64 * 64];
        values[(40 * 64 + 40) as usize] = 1.0;
        let map = SaliencyMap {
            width: w,
            height: h,
            values,
        };
        let evidence = region("C1", RegionKind::Component, [8, 8, 24, 24], w, h);
        let control = region("K1", RegionKind::Control, [36, 8, 52, 24], w, h);
        let out = render(&img, &map, &[&evidence, &control]);
        // 64 px → enlarged ×4 to 256 px, RGB.
        assert_eq!(
            (out.width(), out.height(), out.channels()),
            (256, 256, Channels::Rgb)
        );
        // Zero saliency: the gray image itself.
        assert_eq!(px(&out, 4, 200), [100, 100, 100]);
        // Saliency 1: 0.35 × gray + 0.65 × viridis(1) = (0xfd, 0xe7, 0x25).
        let want = |c: u8| (100.0 * 0.35 + c as f64 * 0.65).round() as u8;
        assert_eq!(px(&out, 161, 161), [want(0xfd), want(0xe7), want(0x25)]);
        // The evidence outline is solid white all along its left edge; the inside is untouched.
        let whites =
            |x0: u32, x1: u32, y: u32| (x0..x1).filter(|&x| px(&out, x, y) == [255; 3]).count();
        assert!((40..90).all(|y| px(&out, 32, y) == [255; 3]));
        assert_eq!(px(&out, 64, 64), [100, 100, 100]);
        // The control's outline is dashed: fewer white pixels on the same-length bottom edge.
        let solid = whites(32, 96, 95);
        let dashed = whites(144, 208, 95);
        assert!(
            solid >= 60 && dashed > 10 && dashed < solid * 3 / 4,
            "{solid} vs {dashed}"
        );
        // Ids are drawn near the top-left corner of each region.
        assert!(whites(34, 56, 36) + whites(34, 56, 38) > 0, "C1 id");
        // Large images are not enlarged.
        let big = Image::from_u8(300, 100, Channels::Gray, vec![0; 30_000]).unwrap();
        let map = SaliencyMap {
            width: 300,
            height: 100,
            values: vec![0.0; 30_000],
        };
        let out = render(&big, &map, &[]);
        assert_eq!((out.width(), out.height()), (300, 100));
        assert_eq!(render_png(&big, &map, &[]), render_png(&big, &map, &[]));
    }
}
