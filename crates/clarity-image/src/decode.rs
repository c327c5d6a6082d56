//! File decoding: PNG, JPEG, TIFF (via the `image` crate) and DICOM (via dicom-rs, see
//! [`crate::dicom`]), with resource limits checked before any pixel buffer is allocated.

use std::io::{Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageReader};
use serde::{Deserialize, Serialize};

use crate::{Channels, Image, PixelFormat};

/// Resource limits applied to untrusted input files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted `width * height` (decompression-bomb guard). Default 100 000 000.
    pub max_pixels: u64,
    /// Largest accepted file size in bytes. Default 512 MiB.
    pub max_file_bytes: u64,
    /// Largest accepted width or height. Default 65 535.
    pub max_side: u32,
    /// Largest decoded pixel buffer in bytes: width × height × channels × bytes per sample
    /// as the decoder will produce it (alpha and 16-bit samples included), checked from the
    /// header before decoding. Default 512 MiB.
    #[serde(default = "default_max_decoded_bytes")]
    pub max_decoded_bytes: u64,
}

fn default_max_decoded_bytes() -> u64 {
    512 * 1024 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pixels: 100_000_000,
            max_file_bytes: 512 * 1024 * 1024,
            max_side: 65_535,
            max_decoded_bytes: default_max_decoded_bytes(),
        }
    }
}

/// Named CT windows (level/width in Hounsfield units), the usual radiology presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowPreset {
    Lung,
    Mediastinum,
    SoftTissue,
    Bone,
    Brain,
    Liver,
    Subdural,
    Stroke,
}

impl WindowPreset {
    /// Every preset, in a fixed order.
    pub const ALL: [WindowPreset; 8] = [
        WindowPreset::Lung,
        WindowPreset::Mediastinum,
        WindowPreset::SoftTissue,
        WindowPreset::Bone,
        WindowPreset::Brain,
        WindowPreset::Liver,
        WindowPreset::Subdural,
        WindowPreset::Stroke,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WindowPreset::Lung => "lung",
            WindowPreset::Mediastinum => "mediastinum",
            WindowPreset::SoftTissue => "soft_tissue",
            WindowPreset::Bone => "bone",
            WindowPreset::Brain => "brain",
            WindowPreset::Liver => "liver",
            WindowPreset::Subdural => "subdural",
            WindowPreset::Stroke => "stroke",
        }
    }

    /// `(level, width)` in modality units (HU for CT).
    pub fn level_width(self) -> (f64, f64) {
        match self {
            WindowPreset::Lung => (-600.0, 1500.0),
            WindowPreset::Mediastinum => (50.0, 350.0),
            WindowPreset::SoftTissue => (40.0, 400.0),
            WindowPreset::Bone => (400.0, 1800.0),
            WindowPreset::Brain => (40.0, 80.0),
            WindowPreset::Liver => (30.0, 150.0),
            WindowPreset::Subdural => (75.0, 215.0),
            WindowPreset::Stroke => (32.0, 8.0),
        }
    }

    /// Looks a preset up by name (`lung`, `soft_tissue`, …; `-` and case are tolerated).
    pub fn from_name(name: &str) -> Option<Self> {
        let norm = name.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL.into_iter().find(|p| p.name() == norm)
    }
}

impl std::str::FromStr for WindowPreset {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| DecodeError::UnknownPreset {
            name: s.to_string(),
            allowed: Self::ALL.map(|p| p.name()).join(", "),
        })
    }
}

impl std::fmt::Display for WindowPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which VOI window maps DICOM modality values to output grey levels. Ignored for
/// PNG/JPEG/TIFF, whose samples are kept as stored.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowChoice {
    /// The file's Window Center/Width (first pair) and VOI LUT Function; when the file has
    /// none, the data's own min..max.
    #[default]
    FromFile,
    /// A named preset, e.g. `lung`.
    Preset(WindowPreset),
    /// An explicit linear window in modality units (`width >= 1`).
    Explicit { level: f64, width: f64 },
}

/// Options for [`decode_file`] / [`decode_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DecodeOptions {
    pub limits: Limits,
    pub window: WindowChoice,
    /// Which frame of a multi-frame DICOM object becomes the image (0 = the first; the
    /// record names the frame and the frame count). Ignored for other formats.
    #[serde(default)]
    pub frame: u32,
}

/// Container format of a decoded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Png,
    Jpeg,
    Tiff,
    Dicom,
}

impl SourceFormat {
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Png => "png",
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Dicom => "dicom",
        }
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the VOI window applied to a DICOM image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSource {
    /// Window Center / Window Width tags of the file.
    FileVoi,
    /// A named preset ([`WindowChoice::Preset`]).
    Preset,
    /// [`WindowChoice::Explicit`].
    Explicit,
    /// No VOI tags in the file: the min..max of the modality values.
    DataMinMax,
}

/// The VOI window used for a DICOM image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub source: WindowSource,
    /// Set when `source` is `preset`.
    pub preset: Option<WindowPreset>,
    /// Window center, modality units.
    pub level: f64,
    /// Window width, modality units.
    pub width: f64,
    /// VOI LUT function: `linear`, `linear_exact` or `sigmoid`.
    pub function: String,
}

/// What was done to a DICOM image's stored values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DicomRecord {
    pub transfer_syntax: String,
    /// `Name (uid)` of the transfer syntax.
    #[serde(default)]
    pub transfer_syntax_name: String,
    pub photometric_interpretation: String,
    pub modality: Option<String>,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
    /// `None` for colour (RGB) images, which are not windowed.
    pub window: Option<WindowRecord>,
    /// MONOCHROME1: output inverted so that higher values are brighter.
    pub inverted: bool,
    /// The whole mapping stored value → output sample, as text.
    pub formula: String,
    /// The frame decoded (0-based) and the object's frame count.
    #[serde(default)]
    pub frame: u32,
    #[serde(default = "one")]
    pub frames: u32,
    /// Every transformation applied, in order (frame choice, modality LUT or rescale, VOI
    /// LUT or window or min..max, inversion, colour conversion).
    #[serde(default)]
    pub transformations: Vec<String>,
}

fn one() -> u32 {
    1
}

/// How a file became an [`Image`]: deterministic, serialisable, stored with the cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeRecord {
    pub format: SourceFormat,
    pub width: u32,
    pub height: u32,
    /// Colour type in the file: `gray`, `gray_alpha`, `rgb`, `rgba`, `palette`, `cmyk`,
    /// `monochrome1`, `monochrome2`, ….
    pub source_color: String,
    /// Samples per pixel in the file (palette counts 1).
    pub source_channels: u8,
    /// Bits per sample in the file (DICOM: bits stored).
    pub source_bits: u8,
    /// Pixel format of the decoded [`Image`].
    pub output: PixelFormat,
    /// Explicit conversions applied, in order (empty when samples are kept as stored).
    pub conversions: Vec<String>,
    pub dicom: Option<DicomRecord>,
}

/// A decoded image and the record of how it was decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub image: Image,
    pub record: DecodeRecord,
}

/// Errors decoding an image file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{name}: cannot read file: {source}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: file is empty")]
    Empty { name: String },
    #[error(
        "{name}: file is {bytes} bytes, over the max_file_bytes limit of {limit} bytes; raise max_file_bytes if the file is trusted"
    )]
    FileTooLarge {
        name: String,
        bytes: u64,
        limit: u64,
    },
    #[error(
        "{name}: image is {width}x{height} = {pixels} pixels, over the max_pixels limit of {limit}; raise max_pixels if the file is trusted"
    )]
    TooManyPixels {
        name: String,
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error(
        "{name}: image is {width}x{height}, a side over the max_side limit of {limit}; raise max_side if the file is trusted"
    )]
    SideTooLong {
        name: String,
        width: u32,
        height: u32,
        limit: u32,
    },
    #[error(
        "{name}: image is {width}x{height} {layout}, {bytes} bytes decoded, over the max_decoded_bytes limit of {limit}; raise max_decoded_bytes if the file is trusted"
    )]
    TooManyBytes {
        name: String,
        width: u32,
        height: u32,
        /// e.g. `rgba16` or `3 samples × 16 bits`.
        layout: String,
        bytes: u64,
        limit: u64,
    },
    #[error("{name}: image has zero width or height ({width}x{height})")]
    ZeroSize {
        name: String,
        width: u32,
        height: u32,
    },
    #[error("{name}: not a PNG, JPEG, TIFF or DICOM file (starts with {head})")]
    UnknownFormat { name: String, head: String },
    #[error("{name}: corrupt or truncated {format} file: {detail}")]
    Corrupt {
        name: String,
        format: SourceFormat,
        detail: String,
    },
    #[error("{name}: unsupported {format} file: {detail}")]
    Unsupported {
        name: String,
        format: SourceFormat,
        detail: String,
    },
    #[error("{name}: {detail}")]
    BadWindow { name: String, detail: String },
    #[error("{name}: not an image: a DICOM object without pixel data ({what})")]
    NotAnImage { name: String, what: String },
    #[error("{name}: frame {frame} asked for, the object has {frames} frame(s) (0-based)")]
    BadFrame {
        name: String,
        frame: u32,
        frames: u32,
    },
    #[error("unknown window preset '{name}'; expected one of: {allowed}")]
    UnknownPreset { name: String, allowed: String },
    #[error("{path}: cannot write png: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads and decodes an image file (PNG, JPEG, TIFF or DICOM, detected from its content).
/// The file size is checked before it is read.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<Decoded, DecodeError> {
    let name = path.display().to_string();
    let read_err = |source| DecodeError::Read {
        name: name.clone(),
        source,
    };
    let file = fs_err::File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    check_file_size(&name, len, &opts.limits)?;
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` guards against a file that grows between the size check and the read.
    file.take(opts.limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    decode_bytes(&bytes, &name, opts)
}

/// Decodes an image held in memory; `name` is used in errors (usually the path).
pub fn decode_bytes(
    bytes: &[u8],
    name: &str,
    opts: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    check_file_size(name, bytes.len() as u64, &opts.limits)?;
    match sniff(bytes) {
        Some(SourceFormat::Dicom) => crate::dicom::decode_dicom(bytes, name, opts),
        Some(format) => decode_raster(bytes, name, format, &opts.limits),
        None => Err(DecodeError::UnknownFormat {
            name: name.to_string(),
            head: describe_head(bytes),
        }),
    }
}

fn check_file_size(name: &str, len: u64, limits: &Limits) -> Result<(), DecodeError> {
    if len == 0 {
        return Err(DecodeError::Empty {
            name: name.to_string(),
        });
    }
    if len > limits.max_file_bytes {
        return Err(DecodeError::FileTooLarge {
            name: name.to_string(),
            bytes: len,
            limit: limits.max_file_bytes,
        });
    }
    Ok(())
}

/// Checks dimensions against the limits (before any pixel buffer exists).
pub(crate) fn check_dimensions(
    name: &str,
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::ZeroSize {
            name: name.to_string(),
            width,
            height,
        });
    }
    if width > limits.max_side || height > limits.max_side {
        return Err(DecodeError::SideTooLong {
            name: name.to_string(),
            width,
            height,
            limit: limits.max_side,
        });
    }
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_pixels {
        return Err(DecodeError::TooManyPixels {
            name: name.to_string(),
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// Checks the decoded size, `width × height × bytes_per_pixel`, against `max_decoded_bytes`
/// (before any pixel buffer exists). `layout` names the pixel layout in the error.
pub(crate) fn check_decoded_bytes(
    name: &str,
    width: u32,
    height: u32,
    layout: &str,
    bytes_per_pixel: u64,
    limits: &Limits,
) -> Result<(), DecodeError> {
    let bytes = u64::from(width)
        .saturating_mul(u64::from(height))
        .saturating_mul(bytes_per_pixel);
    if bytes > limits.max_decoded_bytes {
        return Err(DecodeError::TooManyBytes {
            name: name.to_string(),
            width,
            height,
            layout: layout.to_string(),
            bytes,
            limit: limits.max_decoded_bytes,
        });
    }
    Ok(())
}

/// Detects the format from magic bytes (never from the file name).
pub fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
    // DICOM first: a Part 10 preamble may itself look like a TIFF header (dual-format
    // files), and such a file must be read as DICOM (rescale, window, MONOCHROME1).
    if crate::dicom::has_dicm_magic(bytes) {
        Some(SourceFormat::Dicom)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(SourceFormat::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(SourceFormat::Jpeg)
    } else if bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        Some(SourceFormat::Tiff)
    } else {
        None
    }
}

fn describe_head(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("bytes {}", head.join(" "))
}

fn decode_raster(
    bytes: &[u8],
    name: &str,
    format: SourceFormat,
    limits: &Limits,
) -> Result<Decoded, DecodeError> {
    let corrupt = |detail: String| DecodeError::Corrupt {
        name: name.to_string(),
        format,
        detail,
    };
    let png_header = if format == SourceFormat::Png {
        let h = png_ihdr(bytes).ok_or_else(|| corrupt("missing or short IHDR header".into()))?;
        // Checked from the header alone so a bomb never reaches the decoder.
        check_dimensions(name, h.width, h.height, limits)?;
        Some(h)
    } else {
        None
    };

    if format == SourceFormat::Jpeg && !jpeg_has_end_marker(bytes) {
        // The JPEG decoder fills a truncated scan with grey instead of failing.
        return Err(corrupt(
            "no end-of-image marker (FF D9) after the last scan; the file is truncated".into(),
        ));
    }
    let image_format = match format {
        SourceFormat::Png => image::ImageFormat::Png,
        SourceFormat::Jpeg => image::ImageFormat::Jpeg,
        _ => image::ImageFormat::Tiff,
    };
    // Header-only probe without the decoder's own limits, so an oversized image gets our
    // error naming the limit to raise rather than a generic allocation-limit error.
    let mut probe = ImageReader::with_format(Cursor::new(bytes), image_format);
    probe.no_limits();
    let (width, height) = probe
        .into_dimensions()
        .map_err(|e| image_error(e, name, format))?;
    check_dimensions(name, width, height, limits)?;

    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(limits.max_side);
    lim.max_image_height = Some(limits.max_side);
    // The decoded buffer plus decoder scratch space.
    lim.max_alloc = Some(limits.max_decoded_bytes.saturating_add(64 << 20));
    reader.limits(lim);
    let decoder = reader
        .into_decoder()
        .map_err(|e| image_error(e, name, format))?;
    if decoder.dimensions() != (width, height) {
        return Err(corrupt("dimensions changed between header reads".into()));
    }
    // The decoder's output layout is known from the header: refuse before it allocates.
    let color = decoder.color_type();
    check_decoded_bytes(
        name,
        width,
        height,
        &format!("{color:?}").to_ascii_lowercase(),
        u64::from(color.bytes_per_pixel()),
        limits,
    )?;
    let original = decoder.original_color_type();
    let dynimg = DynamicImage::from_decoder(decoder).map_err(|e| image_error(e, name, format))?;

    let mut conversions = Vec::new();
    let (source_color, source_channels, source_bits) = match &png_header {
        Some(h) => {
            let (color, channels) = match h.color_type {
                0 => ("gray", 1),
                2 => ("rgb", 3),
                3 => ("palette", 1),
                4 => ("gray_alpha", 2),
                6 => ("rgba", 4),
                _ => ("unknown", 0),
            };
            if h.color_type == 3 {
                conversions.push(format!(
                    "palette ({}-bit indices) expanded to rgb8",
                    h.bit_depth
                ));
            } else if h.bit_depth < 8 {
                let max = (1u32 << h.bit_depth) - 1;
                conversions.push(format!(
                    "{color}{} expanded to 8-bit: v8 = v * {}",
                    h.bit_depth,
                    255 / max
                ));
            }
            (color.to_string(), channels, h.bit_depth)
        }
        None => describe_extended(original),
    };

    let (image, alpha) = dynamic_to_image(dynimg, &mut conversions);
    if alpha {
        let note = match (&png_header, source_color.as_str()) {
            (Some(_), "gray" | "rgb" | "palette") => {
                "transparency (tRNS) dropped, colour samples kept as stored (not composited)"
            }
            _ => "alpha channel dropped, colour samples kept as stored (not composited)",
        };
        conversions.push(note.to_string());
    }
    let record = DecodeRecord {
        format,
        width,
        height,
        source_color,
        source_channels,
        source_bits,
        output: image.format(),
        conversions,
        dicom: None,
    };
    Ok(Decoded { image, record })
}

fn image_error(e: image::ImageError, name: &str, format: SourceFormat) -> DecodeError {
    match e {
        image::ImageError::Unsupported(u) => DecodeError::Unsupported {
            name: name.to_string(),
            format,
            detail: u.to_string(),
        },
        image::ImageError::Limits(l) => DecodeError::Unsupported {
            name: name.to_string(),
            format,
            detail: format!(
                "decoder memory limit: {l}; raise max_decoded_bytes if the file is trusted"
            ),
        },
        other => DecodeError::Corrupt {
            name: name.to_string(),
            format,
            detail: other.to_string(),
        },
    }
}

/// True when an EOI marker follows the last start-of-scan marker. Inside entropy-coded
/// data a 0xFF byte is always stuffed (FF 00) or a restart marker, so FF D9 there is the EOI.
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let Some(last_sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[last_sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

struct PngHeader {
    width: u32,
    height: u32,
    bit_depth: u8,
    color_type: u8,
}

/// The IHDR chunk always comes first: signature (8) + length (4) + "IHDR" (4) + 13 bytes.
fn png_ihdr(bytes: &[u8]) -> Option<PngHeader> {
    let b = bytes.get(8..29)?;
    if &b[4..8] != b"IHDR" {
        return None;
    }
    Some(PngHeader {
        width: u32::from_be_bytes(b[8..12].try_into().ok()?),
        height: u32::from_be_bytes(b[12..16].try_into().ok()?),
        bit_depth: b[16],
        color_type: b[17],
    })
}

fn describe_extended(t: ExtendedColorType) -> (String, u8, u8) {
    use ExtendedColorType as E;
    let color = match t {
        E::A8 => "alpha",
        E::L1 | E::L2 | E::L4 | E::L8 | E::L16 => "gray",
        E::La1 | E::La2 | E::La4 | E::La8 | E::La16 => "gray_alpha",
        E::Rgb1 | E::Rgb2 | E::Rgb4 | E::Rgb8 | E::Rgb16 | E::Bgr8 => "rgb",
        E::Rgba1 | E::Rgba2 | E::Rgba4 | E::Rgba8 | E::Rgba16 | E::Bgra8 => "rgba",
        E::Rgb32F => "rgb_f32",
        E::Rgba32F => "rgba_f32",
        E::Cmyk8 | E::Cmyk16 => "cmyk",
        _ => "other",
    };
    let channels = t.channel_count();
    let bits = if channels == 0 {
        0
    } else {
        (t.bits_per_pixel() / channels as u16) as u8
    };
    (color.to_string(), channels, bits)
}

/// Moves the decoder's buffer into an [`Image`]; returns whether an alpha channel was dropped.
fn dynamic_to_image(img: DynamicImage, conversions: &mut Vec<String>) -> (Image, bool) {
    let (w, h) = (img.width(), img.height());
    let gray8 = |v: Vec<u8>| Image::from_u8(w, h, Channels::Gray, v);
    let rgb8 = |v: Vec<u8>| Image::from_u8(w, h, Channels::Rgb, v);
    let gray16 = |v: Vec<u16>| Image::from_u16(w, h, Channels::Gray, v);
    let rgb16 = |v: Vec<u16>| Image::from_u16(w, h, Channels::Rgb, v);
    let drop_alpha8 = |v: &[u8], n: usize| -> Vec<u8> {
        v.chunks_exact(n)
            .flat_map(|p| &p[..n - 1])
            .copied()
            .collect()
    };
    let drop_alpha16 = |v: &[u16], n: usize| -> Vec<u16> {
        v.chunks_exact(n)
            .flat_map(|p| &p[..n - 1])
            .copied()
            .collect()
    };
    // Buffer sizes come from the decoder for these dimensions, so construction cannot fail.
    let (res, alpha) = match img {
        DynamicImage::ImageLuma8(b) => (gray8(b.into_raw()), false),
        DynamicImage::ImageLumaA8(b) => (gray8(drop_alpha8(b.as_raw(), 2)), true),
        DynamicImage::ImageRgb8(b) => (rgb8(b.into_raw()), false),
        DynamicImage::ImageRgba8(b) => (rgb8(drop_alpha8(b.as_raw(), 4)), true),
        DynamicImage::ImageLuma16(b) => (gray16(b.into_raw()), false),
        DynamicImage::ImageLumaA16(b) => (gray16(drop_alpha16(b.as_raw(), 2)), true),
        DynamicImage::ImageRgb16(b) => (rgb16(b.into_raw()), false),
        DynamicImage::ImageRgba16(b) => (rgb16(drop_alpha16(b.as_raw(), 4)), true),
        DynamicImage::ImageRgba32F(_) => {
            conversions.push("float samples to rgb16: u16 = round(clamp(f, 0, 1) * 65535)".into());
            (rgb16(img.to_rgb16().into_raw()), true)
        }
        other => {
            conversions
                .push("float samples to rgb16: u16 = round(clamp(f, 0, 1) * 65535)".to_string());
            (rgb16(other.to_rgb16().into_raw()), false)
        }
    };
    (res.expect("decoder buffer matches its dimensions"), alpha)
}
