//! Resolution and codec kernels: downscale-then-upscale and JPEG round trip.

use clarity_image::{Channels, Image, Samples};
use fast_image_resize as fir;
use fir::pixels::{U8, U8x3, U16, U16x3};

use super::common::{choice, float, int, meta, nums, presets1, same_layout, unsupported};
use crate::params::{ParamSpec, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};

/// Downscale by `factor`, then upscale back to the original size.
pub struct Downscale;

static DOWNSCALE_FILTERS: [&str; 4] = ["bilinear", "nearest", "area", "bicubic"];

static DOWNSCALE_PARAMS: [ParamSpec; 2] = [
    float(
        "factor",
        "intermediate size as a fraction of the original (each side, at least 1 px)",
        "×",
        0.01,
        1.0,
        1.0,
        Some(1.0),
    ),
    choice(
        "filter",
        "resampling filter: bilinear/bicubic (OpenCV-like interpolation, no anti-aliasing), nearest, area (box average down, bilinear up)",
        &DOWNSCALE_FILTERS,
        "bilinear",
    ),
];

/// One resize with fast_image_resize (hand-written resampling would be slower and its SIMD
/// paths are tested to give the same bytes as its scalar path).
fn fir_resize<P: fir::PixelTrait>(
    pixels: Vec<P>,
    (w, h): (u32, u32),
    (nw, nh): (u32, u32),
    alg: fir::ResizeAlg,
) -> Vec<P> {
    let src = fir::images::TypedImage::from_pixels(w, h, pixels).expect("buffer matches size");
    let mut dst = fir::images::TypedImage::<P>::new(nw, nh);
    fir::Resizer::new()
        .resize_typed(&src, &mut dst, &fir::ResizeOptions::new().resize_alg(alg))
        .expect("pixel types match");
    dst.pixels().to_vec()
}

fn down_up<P: fir::PixelTrait>(
    pixels: Vec<P>,
    size: (u32, u32),
    small: (u32, u32),
    (down, up): (fir::ResizeAlg, fir::ResizeAlg),
) -> Vec<P> {
    let reduced = fir_resize(pixels, size, small, down);
    fir_resize(reduced, small, size, up)
}

impl Perturbation for Downscale {
    meta!(
        "downscale",
        1,
        Resolution,
        random = false,
        "reduces the resolution by a factor and scales back up to the original size: low-resolution acquisition, aggressive resizing in a PACS/export pipeline",
        DOWNSCALE_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C pixelate factors (that kernel uses a box filter; here `filter` stays at
        // its default unless set).
        [0.6, 0.5, 0.4, 0.3, 0.25].map(|f| {
            let mut p = nums(&[("factor", f)]);
            p.insert(
                "filter".to_string(),
                crate::ParamValue::Text("bilinear".to_string()),
            );
            p
        })
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        use fir::{FilterType, ResizeAlg};
        let factor = params.num("factor");
        let size = (image.width(), image.height());
        let shrink = |n: u32| ((n as f64 * factor).round() as u32).max(1);
        let small = (shrink(size.0), shrink(size.1));
        if small == size {
            return Ok(image.clone());
        }
        let algs = match params.text("filter") {
            "nearest" => (ResizeAlg::Nearest, ResizeAlg::Nearest),
            "area" => (
                ResizeAlg::Convolution(FilterType::Box),
                ResizeAlg::Interpolation(FilterType::Bilinear),
            ),
            "bicubic" => (
                ResizeAlg::Interpolation(FilterType::CatmullRom),
                ResizeAlg::Interpolation(FilterType::CatmullRom),
            ),
            _ => (
                ResizeAlg::Interpolation(FilterType::Bilinear),
                ResizeAlg::Interpolation(FilterType::Bilinear),
            ),
        };
        let samples = match (image.channels(), image.samples()) {
            (Channels::Gray, Samples::U8(v)) => {
                let px = v.iter().map(|&s| U8::new(s)).collect();
                Samples::U8(down_up(px, size, small, algs).iter().map(|p| p.0).collect())
            }
            (Channels::Rgb, Samples::U8(v)) => {
                let px = v
                    .chunks_exact(3)
                    .map(|p| U8x3::new([p[0], p[1], p[2]]))
                    .collect();
                Samples::U8(
                    down_up(px, size, small, algs)
                        .iter()
                        .flat_map(|p| p.0)
                        .collect(),
                )
            }
            (Channels::Gray, Samples::U16(v)) => {
                let px = v.iter().map(|&s| U16::new(s)).collect();
                Samples::U16(down_up(px, size, small, algs).iter().map(|p| p.0).collect())
            }
            (Channels::Rgb, Samples::U16(v)) => {
                let px = v
                    .chunks_exact(3)
                    .map(|p| U16x3::new([p[0], p[1], p[2]]))
                    .collect();
                Samples::U16(
                    down_up(px, size, small, algs)
                        .iter()
                        .flat_map(|p| p.0)
                        .collect(),
                )
            }
        };
        Ok(same_layout(image, samples))
    }
}

/// JPEG encode + decode round trip.
pub struct Jpeg;

/// The `quality` value that turns the kernel off (JPEG at quality 100 is still lossy).
pub const JPEG_OFF: i64 = 101;

static JPEG_PARAMS: [ParamSpec; 1] = [int(
    "quality",
    "JPEG quality 1 (worst) ..= 100; 101 means no compression (identity)",
    "",
    1,
    JPEG_OFF,
    JPEG_OFF,
    Some(JPEG_OFF),
)];

/// `round(s · 255 / 65535)`, exact.
fn to8(s: u16) -> u8 {
    ((s as u32 * 255 + 32767) / 65535) as u8
}

/// Encodes 8-bit samples as baseline JPEG (4:2:0 for RGB, as libjpeg's default) with the `image`
/// crate's encoder and decodes them back.
fn jpeg_roundtrip(
    data: &[u8],
    w: u32,
    h: u32,
    channels: Channels,
    quality: u8,
) -> Result<Vec<u8>, PerturbError> {
    use image::ImageEncoder;
    let color = match channels {
        Channels::Gray => image::ExtendedColorType::L8,
        Channels::Rgb => image::ExtendedColorType::Rgb8,
    };
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .write_image(data, w, h, color)
        .map_err(|e| unsupported("jpeg", format!("encoding failed: {e}")))?;
    let decoded = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
        .map_err(|e| unsupported("jpeg", format!("decoding failed: {e}")))?;
    Ok(match channels {
        Channels::Gray => decoded.into_luma8().into_raw(),
        Channels::Rgb => decoded.into_rgb8().into_raw(),
    })
}

impl Perturbation for Jpeg {
    meta!(
        "jpeg",
        1,
        Resolution,
        random = false,
        "JPEG encode/decode at a quality: lossy compression in teleradiology, screenshots, web/PACS exports (16-bit: the 8-bit error is added back at 16-bit scale)",
        JPEG_PARAMS
    );
    fn presets(&self) -> [Params; 5] {
        // ImageNet-C jpeg_compression qualities.
        presets1("quality", [25.0, 18.0, 15.0, 10.0, 7.0])
    }
    fn apply(
        &self,
        image: &Image,
        params: &ResolvedParams,
        _rng: &mut KernelRng,
    ) -> Result<Image, PerturbError> {
        let quality = params.num("quality") as i64;
        if quality >= JPEG_OFF {
            return Ok(image.clone());
        }
        let (w, h, ch) = (image.width(), image.height(), image.channels());
        if w > 65535 || h > 65535 {
            return Err(unsupported(
                "jpeg",
                format!("JPEG holds at most 65535x65535 pixels, image is {w}x{h}"),
            ));
        }
        let samples = match image.samples() {
            Samples::U8(v) => Samples::U8(jpeg_roundtrip(v, w, h, ch, quality as u8)?),
            Samples::U16(v) => {
                let v8: Vec<u8> = v.iter().map(|&s| to8(s)).collect();
                let d8 = jpeg_roundtrip(&v8, w, h, ch, quality as u8)?;
                Samples::U16(
                    v.iter()
                        .zip(v8.iter().zip(&d8))
                        .map(|(&s, (&e, &d))| {
                            (s as i32 + (d as i32 - e as i32) * 257).clamp(0, 65535) as u16
                        })
                        .collect(),
                )
            }
        };
        Ok(same_layout(image, samples))
    }
}
