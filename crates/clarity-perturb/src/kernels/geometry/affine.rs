//! The affine warp behind rotation, scale and translation: exact fixed-point stepping along
//! each row, the row split into border and interior runs, the interior gathered and blended in
//! blocks.

use super::super::common::{Dims, Sample, vectorized, vectorized_job};
use super::{FRAC_BITS, ONE};

/// Fraction bits of the exact affine stepping (32.32 fixed point).
const STEP_BITS: u32 = 32;

/// Bilinear affine resampling with a zero border, `C` channels. The source position of output
/// pixel `(x, y)` is the row start (computed in f64 and rounded to 2^-32 px once per row) plus
/// `x` exact fixed-point steps, then rounded half up to 1/1024 px; the sampling is `warp`'s
/// integer bilinear. No per-pixel float work, so it is fast and portable.
///
/// Each row is split into a border, an interior and a border: the tap column and row are
/// monotone in `x`, so the pixels whose four taps all lie inside the image form one run, and
/// those with at least one tap inside another; both are found per row by a search on the
/// exact stepped positions ([`tap_run`]). Pixels with no tap inside stay 0 without being
/// visited, the others outside the interior take the checked path (taps outside read 0). The
/// interior is done in blocks ([`InteriorRun`]): vectorised 32-bit positions ([`BlockSteps`]),
/// a gather of each pixel's taps into planes (the two taps of a source row as one word, one
/// bounds check per pixel), and a vectorised blend ([`Sample::bilerp`]). Same bytes as
/// sampling every pixel through the checked path (tested against that).
pub(super) fn warp_affine<T: Sample, const C: usize>(
    v: &[T],
    d: Dims,
    a: [[f64; 2]; 2],
    t: (f64, f64),
) -> Vec<T> {
    let (w, h) = (d.w as i64, d.h as i64);
    let rl = d.row_len();
    let (cx, cy) = ((d.w as f64 - 1.0) / 2.0, (d.h as f64 - 1.0) / 2.0);
    let scale = (1u64 << STEP_BITS) as f64;
    let fixed = |x: f64| -> Option<i64> {
        let f = (x * scale).round();
        (f.abs() < 9.0e18).then_some(f as i64)
    };
    // Rounding half up to 1/1024 px is adding `half` once per row, then shifting.
    let half = 1i64 << (STEP_BITS - FRAC_BITS - 1);
    let shift = STEP_BITS - FRAC_BITS;
    let (Some(step_x), Some(step_y)) = (fixed(a[0][0]), fixed(a[1][0])) else {
        return vec![T::default(); v.len()];
    };
    let fetch = |x: i64, y: i64, ch: usize| -> i64 {
        if x >= 0 && x < w && y >= 0 && y < h {
            v[y as usize * rl + x as usize * C + ch].to_u32() as i64
        } else {
            0
        }
    };
    // The checked path for pixels near or beyond the edge (taps outside read 0).
    let border = |opx: &mut [T], qx: i64, qy: i64| {
        let (ix, wx) = (qx >> FRAC_BITS, qx & (ONE - 1));
        let (iy, wy) = (qy >> FRAC_BITS, qy & (ONE - 1));
        if ix >= -1 && iy >= -1 && ix < w && iy < h {
            for (ch, o) in opx.iter_mut().enumerate() {
                let top = fetch(ix, iy, ch) * (ONE - wx) + fetch(ix + 1, iy, ch) * wx;
                let bot = fetch(ix, iy + 1, ch) * (ONE - wx) + fetch(ix + 1, iy + 1, ch) * wx;
                let acc = top * (ONE - wy) + bot * wy;
                *o = T::from_i64((acc + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS));
            }
        }
    };
    let steps = BlockSteps::new((step_x, step_y));
    // The interior's 32-bit positions and offsets need interior positions below 2^31 / 1024 px
    // and offsets below 2^32; larger images (never seen in practice) take the checked path.
    let fits32 = d.w < 1 << 20 && d.h < 1 << 20 && u32::try_from(v.len()).is_ok();
    let mut out = vec![T::default(); v.len()];
    for (y, orow) in out.chunks_exact_mut(rl).enumerate() {
        let vv = y as f64 - cy;
        let (Some(fx0), Some(fy0)) = (
            fixed(a[0][0] * -cx + a[0][1] * vv + cx + t.0),
            fixed(a[1][0] * -cx + a[1][1] * vv + cy + t.1),
        ) else {
            continue;
        };
        // Positions beyond ±2^30 px cannot be stepped exactly; such rows stay 0.
        let end_x = fx0.saturating_add(step_x.saturating_mul(d.w as i64));
        let end_y = fy0.saturating_add(step_y.saturating_mul(d.w as i64));
        let limit = 1i64 << (30 + STEP_BITS);
        if [fx0, fy0, end_x, end_y].iter().any(|p| p.abs() >= limit) {
            continue;
        }
        let (fx0, fy0) = (fx0 + half, fy0 + half);
        // Tap column / row of output pixel x (at 1/1024 px), exactly as stepping gives them.
        let qx = |x: usize| (fx0 + step_x * x as i64) >> shift;
        let qy = |x: usize| (fy0 + step_y * x as i64) >> shift;
        // Pixels whose taps all lie inside (`x0..x1`) and those with a tap inside (`t0..t1`).
        let run = |lo_x: i64, hi_x: i64, lo_y: i64, hi_y: i64| {
            let (ax, bx) = tap_run(d.w, fx0, step_x, lo_x, hi_x);
            let (ay, by) = tap_run(d.w, fy0, step_y, lo_y, hi_y);
            (ax.max(ay), bx.min(by))
        };
        let (t0, t1) = run(-1, w, -1, h);
        let (x0, x1) = run(0, w - 1, 0, h - 1);
        let (x0, x1, t0, t1) = match (t0 < t1, x0 < x1) {
            (false, _) => (d.w, d.w, d.w, d.w),
            (true, true) if fits32 => (x0, x1, t0, t1),
            (true, _) => (t1, t1, t0, t1),
        };
        let (left, rest) = orow.split_at_mut(x0 * C);
        let (mid, right) = rest.split_at_mut((x1 - x0) * C);
        let right = &mut right[..(t1 - x1) * C];
        for (x, opx) in left.chunks_exact_mut(C).enumerate().skip(t0) {
            border(opx, qx(x), qy(x));
        }
        if !mid.is_empty() {
            vectorized(InteriorRun {
                v,
                rl,
                c: C,
                out: mid,
                start: (fx0 + step_x * x0 as i64, fy0 + step_y * x0 as i64),
                step: (step_x, step_y),
                steps: &steps,
            });
        }
        for (x, opx) in right.chunks_exact_mut(C).enumerate() {
            border(opx, qx(x1 + x), qy(x1 + x));
        }
    }
    out
}

/// Pixels per block of the interior loop (gray; 128 is about 1.1x faster than 64 on the gray
/// benchmarks).
const BLOCK: usize = 128;
/// Pixels per block for RGB (three samples per pixel; 64 was as fast or faster than 128).
const RGB_BLOCK: usize = 64;

/// `k·step` for the pixels `k` of a block, split at 1/1024 px (bit 22 of the 32.32 fixed
/// point) into a high part (`>> 22`, wrapped to 32 bits) and the low 22 bits, so that a
/// block's positions are 32-bit additions: `(f + k·step) >> 22 = (f >> 22) + hi[k] +
/// ((f mod 2^22 + lo[k]) >> 22)`, exact modulo 2^32 and so exact for interior positions
/// (`< 2^31`). Built once per warp (the vectorised i64 products it replaces cost a fifth of
/// the interior loop).
struct BlockSteps {
    hi: [[i32; BLOCK]; 2],
    lo: [[i32; BLOCK]; 2],
}

impl BlockSteps {
    fn new(step: (i64, i64)) -> Self {
        let shift = STEP_BITS - FRAC_BITS;
        let mask = (1i64 << shift) - 1;
        let mut t = BlockSteps {
            hi: [[0; BLOCK]; 2],
            lo: [[0; BLOCK]; 2],
        };
        for (axis, s) in [step.0, step.1].into_iter().enumerate() {
            for k in 0..BLOCK {
                let d = s.wrapping_mul(k as i64);
                t.hi[axis][k] = (d >> shift) as i32;
                t.lo[axis][k] = (d & mask) as i32;
            }
        }
        t
    }
}

vectorized_job! {
    /// The interior run of one row (every pixel's four taps inside the image), pixel `k` of
    /// the run at the stepped position `(fx + k·step_x, fy + k·step_y)` (rounding offset
    /// included). In blocks of [`BLOCK`] pixels ([`RGB_BLOCK`] for 8-bit RGB): tap offsets and
    /// weights (a vectorised loop, [`block_positions`]), the taps of every pixel gathered into
    /// planes (a scalar loop), then the blend (a vectorised loop).
    struct InteriorRun<'a, T: Sample> {
        v: &'a [T],
        rl: usize,
        c: usize,
        out: &'a mut [T],
        start: (i64, i64),
        step: (i64, i64),
        steps: &'a BlockSteps,
    } -> () {
        let run = Run { rl, start, step, steps };
        match c {
            1 => interior_run::<T, 1>(v, out, run),
            _ => interior_run::<T, 3>(v, out, run),
        }
    }
}

/// Where an interior run starts and how it steps (see [`InteriorRun`]).
#[derive(Clone, Copy)]
struct Run<'a> {
    rl: usize,
    start: (i64, i64),
    step: (i64, i64),
    steps: &'a BlockSteps,
}

/// The gathers below check each pixel's tap offset once, against the last offset whose taps
/// are inside (`assert!`, never taken for an interior run). From that one check the compiler
/// drops the bounds checks of the reads, and the panic path keeps the loop scalar: without a
/// check it is vectorised into lane-by-lane inserts, 1.5x slower than scalar loads.
#[inline(always)]
fn interior_run<T: Sample, const C: usize>(v: &[T], out: &mut [T], run: Run) {
    // 8-bit images and 16-bit gray read the two adjacent taps of a source row as one word.
    if let (Some(v), Some(out)) = (T::bytes(v), T::bytes_mut(out)) {
        return match C {
            1 => interior_run_gray8(v, out, run),
            _ => interior_run_rgb8(v, out, run),
        };
    }
    if let (1, Some(v), Some(out)) = (C, T::words(v), T::words_mut(out)) {
        return interior_run_gray16(v, out, run);
    }
    // The top taps of a pixel at offset `i` are `top_rows[i..i + 2C]`, the bottom ones the same
    // range of `bot_rows`.
    let m = v.len() - run.rl;
    let (top_rows, bot_rows) = (&v[..m], &v[run.rl..]);
    let last = m - 2 * C;
    let mut idx = [0u32; BLOCK];
    let mut wx = [0u32; BLOCK * 3];
    let mut wy = [0u32; BLOCK * 3];
    let mut taps = [[T::default(); BLOCK * 3]; 4];
    for (b, ob) in out.chunks_mut(BLOCK * C).enumerate() {
        let n = ob.len() / C;
        let (idx, wx, wy) = (&mut idx[..n], &mut wx[..n * C], &mut wy[..n * C]);
        block_positions::<C>(idx, wx, wy, run, b * BLOCK);
        let [t00, t01, t10, t11] = &mut taps;
        let planes = t00[..n * C]
            .chunks_exact_mut(C)
            .zip(t01[..n * C].chunks_exact_mut(C))
            .zip(
                t10[..n * C]
                    .chunks_exact_mut(C)
                    .zip(t11[..n * C].chunks_exact_mut(C)),
            );
        for (&i, ((a, b), (c, d))) in idx.iter().zip(planes) {
            let i = i as usize;
            assert!(i <= last, "interior taps");
            let (top, bot) = (&top_rows[i..i + 2 * C], &bot_rows[i..i + 2 * C]);
            a.copy_from_slice(&top[..C]);
            b.copy_from_slice(&top[C..]);
            c.copy_from_slice(&bot[..C]);
            d.copy_from_slice(&bot[C..]);
        }
        let m = n * C;
        let taps = (t00[..m].iter().zip(&t01[..m])).zip(t10[..m].iter().zip(&t11[..m]));
        for ((o, ((&a, &b), (&c, &d))), (&wx, &wy)) in
            ob.iter_mut().zip(taps).zip(wx.iter().zip(wy.iter()))
        {
            *o = T::bilerp([a, b, c, d], wx, wy);
        }
    }
}

/// The tap offsets (`idx`, top-left tap of each pixel) and weights (`wx`, `wy`, repeated for
/// each of the `C` channels) of the pixels `first..first + idx.len()` of an interior run: a
/// vectorised loop of 32-bit additions ([`BlockSteps`]), offsets wrapping in `u32` (exact, as
/// the warp only takes this path for buffers shorter than 2^32).
#[inline(always)]
fn block_positions<const C: usize>(
    idx: &mut [u32],
    wx: &mut [u32],
    wy: &mut [u32],
    run: Run,
    first: usize,
) {
    let shift = STEP_BITS - FRAC_BITS;
    let mask = (1i64 << shift) - 1;
    let (step_x, step_y) = run.step;
    let bx = run.start.0.wrapping_add(step_x.wrapping_mul(first as i64));
    let by = run.start.1.wrapping_add(step_y.wrapping_mul(first as i64));
    let (hx, lx) = ((bx >> shift) as i32, (bx & mask) as i32);
    let (hy, ly) = ((by >> shift) as i32, (by & mask) as i32);
    let n = idx.len();
    let t = run.steps;
    let steps_x = t.hi[0][..n].iter().zip(&t.lo[0][..n]);
    let steps_y = t.hi[1][..n].iter().zip(&t.lo[1][..n]);
    let rl = run.rl as u32;
    for ((i, (wxk, wyk)), ((&hix, &lox), (&hiy, &loy))) in idx
        .iter_mut()
        .zip(wx.chunks_exact_mut(C).zip(wy.chunks_exact_mut(C)))
        .zip(steps_x.zip(steps_y))
    {
        let qx = hx.wrapping_add(hix).wrapping_add((lx + lox) >> shift);
        let qy = hy.wrapping_add(hiy).wrapping_add((ly + loy) >> shift);
        *i = ((qy >> FRAC_BITS) as u32)
            .wrapping_mul(rl)
            .wrapping_add(((qx >> FRAC_BITS) as u32).wrapping_mul(C as u32));
        wxk.fill((qx & (ONE as i32 - 1)) as u32);
        wyk.fill((qy & (ONE as i32 - 1)) as u32);
    }
}

/// [`interior_run`] for 8-bit gray: the two taps of each source row are adjacent bytes, read
/// as one `u16` and split again in the vectorised blend. (Packing a pixel's four taps into one
/// `u32`, one store instead of two, is 1.14x slower in all.)
#[inline(always)]
fn interior_run_gray8(v: &[u8], out: &mut [u8], run: Run) {
    let m = v.len() - run.rl;
    let (top_rows, bot_rows) = (&v[..m], &v[run.rl..]);
    let last = m - 2;
    let mut idx = [0u32; BLOCK];
    let mut wx = [0u32; BLOCK];
    let mut wy = [0u32; BLOCK];
    let mut top = [0u16; BLOCK];
    let mut bot = [0u16; BLOCK];
    for (b, ob) in out.chunks_mut(BLOCK).enumerate() {
        let n = ob.len();
        let (idx, wx, wy) = (&mut idx[..n], &mut wx[..n], &mut wy[..n]);
        block_positions::<1>(idx, wx, wy, run, b * BLOCK);
        for (&i, (t, u)) in idx.iter().zip(top[..n].iter_mut().zip(&mut bot[..n])) {
            let i = i as usize;
            assert!(i <= last, "interior taps");
            *t = u16::from_le_bytes(top_rows[i..i + 2].try_into().expect("two taps"));
            *u = u16::from_le_bytes(bot_rows[i..i + 2].try_into().expect("two taps"));
        }
        for ((o, (&t, &u)), (&wx, &wy)) in ob
            .iter_mut()
            .zip(top[..n].iter().zip(&bot[..n]))
            .zip(wx.iter().zip(wy.iter()))
        {
            let ([p00, p01], [p10, p11]) = (t.to_le_bytes(), u.to_le_bytes());
            *o = u8::bilerp([p00, p01, p10, p11], wx, wy);
        }
    }
}

/// [`interior_run`] for 16-bit gray: the two taps of each source row are read as one `u32`
/// (two loads and two stores per pixel instead of four of each).
#[inline(always)]
fn interior_run_gray16(v: &[u16], out: &mut [u16], run: Run) {
    let m = v.len() - run.rl;
    let (top_rows, bot_rows) = (&v[..m], &v[run.rl..run.rl + m]);
    let last = m - 2;
    let mut idx = [0u32; BLOCK];
    let mut wx = [0u32; BLOCK];
    let mut wy = [0u32; BLOCK];
    let mut top = [0u32; BLOCK];
    let mut bot = [0u32; BLOCK];
    for (b, ob) in out.chunks_mut(BLOCK).enumerate() {
        let n = ob.len();
        let (idx, wx, wy) = (&mut idx[..n], &mut wx[..n], &mut wy[..n]);
        block_positions::<1>(idx, wx, wy, run, b * BLOCK);
        for (&i, (t, u)) in idx.iter().zip(top[..n].iter_mut().zip(&mut bot[..n])) {
            let i = i as usize;
            assert!(i <= last, "interior taps");
            *t = top_rows[i] as u32 | (top_rows[i + 1] as u32) << 16;
            *u = bot_rows[i] as u32 | (bot_rows[i + 1] as u32) << 16;
        }
        for ((o, (&t, &u)), (&wx, &wy)) in ob
            .iter_mut()
            .zip(top[..n].iter().zip(&bot[..n]))
            .zip(wx.iter().zip(wy.iter()))
        {
            let p = [t as u16, (t >> 16) as u16, u as u16, (u >> 16) as u16];
            *o = u16::bilerp(p, wx, wy);
        }
    }
}

/// [`interior_run`] for 8-bit RGB: the two taps of each source row are six adjacent bytes,
/// read as one `u64` (the bottom row's from two bytes earlier, so no read passes the end of
/// the buffer) and written to the tap planes as overlapping `u32`s (each pixel's fourth byte
/// is overwritten by the next pixel's): two loads and four stores per pixel instead of twelve
/// of each.
#[inline(always)]
fn interior_run_rgb8(v: &[u8], out: &mut [u8], run: Run) {
    // The eight bytes from the top-left tap at `i` are `top_rows[i..i + 8]`, the eight that end
    // with the bottom-right tap `bot_rows[i..i + 8]` (interior: `i + rl + 6 <= v.len()`).
    let m = v.len() + 2 - run.rl;
    let (top_rows, bot_rows) = (&v[..m], &v[run.rl - 2..]);
    let last = m - 8;
    let mut idx = [0u32; RGB_BLOCK];
    let mut wx = [0u32; RGB_BLOCK * 3];
    let mut wy = [0u32; RGB_BLOCK * 3];
    let mut taps = [[0u8; RGB_BLOCK * 3 + 1]; 4];
    for (b, ob) in out.chunks_mut(RGB_BLOCK * 3).enumerate() {
        let n = ob.len() / 3;
        let (idx, wx, wy) = (&mut idx[..n], &mut wx[..n * 3], &mut wy[..n * 3]);
        block_positions::<3>(idx, wx, wy, run, b * RGB_BLOCK);
        let [t00, t01, t10, t11] = &mut taps;
        for (k, &i) in idx.iter().enumerate() {
            let i = i as usize;
            assert!(i <= last, "interior taps");
            let top = u64::from_le_bytes(top_rows[i..i + 8].try_into().expect("eight bytes"));
            let bot = u64::from_le_bytes(bot_rows[i..i + 8].try_into().expect("eight bytes"));
            let bot = bot >> 16;
            let at = 3 * k..3 * k + 4;
            t00[at.clone()].copy_from_slice(&(top as u32).to_le_bytes());
            t01[at.clone()].copy_from_slice(&((top >> 24) as u32).to_le_bytes());
            t10[at.clone()].copy_from_slice(&(bot as u32).to_le_bytes());
            t11[at].copy_from_slice(&((bot >> 24) as u32).to_le_bytes());
        }
        let m = n * 3;
        let taps = (t00[..m].iter().zip(&t01[..m])).zip(t10[..m].iter().zip(&t11[..m]));
        for ((o, ((&a, &b), (&c, &d))), (&wx, &wy)) in
            ob.iter_mut().zip(taps).zip(wx.iter().zip(wy.iter()))
        {
            *o = u8::bilerp([a, b, c, d], wx, wy);
        }
    }
}

/// The run `[a, b)` of `x` in `[0, n)` whose tap index `(f + step·x) >> 32` lies in
/// `[lo, hi)`; `a >= b` when there is none. The index is monotone in `x`, so each end is the
/// first `x` where a threshold is crossed, searched from a floating-point estimate of the
/// crossing (exact whatever the estimate: it only saves steps).
fn tap_run(n: usize, f: i64, step: i64, lo: i64, hi: i64) -> (usize, usize) {
    let tap = |x: usize| (f + step * x as i64) >> STEP_BITS;
    // Estimated x where the tap index reaches `t` (saturating casts: NaN and negatives give 0).
    let guess =
        |t: i64| ((t as f64 * 2f64.powi(STEP_BITS as i32) - f as f64) / step as f64) as usize;
    if step >= 0 {
        let a = first_true(n, guess(lo), |x| tap(x) >= lo);
        let b = first_true(n, guess(hi), |x| tap(x) >= hi);
        (a, b)
    } else {
        let a = first_true(n, guess(hi), |x| tap(x) < hi);
        let b = first_true(n, guess(lo), |x| tap(x) < lo);
        (a, b)
    }
}

/// The first `x` in `[0, n)` where `p` holds (`n` if none), for `p` false then true: galloping
/// from `guess` to bracket the answer, then bisecting the bracket.
fn first_true(n: usize, guess: usize, p: impl Fn(usize) -> bool) -> usize {
    if n == 0 {
        return 0;
    }
    let g = guess.min(n - 1);
    // The answer lies in [lo, hi].
    let (mut lo, mut hi) = (0, n);
    if p(g) {
        hi = g;
        let mut d = 1;
        while d <= hi {
            if p(hi - d) {
                hi -= d;
                d *= 2;
            } else {
                lo = hi - d + 1;
                break;
            }
        }
    } else {
        lo = g + 1;
        let mut d = 1;
        while lo + d - 1 < n {
            if p(lo + d - 1) {
                hi = lo + d - 1;
                break;
            }
            lo += d;
            d *= 2;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if p(mid) { hi = mid } else { lo = mid + 1 }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The affine warp before the interior/border split (checked path per pixel, i64
    /// arithmetic): the split must give the same bytes.
    fn reference<T: Sample, const C: usize>(
        v: &[T],
        d: Dims,
        a: [[f64; 2]; 2],
        t: (f64, f64),
    ) -> Vec<T> {
        let (w, h) = (d.w as i64, d.h as i64);
        let rl = d.row_len();
        let (cx, cy) = ((d.w as f64 - 1.0) / 2.0, (d.h as f64 - 1.0) / 2.0);
        let scale = (1u64 << STEP_BITS) as f64;
        let fixed = |x: f64| -> Option<i64> {
            let f = (x * scale).round();
            (f.abs() < 9.0e18).then_some(f as i64)
        };
        let half = 1i64 << (STEP_BITS - FRAC_BITS - 1);
        let shift = STEP_BITS - FRAC_BITS;
        let (Some(step_x), Some(step_y)) = (fixed(a[0][0]), fixed(a[1][0])) else {
            return vec![T::default(); v.len()];
        };
        let fetch = |x: i64, y: i64, ch: usize| -> i64 {
            if x >= 0 && x < w && y >= 0 && y < h {
                v[y as usize * rl + x as usize * C + ch].to_u32() as i64
            } else {
                0
            }
        };
        let mut out = vec![T::default(); v.len()];
        for (y, orow) in out.chunks_exact_mut(rl).enumerate() {
            let vv = y as f64 - cy;
            let (Some(mut fx), Some(mut fy)) = (
                fixed(a[0][0] * -cx + a[0][1] * vv + cx + t.0),
                fixed(a[1][0] * -cx + a[1][1] * vv + cy + t.1),
            ) else {
                continue;
            };
            // Positions beyond ±2^30 px cannot be stepped exactly; such rows stay 0.
            let end_x = fx.saturating_add(step_x.saturating_mul(d.w as i64));
            let end_y = fy.saturating_add(step_y.saturating_mul(d.w as i64));
            let limit = 1i64 << (30 + STEP_BITS);
            if [fx, fy, end_x, end_y].iter().any(|p| p.abs() >= limit) {
                continue;
            }
            let (wm, hm) = ((w - 1) as u64, (h - 1) as u64);
            for opx in orow.chunks_exact_mut(C) {
                let qx = (fx + half) >> shift;
                let qy = (fy + half) >> shift;
                fx += step_x;
                fy += step_y;
                let (ix, wx) = (qx >> FRAC_BITS, qx & (ONE - 1));
                let (iy, wy) = (qy >> FRAC_BITS, qy & (ONE - 1));
                // Interior (all four taps inside): one unsigned compare per axis covers both ends.
                if (ix as u64) < wm && (iy as u64) < hm {
                    let i00 = iy as usize * rl + ix as usize * C;
                    let top = &v[i00..i00 + 2 * C];
                    let bot = &v[i00 + rl..i00 + rl + 2 * C];
                    let (wx0, wy0) = (ONE - wx, ONE - wy);
                    for (ch, o) in opx.iter_mut().enumerate() {
                        let t = top[ch].to_u32() as i64 * wx0 + top[C + ch].to_u32() as i64 * wx;
                        let b = bot[ch].to_u32() as i64 * wx0 + bot[C + ch].to_u32() as i64 * wx;
                        let acc = t * wy0 + b * wy + (1 << (2 * FRAC_BITS - 1));
                        *o = T::from_u32_trunc((acc >> (2 * FRAC_BITS)) as u32);
                    }
                } else if ix >= -1 && iy >= -1 && ix < w && iy < h {
                    for (ch, o) in opx.iter_mut().enumerate() {
                        let top = fetch(ix, iy, ch) * (ONE - wx) + fetch(ix + 1, iy, ch) * wx;
                        let bot =
                            fetch(ix, iy + 1, ch) * (ONE - wx) + fetch(ix + 1, iy + 1, ch) * wx;
                        let acc = top * (ONE - wy) + bot * wy;
                        *o = T::from_i64((acc + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS));
                    }
                }
            }
        }
        out
    }

    fn samples<T: Sample>(n: usize, seed: u64, f: impl Fn(u64) -> T) -> Vec<T> {
        // A cheap deterministic hash: structure-free values in every position.
        (0..n as u64)
            .map(|i| f((i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17))
            .collect()
    }

    fn check<T: Sample + std::fmt::Debug>(v: &[T], d: Dims, a: [[f64; 2]; 2], t: (f64, f64)) {
        let (new, old) = match d.c {
            1 => (
                warp_affine::<T, 1>(v, d, a, t),
                reference::<T, 1>(v, d, a, t),
            ),
            _ => (
                warp_affine::<T, 3>(v, d, a, t),
                reference::<T, 3>(v, d, a, t),
            ),
        };
        assert!(new == old, "{d:?} a={a:?} t={t:?}");
    }

    #[test]
    fn split_matches_the_checked_path_on_edge_cases() {
        type Case = ([[f64; 2]; 2], (f64, f64));
        let cases: &[Case] = &[
            ([[1.0, 0.0], [0.0, 1.0]], (0.0, 0.0)),
            ([[1.0, 0.0], [0.0, 1.0]], (0.5, -0.25)),
            ([[1.0, 0.0], [0.0, 1.0]], (-1000.0, 3.0)),
            ([[-1.0, 0.0], [0.0, -1.0]], (0.0, 0.0)),
            ([[0.0, -1.0], [1.0, 0.0]], (0.0, 0.0)),
            ([[0.25, 0.0], [0.0, 0.25]], (0.0, 0.0)),
            ([[4.0, 0.0], [0.0, 4.0]], (0.3, 0.7)),
            ([[0.98, -0.17], [0.17, 0.98]], (0.0, 0.0)),
            ([[1e-12, 0.0], [0.0, 1.0]], (0.0, 0.0)),
            ([[1e12, 0.0], [0.0, 1.0]], (0.0, 0.0)),
        ];
        // 150, 200 and 300 px rows span several interior blocks.
        let sizes = [
            (1, 1),
            (2, 1),
            (1, 3),
            (2, 2),
            (7, 5),
            (33, 17),
            (150, 9),
            (200, 70),
            (300, 5),
        ];
        for &(w, h) in &sizes {
            for c in [1, 3] {
                let d = Dims { w, h, c };
                let v8 = samples(w * h * c, 1, |x| x as u8);
                let v16 = samples(w * h * c, 2, |x| x as u16);
                for &(a, t) in cases {
                    check(&v8, d, a, t);
                    check(&v16, d, a, t);
                }
            }
        }
    }

    #[test]
    fn rows_of_2_pow_20_pixels_take_the_checked_path() {
        // Too wide for the interior's 32-bit positions: every pixel goes through the
        // checked path, with the same bytes.
        let d = Dims {
            w: 1 << 20,
            h: 2,
            c: 1,
        };
        let v = samples(d.w * d.h, 3, |x| x as u8);
        check(&v, d, [[1.0, 0.0], [0.0, 1.0]], (0.5, 0.25));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn split_matches_the_checked_path(
            w in 1usize..40, h in 1usize..40, rgb in any::<bool>(), wide in any::<bool>(),
            deg in -180.0f64..180.0, zoom in 0.25f64..4.0,
            tx in -50.0f64..50.0, ty in -50.0f64..50.0, seed in any::<u64>(),
        ) {
            let d = Dims { w, h, c: if rgb { 3 } else { 1 } };
            let (s, c) = deg.to_radians().sin_cos();
            let a = [[c / zoom, -s / zoom], [s / zoom, c / zoom]];
            if wide {
                check(&samples(w * h * d.c, seed, |x| x as u16), d, a, (tx, ty));
            } else {
                check(&samples(w * h * d.c, seed, |x| x as u8), d, a, (tx, ty));
            }
        }
    }
}
