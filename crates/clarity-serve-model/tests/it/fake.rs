//! A tiny deterministic model: "bright" or "dark" by mean intensity.

use base64::Engine as _;
use clarity_image::{Channels, Image};
use clarity_serve_model::{ChatAnswer, ChatModel};

pub struct Fake;

impl ChatModel for Fake {
    fn name(&self) -> &str {
        "fake-model"
    }
    fn classify(
        &self,
        image: &Image,
        prompt: &str,
        temperature: f64,
        seed: u64,
    ) -> Result<ChatAnswer, String> {
        let v = image.to_unit_f32();
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let p_bright = 0.2 + 0.6 * mean;
        let label = if p_bright >= 0.5 { "bright" } else { "dark" };
        Ok(ChatAnswer {
            label: label.into(),
            justification: format!(
                "Mean intensity {mean:.3} ({} prompt chars, t={temperature}, seed={seed}).",
                prompt.len()
            ),
            probabilities: vec![
                ("bright".into(), p_bright),
                ("dark".into(), 1.0 - p_bright),
                ("never".into(), 0.0),
            ],
        })
    }
}

pub fn gray_image(value: u8) -> Image {
    Image::from_u8(4, 3, Channels::Gray, vec![value; 12]).unwrap()
}

pub fn png_data_url(width: u32, height: u32, value: u8) -> String {
    let buf = image::GrayImage::from_pixel(width, height, image::Luma([value]));
    let mut bytes = Vec::new();
    buf.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Lossless PNG of any 8-bit image (gray or RGB), as a data URL.
pub fn png_data_url_of(img: &Image) -> String {
    let clarity_image::Samples::U8(data) = img.samples() else {
        panic!("8-bit images only")
    };
    let color = match img.channels() {
        Channels::Gray => image::ExtendedColorType::L8,
        Channels::Rgb => image::ExtendedColorType::Rgb8,
    };
    let mut bytes = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut bytes),
        data,
        img.width(),
        img.height(),
        color,
    )
    .unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
