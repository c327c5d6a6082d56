//! The lossy core of a baseline JPEG round trip on one 8×8 block, as libjpeg-turbo computes it
//! with its default (`JDCT_ISLOW`) method: the accurate integer forward DCT, the rounding
//! quantiser in its reciprocal form, and the accurate integer inverse DCT with the level shift
//! and range limit folded in.
//!
//! Written by hand because no crate exposes a codec's transforms without its entropy coder, and
//! the entropy coder is lossless: skipping it gives the same samples as encoding and decoding.
//! Each 1-D pass runs eight transforms at once, one per lane ([`Lanes`]); integer arithmetic,
//! so the bytes are the same on every path.

use super::lanes::{Lanes, X, unwrap, wrap};

/// A block as eight rows of eight lanes.
pub(super) type Block<L> = [<L as Lanes>::R; 8];

/// libjpeg's quantisation tables (ITU T.81 Annex K), natural order.
const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// One component's quantiser: libjpeg-turbo's reciprocal form of dividing the DCT output
/// (scaled by 8) by `8·q` with rounding, and the decoder's dequantiser `q`; natural order.
pub(super) struct Quant {
    recip: [[i32; 8]; 8],
    corr: [[i32; 8]; 8],
    shift: [[i32; 8]; 8],
    q: [[i32; 8]; 8],
}

impl Quant {
    /// The table `jpeg_set_quality(quality, force_baseline = TRUE)` gives.
    pub(super) fn new(quality: u8, luma: bool) -> Quant {
        let quality = u32::from(quality.clamp(1, 100));
        let scale = if quality < 50 {
            5000 / quality
        } else {
            200 - quality * 2
        };
        let base = if luma { &LUMA } else { &CHROMA };
        let mut quant = Quant {
            recip: [[0; 8]; 8],
            corr: [[0; 8]; 8],
            shift: [[0; 8]; 8],
            q: [[0; 8]; 8],
        };
        for (k, &b) in base.iter().enumerate() {
            let q = ((u32::from(b) * scale + 50) / 100).clamp(1, 255);
            let (recip, corr, shift) = reciprocal(q << 3);
            let (r, i) = (k / 8, k % 8);
            quant.recip[r][i] = recip;
            quant.corr[r][i] = corr;
            quant.shift[r][i] = shift;
            quant.q[r][i] = q as i32;
        }
        quant
    }

    /// The tables in lanes, once per plane.
    #[inline(always)]
    pub(super) fn lanes<L: Lanes>(&self, l: L) -> QuantLanes<L> {
        let mut q = QuantLanes {
            recip: [l.splat(0); 8],
            corr: [l.splat(0); 8],
            shift: [l.splat(0); 8],
            q: [l.splat(0); 8],
        };
        for r in 0..8 {
            q.recip[r] = l.load_array(self.recip[r]);
            q.corr[r] = l.load_array(self.corr[r]);
            q.shift[r] = l.load_array(self.shift[r]);
            q.q[r] = l.load_array(self.q[r]);
        }
        q
    }
}

/// [`Quant`] held in lanes.
pub(super) struct QuantLanes<L: Lanes> {
    recip: Block<L>,
    corr: Block<L>,
    shift: Block<L>,
    q: Block<L>,
}

impl<L: Lanes> QuantLanes<L> {
    /// Quantises and dequantises natural-order coefficients:
    /// `sign(c)·((|c| + corr)·recip >> shift)·q`. `|c| + corr < 2^14` and `recip < 2^16`, so the
    /// product fits an `i32`.
    #[inline(always)]
    fn round_trip(&self, l: L, c: Block<L>) -> Block<L> {
        let mut out = c;
        for (r, o) in out.iter_mut().enumerate() {
            let a = l.add(l.abs(c[r]), self.corr[r]);
            let p = l.srav(l.mul(a, self.recip[r]), self.shift[r]);
            *o = l.mul(l.sign(p, c[r]), self.q[r]);
        }
        out
    }
}

/// libjpeg-turbo's `compute_reciprocal` (jcdctmgr.c) for a divisor of at least 8: the reciprocal,
/// the rounding correction and the total right shift.
fn reciprocal(divisor: u32) -> (i32, i32, i32) {
    let b = 31 - divisor.leading_zeros(); // floor(log2(divisor))
    let mut r = 16 + b;
    let mut fq = (1u32 << r) / divisor;
    let fr = (1u32 << r) % divisor;
    let mut c = divisor / 2;
    if fr == 0 {
        // Divisor is a power of two: fq would be 2^16.
        fq >>= 1;
        r -= 1;
    } else if fr <= divisor / 2 {
        c += 1;
    } else {
        fq += 1;
    }
    (fq as i32, c as i32, r as i32)
}

const CONST_BITS: i32 = 13;
const PASS1_BITS: i32 = 2;
const FIX_0_298631336: i32 = 2446;
const FIX_0_390180644: i32 = 3196;
const FIX_0_541196100: i32 = 4433;
const FIX_0_765366865: i32 = 6270;
const FIX_0_899976223: i32 = 7373;
const FIX_1_175875602: i32 = 9633;
const FIX_1_501321110: i32 = 12299;
const FIX_1_847759065: i32 = 15137;
const FIX_1_961570560: i32 = 16069;
const FIX_2_053119869: i32 = 16819;
const FIX_2_562915447: i32 = 20995;
const FIX_3_072711026: i32 = 25172;

/// One pass of `jpeg_fdct_islow` on eight lanes: `d[i]` holds element `i` of eight 1-D
/// transforms. The first pass (`ROWS`) keeps `PASS1_BITS` of extra precision, the second
/// removes it (the result is the DCT scaled by 8).
#[inline(always)]
fn fdct_1d<L: Lanes, const ROWS: bool>(l: L, d: Block<L>) -> Block<L> {
    let d = wrap(l, d);
    let tmp0 = d[0] + d[7];
    let tmp7 = d[0] - d[7];
    let tmp1 = d[1] + d[6];
    let tmp6 = d[1] - d[6];
    let tmp2 = d[2] + d[5];
    let tmp5 = d[2] - d[5];
    let tmp3 = d[3] + d[4];
    let tmp4 = d[3] - d[4];

    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;

    let mut o = [tmp10; 8];
    if ROWS {
        o[0] = (tmp10 + tmp11).sll::<PASS1_BITS>();
        o[4] = (tmp10 - tmp11).sll::<PASS1_BITS>();
    } else {
        o[0] = (tmp10 + tmp11).descale::<PASS1_BITS>();
        o[4] = (tmp10 - tmp11).descale::<PASS1_BITS>();
    }
    let z1 = (tmp12 + tmp13) * FIX_0_541196100;
    o[2] = ds::<L, ROWS>(z1 + tmp13 * FIX_0_765366865);
    o[6] = ds::<L, ROWS>(z1 + tmp12 * -FIX_1_847759065);

    let z1 = tmp4 + tmp7;
    let z2 = tmp5 + tmp6;
    let z3 = tmp4 + tmp6;
    let z4 = tmp5 + tmp7;
    let z5 = (z3 + z4) * FIX_1_175875602;
    let tmp4 = tmp4 * FIX_0_298631336;
    let tmp5 = tmp5 * FIX_2_053119869;
    let tmp6 = tmp6 * FIX_3_072711026;
    let tmp7 = tmp7 * FIX_1_501321110;
    let z1 = z1 * -FIX_0_899976223;
    let z2 = z2 * -FIX_2_562915447;
    let z3 = z3 * -FIX_1_961570560 + z5;
    let z4 = z4 * -FIX_0_390180644 + z5;
    o[7] = ds::<L, ROWS>(tmp4 + z1 + z3);
    o[5] = ds::<L, ROWS>(tmp5 + z2 + z4);
    o[3] = ds::<L, ROWS>(tmp6 + z2 + z3);
    o[1] = ds::<L, ROWS>(tmp7 + z1 + z4);
    unwrap(o)
}

/// DESCALE by `CONST_BITS ∓ PASS1_BITS` (first or second FDCT pass).
#[inline(always)]
fn ds<L: Lanes, const ROWS: bool>(x: X<L>) -> X<L> {
    if ROWS {
        x.descale::<{ CONST_BITS - PASS1_BITS }>()
    } else {
        x.descale::<{ CONST_BITS + PASS1_BITS }>()
    }
}

/// One pass of `jpeg_idct_islow` on eight lanes: `d[i]` holds element `i` of eight 1-D
/// transforms; returns them descaled by `shift` with rounding.
#[inline(always)]
fn idct_1d<L: Lanes, const SHIFT: i32>(l: L, d: Block<L>) -> Block<L> {
    let d = wrap(l, d);
    let z1 = (d[2] + d[6]) * FIX_0_541196100;
    let tmp2 = z1 + d[6] * -FIX_1_847759065;
    let tmp3 = z1 + d[2] * FIX_0_765366865;
    let tmp0 = (d[0] + d[4]).sll::<CONST_BITS>();
    let tmp1 = (d[0] - d[4]).sll::<CONST_BITS>();
    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;

    let (tmp0, tmp1, tmp2, tmp3) = (d[7], d[5], d[3], d[1]);
    let z1 = tmp0 + tmp3;
    let z2 = tmp1 + tmp2;
    let z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    let tmp0 = tmp0 * FIX_0_298631336;
    let tmp1 = tmp1 * FIX_2_053119869;
    let tmp2 = tmp2 * FIX_3_072711026;
    let tmp3 = tmp3 * FIX_1_501321110;
    let z1 = z1 * -FIX_0_899976223;
    let z2 = z2 * -FIX_2_562915447;
    let z3 = z3 * -FIX_1_961570560 + z5;
    let z4 = z4 * -FIX_0_390180644 + z5;
    let tmp0 = tmp0 + z1 + z3;
    let tmp1 = tmp1 + z2 + z4;
    let tmp2 = tmp2 + z2 + z3;
    let tmp3 = tmp3 + z1 + z4;
    unwrap([
        (tmp10 + tmp3).descale::<SHIFT>(),
        (tmp11 + tmp2).descale::<SHIFT>(),
        (tmp12 + tmp1).descale::<SHIFT>(),
        (tmp13 + tmp0).descale::<SHIFT>(),
        (tmp13 - tmp0).descale::<SHIFT>(),
        (tmp12 - tmp1).descale::<SHIFT>(),
        (tmp11 - tmp2).descale::<SHIFT>(),
        (tmp10 - tmp3).descale::<SHIFT>(),
    ])
}

/// Encodes and decodes one block: `rows[y]` holds the level-shifted samples (`s − 128`) of
/// block row `y`; returns the decoded samples (level shift undone), row by row, before the
/// range limit.
/// The all-zero shortcuts of libjpeg's IDCT give the same values as the full transform, so
/// there are none here. The range limit is [`Lanes::to_bytes`]'s saturation, as in
/// libjpeg-turbo's SIMD IDCT (saturating packs; the path OpenCV and Pillow take on x86 and ARM).
/// Its C IDCT's table instead wraps values more than 384 outside 0..=255; only blocks whose
/// quantisation errors all add up in one sample get there (none of the fixtures or tests do).
#[inline(always)]
pub(super) fn round_trip_block<L: Lanes>(l: L, rows: Block<L>, quant: &QuantLanes<L>) -> Block<L> {
    // Row transforms run across lanes = rows, so they take the block's columns.
    let pass1 = fdct_1d::<L, true>(l, l.transpose(rows));
    // pass1[k] holds coefficient k of every row; the column pass wants rows of coefficients.
    let coeffs = fdct_1d::<L, false>(l, l.transpose(pass1));
    let deq = quant.round_trip(l, coeffs);
    // Columns first (lanes = columns, inputs = coefficient rows), then rows.
    let ws = idct_1d::<L, { CONST_BITS - PASS1_BITS }>(l, deq);
    let out = idct_1d::<L, { CONST_BITS + PASS1_BITS + 3 }>(l, l.transpose(ws));
    let mut out = l.transpose(out);
    let centre = l.splat(128);
    for r in &mut out {
        *r = l.add(*r, centre);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::jpeg::lanes::Scalar;

    fn block(v: &[i32; 64]) -> [[i32; 8]; 8] {
        std::array::from_fn(|r| std::array::from_fn(|i| v[r * 8 + i]))
    }

    /// libjpeg's `jpeg_fdct_islow` on two blocks (the vectors `jpeg-encoder` tests its port with).
    #[test]
    fn fdct_matches_libjpeg() {
        #[rustfmt::skip]
        let cases: [([i32; 64], [i32; 64]); 2] = [
            ([-70, -71, -70, -68, -67, -67, -67, -67, -72, -73, -72, -70, -69, -69, -68, -69, -75,
              -76, -74, -73, -73, -72, -71, -70, -77, -78, -77, -75, -76, -75, -73, -71, -78, -77,
              -77, -76, -79, -77, -76, -75, -78, -78, -77, -77, -77, -77, -78, -77, -79, -79, -78,
              -78, -78, -78, -79, -78, -80, -79, -78, -78, -81, -80, -78, -76],
             [-4786, -66, 2, -18, 12, 12, 5, -7, 223, -37, -8, 21, 8, 5, -4, 6, 60, 6, -10, 5, 0,
              -2, -1, 5, 21, 21, -15, 12, -2, -7, 1, 0, -2, -5, 16, -15, 0, 5, -4, -8, 0, -7, -4, 6,
              7, -4, 5, 4, 3, 0, 1, -5, 0, -1, 4, 1, -5, 7, 0, -3, -6, 1, 1, -4]),
            ([21, 28, 11, 24, -45, -37, -55, -103, 38, -8, 31, 17, -19, 49, 15, -76, 22, -48, -36,
              -31, -23, 35, -23, -72, 13, -30, -45, -42, -44, -15, -20, -44, 13, -30, -45, -42, -44,
              -15, -20, -44, 13, -30, -45, -42, -44, -15, -20, -44, 13, -30, -45, -42, -44, -15, -20,
              -44, 13, -30, -45, -42, -44, -15, -20, -44],
             [-1420, 717, 187, 910, -244, 579, 222, -191, 461, 487, -497, -29, -220, 179, 63, -95,
              213, 414, -235, -187, -108, 74, -73, -70, -63, 311, 13, -290, 17, -38, -180, -47, -254,
              201, 116, -247, 102, -109, -185, -36, -310, 107, 73, -91, 126, -121, -99, -37, -253, 43,
              -15, 53, 101, -91, -3, -37, -136, 12, -44, 81, 53, -45, 31, -24]),
        ];
        for (input, want) in cases {
            let l = Scalar;
            let rows = l.transpose(fdct_1d::<_, true>(l, l.transpose(block(&input))));
            let got = fdct_1d::<_, false>(l, rows);
            assert_eq!(got, block(&want));
        }
    }
}
