//! The image sent: 8-bit RGB, optionally downscaled, as a PNG or JPEG data URL.

use base64::Engine as _;
use clarity_image::Image;
use serde_json::{Value, json};

use super::config::{DEFAULT_JPEG_QUALITY, ImageFormat, OpenAiConfig};
use crate::AdapterError;

/// How the image is encoded (from the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Encoding {
    pub max_side: Option<u32>,
    pub format: ImageFormat,
    pub jpeg_quality: u8,
}

impl Encoding {
    pub(crate) fn from_config(c: &OpenAiConfig) -> Self {
        Self {
            max_side: c.image_max_side,
            format: c.image_format.unwrap_or(ImageFormat::Png),
            jpeg_quality: c.jpeg_quality.unwrap_or(DEFAULT_JPEG_QUALITY),
        }
    }

    /// The identity string: `png rgb8` (the default, as before these options existed),
    /// `jpeg q90 rgb8`, with `, max side N (triangle)` when downscaling is on.
    pub(crate) fn describe(&self) -> String {
        let mut s = match self.format {
            ImageFormat::Png => "png rgb8".to_string(),
            ImageFormat::Jpeg => format!("jpeg q{} rgb8", self.jpeg_quality),
        };
        if let Some(side) = self.max_side {
            s.push_str(&format!(", max side {side} (triangle)"));
        }
        s
    }
}

/// Output size keeping the aspect ratio, longer side `max_side` (never upscaled; each side
/// at least 1, rounded to nearest).
pub(crate) fn fitted_size(w: u32, h: u32, max_side: Option<u32>) -> (u32, u32) {
    let Some(m) = max_side else { return (w, h) };
    let long = w.max(h);
    if long <= m {
        return (w, h);
    }
    let scale = |x: u32| ((x as f64 * m as f64 / long as f64).round() as u32).clamp(1, m);
    (scale(w), scale(h))
}

/// The data URL plus metadata: what was sent and the conversion from the native format.
pub(crate) fn encode_image(
    image: &Image,
    enc: Encoding,
) -> Result<(String, Vec<(String, Value)>), AdapterError> {
    let (rgb, conversion) = image.to_rgb8();
    let clarity_image::Samples::U8(data) = rgb.samples() else {
        unreachable!("to_rgb8 returns 8-bit samples")
    };
    let (w, h) = fitted_size(rgb.width(), rgb.height(), enc.max_side);
    let resized;
    let pixels: &[u8] = if (w, h) == (rgb.width(), rgb.height()) {
        data
    } else {
        let buffer = image::RgbImage::from_raw(rgb.width(), rgb.height(), data.to_vec())
            .expect("to_rgb8 gives width·height·3 samples");
        resized = image::imageops::resize(&buffer, w, h, image::imageops::FilterType::Triangle);
        resized.as_raw()
    };
    let mut bytes = Vec::new();
    let (mime, result) = match enc.format {
        ImageFormat::Png => (
            "png",
            image::ImageEncoder::write_image(
                image::codecs::png::PngEncoder::new(&mut bytes),
                pixels,
                w,
                h,
                image::ExtendedColorType::Rgb8,
            ),
        ),
        ImageFormat::Jpeg => (
            "jpeg",
            image::ImageEncoder::write_image(
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, enc.jpeg_quality),
                pixels,
                w,
                h,
                image::ExtendedColorType::Rgb8,
            ),
        ),
    };
    result
        .map_err(|e| AdapterError::Permanent(format!("cannot encode the image as {mime}: {e}")))?;
    let url = format!(
        "data:image/{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    );
    let conversion = match conversion {
        Some(c) => json!({"from": c.from.to_string(), "to": c.to.to_string(), "method": c.method}),
        None => json!("none (already rgb8)"),
    };
    let mut sent = format!("{} {w}x{h}", enc.describe().split(',').next().unwrap_or(""));
    if (w, h) != (rgb.width(), rgb.height()) {
        sent.push_str(&format!(
            " (downscaled from {}x{}, triangle filter)",
            rgb.width(),
            rgb.height()
        ));
    }
    Ok((
        url,
        vec![
            ("image_sent".into(), json!(sent)),
            ("image_bytes".into(), json!(bytes.len())),
            ("image_conversion".into(), conversion),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_size_keeps_aspect_and_never_upscales() {
        assert_eq!(fitted_size(447, 512, Some(256)), (224, 256));
        assert_eq!(fitted_size(512, 447, Some(256)), (256, 224));
        assert_eq!(fitted_size(100, 50, Some(256)), (100, 50));
        assert_eq!(fitted_size(1000, 1, Some(10)), (10, 1));
        assert_eq!(fitted_size(30, 20, None), (30, 20));
    }
}
