//! The `jpeg` kernel: baseline JPEG encode + decode at a quality, with the samples
//! libjpeg-turbo gives at its defaults (what OpenCV's `imencode`/`imdecode`, Pillow and
//! ImageNet-C's `jpeg_compression` use): IJG tables scaled by quality, accurate integer DCTs,
//! RGB as YCbCr with 4:2:0 box-averaged chroma, fancy upsampling on the way back.
//!
//! Computed without the entropy coder in between: Huffman coding is lossless, so quantised
//! coefficients go straight to the inverse transform. The `tests` module checks the bytes
//! against libjpeg-turbo's own output (fixtures written by `bench/jpeg_reference.py`).

mod color;
mod dct;
mod lanes;

use clarity_image::{Channels, Image, Samples};

use super::common::{int, meta, presets1, same_layout, unsupported, vectorized, vectorized_job};
use crate::params::{ParamSpec, Params, PerturbError, ResolvedParams};
use crate::{KernelRng, Perturbation};
use dct::{Quant, round_trip_block};
use lanes::{Lanes, Scalar};

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

/// Round-trips a `w × h` plane (row stride `w`) through 8×8 blocks with lanes `l`. Blocks past
/// the right or bottom edge read the last column/row, as libjpeg pads; only samples inside the
/// plane are written.
#[inline(always)]
fn plane_with<L: Lanes>(l: L, src: &[u8], (w, h): (usize, usize), quant: &Quant, out: &mut [u8]) {
    let q = quant.lanes(l);
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            // A loop, not `array::from_fn`: see `lanes::wrap`.
            let mut rows = [l.splat(0); 8];
            for (r, row) in rows.iter_mut().enumerate() {
                let line = &src[(by + r).min(h - 1) * w..][..w];
                let mut px = [0u8; 8];
                match line.get(bx..bx + 8) {
                    Some(s) => px.copy_from_slice(s),
                    None => {
                        for (i, p) in px.iter_mut().enumerate() {
                            *p = line[(bx + i).min(w - 1)];
                        }
                    }
                }
                *row = l.load_centred(&px);
            }
            let dec = l.to_bytes(round_trip_block(l, rows, &q));
            let cols = (w - bx).min(8);
            for (r, row) in dec.iter().enumerate().take(h - by) {
                out[(by + r) * w + bx..][..cols].copy_from_slice(&row[..cols]);
            }
        }
    }
}

/// [`plane_with`] as a pulp job, so the AVX2 lanes run in a function compiled for AVX2.
struct PlaneJob<'a, L> {
    l: L,
    src: &'a [u8],
    wh: (usize, usize),
    quant: &'a Quant,
    out: &'a mut [u8],
}

impl<L: Lanes> pulp::WithSimd for PlaneJob<'_, L> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        plane_with(self.l, self.src, self.wh, self.quant, self.out);
    }
}

/// One plane through the blocks: AVX2 where the CPU has it, plain lanes elsewhere (same bytes:
/// integer arithmetic; test `paths_agree`).
fn plane(src: &[u8], (w, h): (usize, usize), quant: &Quant, fast: bool) -> Vec<u8> {
    let mut out = vec![0u8; w * h];
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = avx2(fast) {
        let job = PlaneJob {
            l: lanes::Avx2(simd),
            src,
            wh: (w, h),
            quant,
            out: &mut out,
        };
        pulp::Simd::vectorize(simd, job);
        return out;
    }
    plane_with(Scalar, src, (w, h), quant, &mut out);
    out
}

#[cfg(target_arch = "x86_64")]
type Avx2Token = Option<pulp::x86::V3>;
#[cfg(not(target_arch = "x86_64"))]
type Avx2Token = Option<()>;

/// AVX2 when the CPU has it and `fast` asks for it.
fn avx2(fast: bool) -> Avx2Token {
    #[cfg(target_arch = "x86_64")]
    return pulp::x86::V3::try_new().filter(|_| fast);
    #[cfg(not(target_arch = "x86_64"))]
    None
}

vectorized_job! {
    /// RGB → the YCbCr planes, chroma 4:2:0.
    struct Encode<'a> {
        rgb: &'a [u8],
        wh: (usize, usize),
        cw: usize,
        y: &'a mut [u8],
        c: (&'a mut [u8], &'a mut [u8]),
        simd: Avx2Token,
    } -> () {
        color::encode(rgb, wh, cw, y, c, #[cfg(target_arch = "x86_64")] simd);
    }
}

vectorized_job! {
    /// Decoded planes back to interleaved RGB.
    struct Decode<'a> {
        y: &'a [u8],
        c: (&'a [u8], &'a [u8]),
        wh: (usize, usize),
        cw: usize,
        rgb: &'a mut [u8],
        simd: Avx2Token,
    } -> () {
        color::decode(y, c, wh, cw, rgb, #[cfg(target_arch = "x86_64")] simd);
    }
}

/// Encodes and decodes 8-bit gray or RGB samples.
pub(crate) fn jpeg_roundtrip(
    data: &[u8],
    w: usize,
    h: usize,
    channels: Channels,
    quality: u8,
) -> Vec<u8> {
    round_trip(data, (w, h), channels, quality, true)
}

/// [`jpeg_roundtrip`], with the AVX2 runs (`fast`) or without (the tests compare them).
fn round_trip(
    data: &[u8],
    (w, h): (usize, usize),
    channels: Channels,
    quality: u8,
    fast: bool,
) -> Vec<u8> {
    if w == 0 || h == 0 {
        return data.to_vec();
    }
    let luma = Quant::new(quality, true);
    match channels {
        Channels::Gray => plane(data, (w, h), &luma, fast),
        Channels::Rgb => {
            // The encoder pads to whole 16×16 MCUs; chroma planes are half that, both ways.
            let (cw, ch) = (w.div_ceil(16) * 8, h.div_ceil(16) * 8);
            let mut y = vec![0u8; w * h];
            let (mut cb, mut cr) = (vec![0u8; cw * ch], vec![0u8; cw * ch]);
            vectorized(Encode {
                rgb: data,
                wh: (w, h),
                cw,
                y: &mut y,
                c: (&mut cb, &mut cr),
                simd: avx2(fast),
            });
            let chroma = Quant::new(quality, false);
            let y = plane(&y, (w, h), &luma, fast);
            let cb = plane(&cb, (cw, ch), &chroma, fast);
            let cr = plane(&cr, (cw, ch), &chroma, fast);
            let mut rgb = vec![0u8; data.len()];
            vectorized(Decode {
                y: &y,
                c: (&cb, &cr),
                wh: (w, h),
                cw,
                rgb: &mut rgb,
                simd: avx2(fast),
            });
            rgb
        }
    }
}

impl Perturbation for Jpeg {
    meta!(
        "jpeg",
        3,
        Resolution,
        random = false,
        "JPEG encode/decode at a quality, the samples of libjpeg-turbo at its defaults (as OpenCV, Pillow): lossy compression in teleradiology, screenshots, web/PACS exports (16-bit: the 8-bit error is added back at 16-bit scale)",
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
        let (w, h) = (w as usize, h as usize);
        let samples = match image.samples() {
            Samples::U8(v) => Samples::U8(jpeg_roundtrip(v, w, h, ch, quality as u8)),
            Samples::U16(v) => {
                let v8: Vec<u8> = v.iter().map(|&s| to8(s)).collect();
                let d8 = jpeg_roundtrip(&v8, w, h, ch, quality as u8);
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

#[cfg(test)]
mod tests;
