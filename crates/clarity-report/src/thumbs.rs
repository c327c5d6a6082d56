//! Thumbnails: downscale an [`Image`], blend a saliency map over it, encode as PNG or JPEG
//! (whichever is smaller by a margin that favours lossless PNG).

use clarity_core::Saliency;
use clarity_image::Image;
use image::{ImageEncoder, RgbImage, imageops::FilterType};

use crate::model::Thumb;
use crate::scene::viridis;

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 192;

/// Makes a thumbnail of `img`, with `saliency` blended in when given.
pub fn thumbnail(img: &Image, saliency: Option<&Saliency>) -> Option<Thumb> {
    let (rgb, _) = img.to_rgb8();
    let clarity_image::Samples::U8(data) = rgb.samples().clone() else {
        return None;
    };
    let full = RgbImage::from_raw(rgb.width(), rgb.height(), data)?;
    let (w, h) = (full.width(), full.height());
    let scale = (THUMB_SIDE as f64 / w.max(h) as f64).min(1.0);
    let (tw, th) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    let mut small = if (tw, th) == (w, h) {
        full
    } else {
        image::imageops::resize(&full, tw, th, FilterType::Triangle)
    };
    if let Some(s) = saliency {
        blend_saliency(&mut small, s);
    }
    Some(encode(&small))
}

/// Blends a saliency grid (bilinear-upsampled) over the image: viridis colour, alpha ∝ value.
fn blend_saliency(img: &mut RgbImage, s: &Saliency) {
    let (sw, sh) = (s.width as usize, s.height as usize);
    if sw == 0 || sh == 0 || s.values.len() != sw * sh {
        return;
    }
    let (w, h) = (img.width() as f64, img.height() as f64);
    let at = |x: usize, y: usize| s.values[y.min(sh - 1) * sw + x.min(sw - 1)] as f64;
    for (px, py, p) in img.enumerate_pixels_mut() {
        let fx = ((px as f64 + 0.5) / w * sw as f64 - 0.5).max(0.0);
        let fy = ((py as f64 + 0.5) / h * sh as f64 - 0.5).max(0.0);
        let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
        let (ax, ay) = (fx - x0 as f64, fy - y0 as f64);
        let v = at(x0, y0) * (1.0 - ax) * (1.0 - ay)
            + at(x0 + 1, y0) * ax * (1.0 - ay)
            + at(x0, y0 + 1) * (1.0 - ax) * ay
            + at(x0 + 1, y0 + 1) * ax * ay;
        let v = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let c = viridis(v);
        let a = 0.6 * v;
        let mix = |o: u8, n: u8| (o as f64 * (1.0 - a) + n as f64 * a).round() as u8;
        p.0 = [mix(p.0[0], c.0), mix(p.0[1], c.1), mix(p.0[2], c.2)];
    }
}

fn encode(img: &RgbImage) -> Thumb {
    let mut png = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut png);
    let png_ok = enc
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .is_ok();
    let mut jpg = Vec::new();
    let jpg_ok = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 85)
        .encode_image(img)
        .is_ok();
    let (mime, bytes) = match (png_ok, jpg_ok) {
        (true, true) if png.len() <= jpg.len() * 3 / 2 => ("image/png", png),
        (_, true) => ("image/jpeg", jpg),
        _ => ("image/png", png),
    };
    Thumb {
        mime,
        bytes,
        width: img.width(),
        height: img.height(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clarity_image::Channels;

    #[test]
    fn downscales_and_keeps_aspect() {
        let img = Image::from_u8(400, 200, Channels::Gray, vec![128; 400 * 200]).unwrap();
        let t = thumbnail(&img, None).unwrap();
        assert_eq!((t.width, t.height), (THUMB_SIDE, THUMB_SIDE / 2));
        assert!(t.mime == "image/png" || t.mime == "image/jpeg");
    }

    #[test]
    fn saliency_changes_pixels() {
        let img = Image::from_u8(8, 8, Channels::Gray, vec![100; 64]).unwrap();
        let plain = thumbnail(&img, None).unwrap();
        let s = Saliency {
            width: 2,
            height: 2,
            values: vec![1.0, 0.0, 0.0, 0.0],
        };
        let over = thumbnail(&img, Some(&s)).unwrap();
        assert_ne!(plain.bytes, over.bytes);
    }
}
