use serde::{Deserialize, Serialize};

/// Colour layout of an [`Image`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    Gray,
    Rgb,
}

impl Channels {
    /// Samples per pixel.
    pub fn count(self) -> usize {
        match self {
            Channels::Gray => 1,
            Channels::Rgb => 3,
        }
    }
}

/// Bits per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum BitDepth {
    #[serde(rename = "8")]
    Eight,
    #[serde(rename = "16")]
    Sixteen,
}

impl BitDepth {
    pub fn bits(self) -> u32 {
        match self {
            BitDepth::Eight => 8,
            BitDepth::Sixteen => 16,
        }
    }
    /// Largest sample value (255 or 65535).
    pub fn max_value(self) -> u32 {
        match self {
            BitDepth::Eight => u8::MAX as u32,
            BitDepth::Sixteen => u16::MAX as u32,
        }
    }
}

/// Channels and bit depth together, e.g. `gray16`, `rgb8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct PixelFormat {
    pub channels: Channels,
    pub depth: BitDepth,
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = match self.channels {
            Channels::Gray => "gray",
            Channels::Rgb => "rgb",
        };
        write!(f, "{c}{}", self.depth.bits())
    }
}

/// The sample buffer, row-major with interleaved channels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Samples {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn depth(&self) -> BitDepth {
        match self {
            Samples::U8(_) => BitDepth::Eight,
            Samples::U16(_) => BitDepth::Sixteen,
        }
    }
}

/// A record of an explicit format conversion (e.g. 16-bit → 8-bit at the adapter boundary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    pub from: PixelFormat,
    pub to: PixelFormat,
    /// Human-readable formula, e.g. `"u8 = round(u16 * 255 / 65535); rgb = (g, g, g)"`.
    pub method: String,
}

/// Errors building or converting an [`Image`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("image dimensions must be non-zero, got {width}x{height}")]
    EmptyImage { width: u32, height: u32 },
    #[error(
        "sample buffer has {actual} samples but a {width}x{height} {channels:?} image needs {expected}"
    )]
    BufferSize {
        width: u32,
        height: u32,
        channels: Channels,
        expected: usize,
        actual: usize,
    },
}

/// One image: dimensions, channel layout and samples. Invariant: `samples.len() == w*h*channels`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Image {
    width: u32,
    height: u32,
    channels: Channels,
    samples: Samples,
}

impl Image {
    /// Builds an image, checking that the buffer matches the dimensions.
    pub fn new(
        width: u32,
        height: u32,
        channels: Channels,
        samples: Samples,
    ) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::EmptyImage { width, height });
        }
        let expected = width as usize * height as usize * channels.count();
        if samples.len() != expected {
            return Err(ImageError::BufferSize {
                width,
                height,
                channels,
                expected,
                actual: samples.len(),
            });
        }
        Ok(Self {
            width,
            height,
            channels,
            samples,
        })
    }

    pub fn from_u8(
        width: u32,
        height: u32,
        channels: Channels,
        data: Vec<u8>,
    ) -> Result<Self, ImageError> {
        Self::new(width, height, channels, Samples::U8(data))
    }

    pub fn from_u16(
        width: u32,
        height: u32,
        channels: Channels,
        data: Vec<u16>,
    ) -> Result<Self, ImageError> {
        Self::new(width, height, channels, Samples::U16(data))
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn channels(&self) -> Channels {
        self.channels
    }
    pub fn depth(&self) -> BitDepth {
        self.samples.depth()
    }
    pub fn format(&self) -> PixelFormat {
        PixelFormat {
            channels: self.channels,
            depth: self.depth(),
        }
    }
    /// Largest representable sample value for this image's depth.
    pub fn max_value(&self) -> u32 {
        self.depth().max_value()
    }
    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }
    pub fn samples(&self) -> &Samples {
        &self.samples
    }
    /// Mutable access to the samples; the length cannot change through this.
    pub fn samples_mut(&mut self) -> SamplesMut<'_> {
        match &mut self.samples {
            Samples::U8(v) => SamplesMut::U8(v.as_mut_slice()),
            Samples::U16(v) => SamplesMut::U16(v.as_mut_slice()),
        }
    }
    pub fn into_samples(self) -> Samples {
        self.samples
    }

    /// BLAKE3 of the decoded pixels and their layout, hex-encoded. Independent of the file
    /// format the image came from.
    pub fn content_hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"clarity-image-v1\0");
        h.update(&self.width.to_le_bytes());
        h.update(&self.height.to_le_bytes());
        h.update(&[self.channels.count() as u8, self.depth().bits() as u8]);
        match &self.samples {
            Samples::U8(v) => {
                h.update(v);
            }
            Samples::U16(v) => {
                // Little-endian bytes so the hash does not depend on the host.
                let mut buf = Vec::with_capacity(v.len() * 2);
                for s in v {
                    buf.extend_from_slice(&s.to_le_bytes());
                }
                h.update(&buf);
            }
        }
        h.finalize().to_hex().to_string()
    }

    /// Converts to 8-bit RGB (what most vision-language models take), recording the conversion.
    /// Returns `None` as the record when the image already is 8-bit RGB.
    pub fn to_rgb8(&self) -> (Image, Option<Conversion>) {
        let gray8 = self.to_depth8();
        let (data, ch_note) = match (self.channels, gray8) {
            (Channels::Rgb, v) => (v, None),
            (Channels::Gray, v) => {
                let mut out = Vec::with_capacity(v.len() * 3);
                for g in v {
                    out.extend_from_slice(&[g, g, g]);
                }
                (out, Some("rgb = (g, g, g)"))
            }
        };
        let img =
            Image::from_u8(self.width, self.height, Channels::Rgb, data).expect("same dimensions");
        let depth_note = (self.depth() == BitDepth::Sixteen).then_some(DEPTH_FORMULA);
        let method: Vec<&str> = [depth_note, ch_note].into_iter().flatten().collect();
        let record = (!method.is_empty()).then(|| Conversion {
            from: self.format(),
            to: img.format(),
            method: method.join("; "),
        });
        (img, record)
    }

    /// Converts to 8-bit grayscale, recording the conversion (`None` when already gray8).
    /// RGB → gray uses ITU-R BT.601 luma weights, rounded.
    pub fn to_gray8(&self) -> (Image, Option<Conversion>) {
        let v8 = self.to_depth8();
        let (data, ch_note) = match self.channels {
            Channels::Gray => (v8, None),
            Channels::Rgb => {
                let out = v8
                    .chunks_exact(3)
                    .map(|p| {
                        let y = 299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32;
                        ((y + 500) / 1000) as u8
                    })
                    .collect();
                (out, Some("y = round(0.299 r + 0.587 g + 0.114 b)"))
            }
        };
        let img =
            Image::from_u8(self.width, self.height, Channels::Gray, data).expect("same dimensions");
        let depth_note = (self.depth() == BitDepth::Sixteen).then_some(DEPTH_FORMULA);
        let method: Vec<&str> = [depth_note, ch_note].into_iter().flatten().collect();
        let record = (!method.is_empty()).then(|| Conversion {
            from: self.format(),
            to: img.format(),
            method: method.join("; "),
        });
        (img, record)
    }

    /// Samples as 8-bit, same channel layout.
    fn to_depth8(&self) -> Vec<u8> {
        match &self.samples {
            Samples::U8(v) => v.clone(),
            Samples::U16(v) => v.iter().map(|&s| u16_to_u8(s)).collect(),
        }
    }

    /// All samples mapped to `f32` in `[0, 1]` (value / max), same layout. Convenient for
    /// models; kernels work on the integer samples directly.
    pub fn to_unit_f32(&self) -> Vec<f32> {
        match &self.samples {
            Samples::U8(v) => v.iter().map(|&s| s as f32 / 255.0).collect(),
            Samples::U16(v) => v.iter().map(|&s| s as f32 / 65535.0).collect(),
        }
    }
}

const DEPTH_FORMULA: &str = "u8 = round(u16 * 255 / 65535)";

/// `round(s * 255 / 65535)` in exact integer arithmetic.
pub(crate) fn u16_to_u8(s: u16) -> u8 {
    ((s as u32 * 255 + 32767) / 65535) as u8
}

/// Mutable view of an image's samples.
pub enum SamplesMut<'a> {
    U8(&'a mut [u8]),
    U16(&'a mut [u16]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_buffer_size() {
        let err = Image::from_u8(3, 2, Channels::Rgb, vec![0; 6]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sample buffer has 6 samples but a 3x2 Rgb image needs 18"
        );
        assert!(Image::from_u8(0, 2, Channels::Gray, vec![]).is_err());
    }

    #[test]
    fn u16_to_u8_rounds() {
        assert_eq!(u16_to_u8(0), 0);
        assert_eq!(u16_to_u8(65535), 255);
        assert_eq!(u16_to_u8(128), 0); // 0.498 -> 0
        assert_eq!(u16_to_u8(129), 1); // 0.502 -> 1
    }

    #[test]
    fn gray16_to_rgb8_is_recorded() {
        let img = Image::from_u16(2, 1, Channels::Gray, vec![0, 65535]).unwrap();
        let (rgb, conv) = img.to_rgb8();
        assert_eq!(rgb.samples(), &Samples::U8(vec![0, 0, 0, 255, 255, 255]));
        let conv = conv.unwrap();
        assert_eq!(conv.from.to_string(), "gray16");
        assert_eq!(conv.to.to_string(), "rgb8");
        assert_eq!(
            conv.method,
            "u8 = round(u16 * 255 / 65535); rgb = (g, g, g)"
        );
        let (_, none) = rgb.to_rgb8();
        assert!(none.is_none());
    }

    #[test]
    fn rgb_to_gray_uses_bt601() {
        let img = Image::from_u8(1, 1, Channels::Rgb, vec![255, 0, 0]).unwrap();
        let (g, _) = img.to_gray8();
        assert_eq!(g.samples(), &Samples::U8(vec![76]));
    }

    #[test]
    fn hash_depends_on_pixels_and_layout() {
        let a = Image::from_u8(2, 1, Channels::Gray, vec![1, 2]).unwrap();
        let b = Image::from_u8(1, 2, Channels::Gray, vec![1, 2]).unwrap();
        let c = Image::from_u8(2, 1, Channels::Gray, vec![1, 3]).unwrap();
        assert_ne!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), c.content_hash());
        assert_eq!(a.content_hash(), a.clone().content_hash());
        assert_eq!(a.content_hash().len(), 64);
    }
}
