//! Colour around the block transforms, as libjpeg-turbo does it by default: RGB → YCbCr in
//! 16-bit fixed point (jccolor.c), 2×2 box-averaged chroma with alternating rounding bias
//! (jcsample.c `h2v2_downsample`), and back: "fancy" triangle-filter chroma upsampling
//! (jdsample.c `h2v2_fancy_upsample`) and YCbCr → RGB (jdcolor.c).
//!
//! Each conversion has a plain per-pixel form, which is the definition and handles every
//! edge, and an AVX2 form (pulp's safe `V3` wrappers) for whole 16- or 8-pixel runs; test
//! `paths_agree` checks they give the same bytes.

#[cfg(target_arch = "x86_64")]
use pulp::x86::V3;

/// libjpeg's RGB → YCbCr at 16 bits: `(kr·r + kg·g + kb·b + add) >> 16` per component, with
/// `[kr, kg, kb, add]` below. Luma rounds half up, chroma half down (so it never reaches 256).
const TO_Y: [i32; 4] = [19595, 38470, 7471, 0x8000];
const TO_CB: [i32; 4] = [-11059, -21709, 32768, (128 << 16) + 0x7FFF];
const TO_CR: [i32; 4] = [32768, -27439, -5329, (128 << 16) + 0x7FFF];

/// libjpeg's YCbCr → RGB (its tables: `FIX(1.402)`, `FIX(0.71414)`, `FIX(0.34414)`,
/// `FIX(1.772)` at 16 bits): `R = Y + (CR_R·cr + ½) >> 16`, `G = Y + (CR_G·cr + CB_G·cb + ½) >> 16`,
/// `B = Y + (CB_B·cb + ½) >> 16`, with `cb`, `cr` centred on 0.
const CR_R: i32 = 91881;
const CR_G: i32 = -46802;
const CB_G: i32 = -22554;
const CB_B: i32 = 116130;

/// [`TO_Y`], [`TO_CB`], [`TO_CR`] for one pixel.
#[inline(always)]
fn ycc(px: &[u8]) -> (i32, i32, i32) {
    let rgb = [i32::from(px[0]), i32::from(px[1]), i32::from(px[2])];
    (dot(rgb, TO_Y), dot(rgb, TO_CB), dot(rgb, TO_CR))
}

#[inline(always)]
fn dot([r, g, b]: [i32; 3], [kr, kg, kb, add]: [i32; 4]) -> i32 {
    (kr * r + kg * g + kb * b + add) >> 16
}

/// One chroma row of the encoder and the luma rows under it. `rgb` holds the two image rows
/// (the second repeats the first below an odd-height image, as libjpeg pads), `lumas` the luma
/// rows to write (one or two). Chroma columns past the image read its last column.
struct EncodeRows<'a> {
    rgb: [&'a [u8]; 2],
    lumas: [&'a mut [u8]; 2],
    cb: &'a mut [u8],
    cr: &'a mut [u8],
}

impl EncodeRows<'_> {
    /// The plain form, from pixel `x0` (even) on. (Below an odd-height image the second luma
    /// row is empty: nothing to write.)
    #[inline(always)]
    fn plain_from(&mut self, x0: usize) {
        let w = self.lumas[0].len();
        for (luma, rgb) in self.lumas.iter_mut().zip(self.rgb) {
            for (x, l) in luma.iter_mut().enumerate().skip(x0) {
                *l = ycc(&rgb[3 * x..]).0 as u8;
            }
        }
        for cx in x0 / 2..self.cb.len() {
            let (mut sb, mut sr) = (0, 0);
            for rgb in self.rgb {
                for x in [(2 * cx).min(w - 1), (2 * cx + 1).min(w - 1)] {
                    let (_, b, r) = ycc(&rgb[3 * x..]);
                    sb += b;
                    sr += r;
                }
            }
            let bias = 1 + (cx as i32 & 1);
            self.cb[cx] = ((sb + bias) >> 2) as u8;
            self.cr[cx] = ((sr + bias) >> 2) as u8;
        }
    }

    /// 16 pixels of both rows at a time, then the plain form for the rest.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2(&mut self, simd: V3) {
        use avx2::{bytes16, convert8, pair_average};
        let a2 = simd.avx2;
        let w = self.lumas[0].len();
        let mut x0 = 0;
        while x0 + 16 <= w && x0 / 2 + 8 <= self.cb.len() {
            let zero = simd.avx._mm256_setzero_si256();
            let mut sums = [[zero; 2]; 2]; // [cb, cr][half]
            for (rgb, luma) in self.rgb.iter().zip(self.lumas.iter_mut()) {
                let [y0, b0, r0] = convert8(simd, &rgb[3 * x0..3 * x0 + 24]);
                let [y1, b1, r1] = convert8(simd, &rgb[3 * x0 + 24..3 * x0 + 48]);
                if let Some(out) = luma.get_mut(x0..x0 + 16) {
                    out.copy_from_slice(&bytes16(simd, y0, y1));
                }
                sums[0][0] = a2._mm256_add_epi32(sums[0][0], b0);
                sums[0][1] = a2._mm256_add_epi32(sums[0][1], b1);
                sums[1][0] = a2._mm256_add_epi32(sums[1][0], r0);
                sums[1][1] = a2._mm256_add_epi32(sums[1][1], r1);
            }
            let cb = pair_average(simd, sums[0][0], sums[0][1]);
            let cr = pair_average(simd, sums[1][0], sums[1][1]);
            let both = bytes16(simd, cb, cr);
            self.cb[x0 / 2..x0 / 2 + 8].copy_from_slice(&both[..8]);
            self.cr[x0 / 2..x0 / 2 + 8].copy_from_slice(&both[8..]);
            x0 += 16;
        }
        self.plain_from(x0);
    }
}

/// RGB (`w × h`, interleaved) → the luma plane (`w × h`) and the two chroma planes (`cw × ch`,
/// padded as libjpeg pads: rows past `ceil(h / 2)` repeat the last real one).
#[inline(always)]
pub(super) fn encode(
    rgb: &[u8],
    (w, h): (usize, usize),
    cw: usize,
    y: &mut [u8],
    (cb, cr): (&mut [u8], &mut [u8]),
    #[cfg(target_arch = "x86_64")] simd: Option<V3>,
) {
    let real = h.div_ceil(2);
    let mut lumas = y.chunks_mut(2 * w);
    for (cy, (cb_row, cr_row)) in cb
        .chunks_exact_mut(cw)
        .zip(cr.chunks_exact_mut(cw))
        .take(real)
        .enumerate()
    {
        let pair = lumas.next().expect("one luma row pair per chroma row");
        let (l0, l1) = pair.split_at_mut(w);
        let r0 = &rgb[2 * cy * 3 * w..][..3 * w];
        let r1 = rgb
            .get((2 * cy + 1) * 3 * w..(2 * cy + 2) * 3 * w)
            .unwrap_or(r0);
        let mut rows = EncodeRows {
            rgb: [r0, r1],
            lumas: [l0, l1],
            cb: cb_row,
            cr: cr_row,
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = simd {
            rows.avx2(simd);
            continue;
        }
        rows.plain_from(0);
    }
    for plane in [cb, cr] {
        let (rows, pad) = plane.split_at_mut(real * cw);
        let last = &rows[(real - 1) * cw..];
        for prow in pad.chunks_exact_mut(cw) {
            prow.copy_from_slice(last);
        }
    }
}

/// libjpeg's YCbCr → RGB for one pixel ([`CR_R`] and the rest).
#[inline(always)]
fn rgb(y: u8, cb: u8, cr: u8, px: &mut [u8]) {
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    px[0] = (y + ((CR_R * cr + 32768) >> 16)).clamp(0, 255) as u8;
    px[1] = (y + ((CR_G * cr + CB_G * cb + 32768) >> 16)).clamp(0, 255) as u8;
    px[2] = (y + ((CB_B * cb + 32768) >> 16)).clamp(0, 255) as u8;
}

/// Upsamples one output row of a chroma plane (`cw` wide in memory; `rw × rh` real samples,
/// the decoder's `downsampled_width/height`) into `out` (`2·rw` samples). With more than two
/// real columns, libjpeg's fancy upsampling: column sums `3·near + far` of the row pair (the
/// row above for even output rows, below for odd, repeated at the edges), then
/// `(3·this + neighbour + 8 or 7) >> 4` along the row; else plain 2×2 replication.
#[inline(always)]
fn upsample_row(
    c: &[u8],
    cw: usize,
    (rw, rh): (usize, usize),
    y: usize,
    sums: &mut [u16],
    out: &mut [u8],
) {
    let r = y / 2;
    let near = &c[r * cw..][..rw];
    if rw <= 2 {
        for (pair, &s) in out.chunks_exact_mut(2).zip(near) {
            pair.fill(s);
        }
        return;
    }
    let n = if y.is_multiple_of(2) {
        r.saturating_sub(1)
    } else {
        (r + 1).min(rh - 1)
    };
    let far = &c[n * cw..][..rw];
    let sums = &mut sums[..rw];
    for ((s, &a), &b) in sums.iter_mut().zip(near).zip(far) {
        *s = 3 * u16::from(a) + u16::from(b);
    }
    out[0] = ((4 * sums[0] + 8) >> 4) as u8;
    // Between columns i and i+1: the odd output of i and the even output of i+1.
    for (o, s) in out[1..2 * rw - 1].chunks_exact_mut(2).zip(sums.windows(2)) {
        o[0] = ((3 * s[0] + s[1] + 7) >> 4) as u8;
        o[1] = ((3 * s[1] + s[0] + 8) >> 4) as u8;
    }
    out[2 * rw - 1] = ((4 * sums[rw - 1] + 7) >> 4) as u8;
}

/// Decoded planes to interleaved RGB: `y` is `w × h`, `cb`/`cr` are chroma planes `cw` wide.
#[inline(always)]
pub(super) fn decode(
    y: &[u8],
    (cb, cr): (&[u8], &[u8]),
    (w, h): (usize, usize),
    cw: usize,
    out: &mut [u8],
    #[cfg(target_arch = "x86_64")] simd: Option<V3>,
) {
    let real = (w.div_ceil(2), h.div_ceil(2));
    let mut sums = vec![0u16; cw];
    let mut ub = vec![0u8; 2 * real.0];
    let mut ur = vec![0u8; 2 * real.0];
    for (row, out) in out.chunks_exact_mut(3 * w).enumerate().take(h) {
        upsample_row(cb, cw, real, row, &mut sums, &mut ub);
        upsample_row(cr, cw, real, row, &mut sums, &mut ur);
        let luma = &y[row * w..][..w];
        let mut x0 = 0;
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = simd {
            while x0 + 8 <= w {
                let px = avx2::rgb8(simd, &luma[x0..x0 + 8], &ub[x0..x0 + 8], &ur[x0..x0 + 8]);
                out[3 * x0..3 * x0 + 24].copy_from_slice(&px);
                x0 += 8;
            }
        }
        for x in x0..w {
            rgb(luma[x], ub[x], ur[x], &mut out[3 * x..3 * x + 3]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 steps. Functions, not closures: only code inlined into pulp's dispatched
    //! function gets AVX2, and a closure may stay out of line (then every intrinsic is a call).

    use core::arch::x86_64::__m256i;
    use pulp::x86::V3;

    use super::{CB_B, CB_G, CR_G, CR_R, TO_CB, TO_CR, TO_Y};

    #[inline(always)]
    fn k(simd: V3, x: i32) -> __m256i {
        simd.avx._mm256_set1_epi32(x)
    }

    /// `(kr·r + kg·g + kb·b + add) >> 16` in 32-bit lanes.
    #[inline(always)]
    fn dot(simd: V3, [r, g, b]: [__m256i; 3], [kr, kg, kb, add]: [i32; 4]) -> __m256i {
        let a2 = simd.avx2;
        let s = a2._mm256_add_epi32(
            a2._mm256_mullo_epi32(r, k(simd, kr)),
            a2._mm256_mullo_epi32(g, k(simd, kg)),
        );
        let s = a2._mm256_add_epi32(s, a2._mm256_mullo_epi32(b, k(simd, kb)));
        a2._mm256_srai_epi32::<16>(a2._mm256_add_epi32(s, k(simd, add)))
    }

    /// Eight RGB pixels (24 bytes) → (Y, Cb, Cr) in 32-bit lanes, as `super::ycc`.
    #[inline(always)]
    pub(super) fn convert8(simd: V3, px: &[u8]) -> [__m256i; 3] {
        let (a, a2) = (simd.avx, simd.avx2);
        // Each 128-bit half gets four pixels (12 bytes); gather R0..3, G0..3, B0..3 in it,
        // then put the halves' dwords together.
        let mut b = [0u8; 32];
        b[..12].copy_from_slice(&px[..12]);
        b[16..28].copy_from_slice(&px[12..24]);
        let gather = a._mm256_setr_epi8(
            0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11, -1, -1, -1, -1, //
            0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11, -1, -1, -1, -1,
        );
        let v = a2._mm256_shuffle_epi8(pulp::cast(b), gather);
        let v = a2._mm256_permutevar8x32_epi32(v, a._mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        let lo = a._mm256_castsi256_si128(v); // R0..7 G0..7
        let rgb = [
            a2._mm256_cvtepu8_epi32(lo),
            a2._mm256_cvtepu8_epi32(simd.sse2._mm_srli_si128::<8>(lo)),
            a2._mm256_cvtepu8_epi32(a2._mm256_extracti128_si256::<1>(v)),
        ];
        [
            dot(simd, rgb, TO_Y),
            dot(simd, rgb, TO_CB),
            dot(simd, rgb, TO_CR),
        ]
    }

    /// Sixteen 32-bit values → sixteen bytes in order, saturating to 0..=255.
    #[inline(always)]
    pub(super) fn bytes16(simd: V3, p: __m256i, q: __m256i) -> [u8; 16] {
        let a2 = simd.avx2;
        let w = a2._mm256_permute4x64_epi64::<0b11_01_10_00>(a2._mm256_packus_epi32(p, q));
        let b = a2._mm256_permute4x64_epi64::<0b11_01_10_00>(a2._mm256_packus_epi16(w, w));
        let b: [u8; 32] = pulp::cast(b);
        let mut out = [0u8; 16];
        out.copy_from_slice(&b[..16]);
        out
    }

    /// The eight 2×2 averages of 16 columns, given the column sums of the two rows: adjacent
    /// pairs added, bias 1, 2, 1, 2, … (the run starts at an even chroma column), `>> 2`.
    #[inline(always)]
    pub(super) fn pair_average(simd: V3, s0: __m256i, s1: __m256i) -> __m256i {
        let a2 = simd.avx2;
        let h = a2._mm256_permute4x64_epi64::<0b11_01_10_00>(a2._mm256_hadd_epi32(s0, s1));
        let bias = simd.avx._mm256_setr_epi32(1, 2, 1, 2, 1, 2, 1, 2);
        a2._mm256_srai_epi32::<2>(a2._mm256_add_epi32(h, bias))
    }

    /// Eight bytes → 32-bit lanes.
    #[inline(always)]
    fn load8(simd: V3, s: &[u8]) -> __m256i {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&s[..8]);
        simd.avx2._mm256_cvtepu8_epi32(pulp::cast(b))
    }

    /// `(v + 2^15) >> 16`.
    #[inline(always)]
    fn term(simd: V3, v: __m256i) -> __m256i {
        let a2 = simd.avx2;
        a2._mm256_srai_epi32::<16>(a2._mm256_add_epi32(v, k(simd, 32768)))
    }

    /// Eight pixels of Y, Cb, Cr → 24 bytes of RGB, as `super::rgb`.
    #[inline(always)]
    pub(super) fn rgb8(simd: V3, y: &[u8], cb: &[u8], cr: &[u8]) -> [u8; 24] {
        let (a, a2) = (simd.avx, simd.avx2);
        let c128 = k(simd, 128);
        let y = load8(simd, y);
        let cb = a2._mm256_sub_epi32(load8(simd, cb), c128);
        let cr = a2._mm256_sub_epi32(load8(simd, cr), c128);
        let r = a2._mm256_add_epi32(y, term(simd, a2._mm256_mullo_epi32(cr, k(simd, CR_R))));
        let g = a2._mm256_add_epi32(
            y,
            term(
                simd,
                a2._mm256_add_epi32(
                    a2._mm256_mullo_epi32(cr, k(simd, CR_G)),
                    a2._mm256_mullo_epi32(cb, k(simd, CB_G)),
                ),
            ),
        );
        let b = a2._mm256_add_epi32(y, term(simd, a2._mm256_mullo_epi32(cb, k(simd, CB_B))));
        // Saturating packs leave, per 128-bit half, R0..3 G0..3 B0..3 B0..3 (and R4..7 … in
        // the upper half); a byte shuffle puts each half's four pixels in RGB order.
        let rg = a2._mm256_packus_epi32(r, g);
        let bb = a2._mm256_packus_epi32(b, b);
        let v = a2._mm256_packus_epi16(rg, bb);
        let order = a._mm256_setr_epi8(
            0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, -1, -1, -1, -1, //
            0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, -1, -1, -1, -1,
        );
        let v: [u8; 32] = pulp::cast(a2._mm256_shuffle_epi8(v, order));
        let mut out = [0u8; 24];
        out[..12].copy_from_slice(&v[..12]);
        out[12..].copy_from_slice(&v[16..28]);
        out
    }
}
