//! Separable filters: Gaussian weights and radius, the generic float convolution, and the
//! symmetric-kernel blur (float on every depth, 16-bit fixed point for 8-bit images).

use super::{Dims, RowPad, Sample, reflect101, vectorized, vectorized_job};

/// Normalised 1-D Gaussian weights of radius `r`.
pub(crate) fn gaussian_weights(sigma: f64, r: usize) -> Vec<f32> {
    let w: Vec<f64> = (0..=2 * r)
        .map(|i| {
            let d = i as f64 - r as f64;
            (-(d * d) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|x| (x / sum) as f32).collect()
}

/// Separable convolution of an interleaved `f32` plane with reflect-101 borders. `kx`/`ky` have
/// odd lengths, centred. Accumulation order is fixed (tap by tap), so results are bit-exact.
pub(crate) fn convolve_separable(src: &[f32], d: Dims, kx: &[f32], ky: &[f32]) -> Vec<f32> {
    let rl = d.row_len();
    let rx = kx.len() / 2;
    let ry = ky.len() / 2;
    // Horizontal pass.
    let mut tmp = vec![0f32; src.len()];
    let mut padded = vec![0f32; (d.w + 2 * rx) * d.c];
    for (row, out) in src.chunks_exact(rl).zip(tmp.chunks_exact_mut(rl)) {
        for (px, chunk) in padded.chunks_exact_mut(d.c).enumerate() {
            let sx = reflect101(px as isize - rx as isize, d.w);
            chunk.copy_from_slice(&row[sx * d.c..sx * d.c + d.c]);
        }
        for (k, &wk) in kx.iter().enumerate() {
            let window = &padded[k * d.c..k * d.c + rl];
            for (o, &s) in out.iter_mut().zip(window) {
                *o += wk * s;
            }
        }
    }
    // Vertical pass.
    let mut dst = vec![0f32; src.len()];
    for (y, out) in dst.chunks_exact_mut(rl).enumerate() {
        for (k, &wk) in ky.iter().enumerate() {
            let sy = reflect101(y as isize + k as isize - ry as isize, d.h);
            let row = &tmp[sy * rl..sy * rl + rl];
            for (o, &s) in out.iter_mut().zip(row) {
                *o += wk * s;
            }
        }
    }
    dst
}

/// Gaussian blur of a sample buffer (OpenCV's kernel size rule: `ksize = round(2·k·σ + 1) | 1`
/// with k = 3 for 8-bit and 4 for 16-bit samples; reflect-101 borders).
pub(crate) fn gaussian_blur_samples<T: Sample>(v: &[T], d: Dims, sigma: f64) -> Vec<T> {
    let k = gaussian_weights(sigma, gaussian_radius::<T>(sigma));
    vectorized(Separable { v, d, k: &k })
}

/// The `gaussian_blur` kernel (v3) on 8-bit samples: 16-bit fixed point
/// ([`symmetric_separable_u8_fixed`]); 16-bit samples use [`gaussian_blur_samples`].
pub(crate) fn gaussian_blur_u8(v: &[u8], d: Dims, sigma: f64) -> Vec<u8> {
    let k = gaussian_weights(sigma, gaussian_radius::<u8>(sigma));
    symmetric_separable_u8_fixed(v, d, &k).unwrap_or_else(|| gaussian_blur_samples(v, d, sigma))
}

vectorized_job! {
    struct Separable<'a, T: Sample> { v: &'a [T], d: Dims, k: &'a [f32] } -> Vec<T> {
        symmetric_separable(v, d, k)
    }
}

/// Rows per block of the vertical pass of [`symmetric_separable`] (kept in L1).
const BLOCK: usize = 256;

/// Separable convolution with one symmetric odd kernel `k` on both axes, reflect-101 borders,
/// rounded back to the sample type. Symmetric taps are paired (`k[r−j]·(a + b)`) and summed in
/// a fixed order, so the result is the same on every machine and vector width; the loops are
/// plain slices so they autovectorise.
#[inline(always)]
pub(crate) fn symmetric_separable<T: Sample>(v: &[T], d: Dims, k: &[f32]) -> Vec<T> {
    let r = k.len() / 2;
    let (rl, c) = (d.row_len(), d.c);
    // Horizontal pass into an f32 image.
    let mut tmp = vec![0f32; v.len()];
    let mut padded = vec![0f32; (d.w + 2 * r) * c];
    let pad = RowPad::new(d, r);
    for (row, out) in v.chunks_exact(rl).zip(tmp.chunks_exact_mut(rl)) {
        pad.fill(row, &mut padded, |s| s.to_f32());
        let centre = &padded[r * c..r * c + rl];
        let k0 = k[r];
        for (o, &s) in out.iter_mut().zip(centre) {
            *o = k0 * s;
        }
        for j in 1..=r {
            let kj = k[r - j];
            let a = &padded[(r - j) * c..(r - j) * c + rl];
            let b = &padded[(r + j) * c..(r + j) * c + rl];
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o += kj * (x + y);
            }
        }
    }
    // Vertical pass, in column blocks so the accumulator stays in L1.
    let mut dst = vec![T::default(); v.len()];
    let mut acc = [0f32; BLOCK];
    let row = |y: isize| -> &[f32] {
        let sy = reflect101(y, d.h);
        &tmp[sy * rl..sy * rl + rl]
    };
    for (y, orow) in dst.chunks_exact_mut(rl).enumerate() {
        let y = y as isize;
        let centre = row(y);
        let pairs: Vec<(&[f32], &[f32], f32)> = (1..=r)
            .map(|j| (row(y - j as isize), row(y + j as isize), k[r - j]))
            .collect();
        for (bi, oblock) in orow.chunks_mut(BLOCK).enumerate() {
            let lo = bi * BLOCK;
            let n = oblock.len();
            let acc = &mut acc[..n];
            for (a, &s) in acc.iter_mut().zip(&centre[lo..lo + n]) {
                *a = k[r] * s;
            }
            for &(above, below, kj) in &pairs {
                for ((a, &x), &y) in acc
                    .iter_mut()
                    .zip(&above[lo..lo + n])
                    .zip(&below[lo..lo + n])
                {
                    *a += kj * (x + y);
                }
            }
            for (o, &a) in oblock.iter_mut().zip(acc.iter()) {
                *o = T::from_f32_simd(a);
            }
        }
    }
    dst
}

/// Weights of `k` quantised to integers summing to `one` (nearest, the centre absorbing the
/// remainder), or `None` when the centre would not fit in 16 bits.
fn quantised_weights(k: &[f32], one: u32) -> Option<Vec<u16>> {
    let r = k.len() / 2;
    let mut q: Vec<u32> = k
        .iter()
        .map(|&w| (w as f64 * one as f64).round() as u32)
        .collect();
    let sides: u32 = (1..=r).map(|j| 2 * q[r - j]).sum();
    q[r] = one.checked_sub(sides)?;
    q.into_iter().map(|w| u16::try_from(w).ok()).collect()
}

/// 8-bit [`symmetric_separable`] in 16-bit fixed point, as OpenCV's 8-bit separable filters
/// do: the horizontal pass sums `sample · w` with weights in 1/256 (exact in 16 bits: at most
/// 255 · 256), the vertical pass sums `⌊h · w / 65536⌋` with weights in 1/65536 (`vpmulhuw`),
/// and the result is rounded half up from 1/256. Twice the lanes of the f32 form; within a level
/// of it. `None` when a weight does not fit (then the f32 form runs).
fn symmetric_separable_u8_fixed(v: &[u8], d: Dims, k: &[f32]) -> Option<Vec<u8>> {
    let (hq, vq) = (quantised_weights(k, 256)?, quantised_weights(k, 65536)?);
    Some(vectorized(FixedSeparable8 {
        v,
        d,
        hq: &hq,
        vq: &vq,
    }))
}

vectorized_job! {
    struct FixedSeparable8<'a> { v: &'a [u8], d: Dims, hq: &'a [u16], vq: &'a [u16] } -> Vec<u8> {
        let r = hq.len() / 2;
        let (rl, c) = (d.row_len(), d.c);
        // Horizontal pass into a 16-bit image (values in 1/256).
        let mut tmp = vec![0u16; v.len()];
        let mut padded = vec![0u16; (d.w + 2 * r) * c];
        let pad = RowPad::new(d, r);
        for (row, out) in v.chunks_exact(rl).zip(tmp.chunks_exact_mut(rl)) {
            pad.fill(row, &mut padded, |s| s as u16);
            let k0 = hq[r];
            for (o, &s) in out.iter_mut().zip(&padded[r * c..r * c + rl]) {
                *o = k0.wrapping_mul(s);
            }
            for j in 1..=r {
                let kj = hq[r - j];
                let a = &padded[(r - j) * c..(r - j) * c + rl];
                let b = &padded[(r + j) * c..(r + j) * c + rl];
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = o.wrapping_add(kj.wrapping_mul(x + y));
                }
            }
        }
        fixed_vertical(&tmp, d, vq)
    }
}

/// The vertical pass of [`FixedSeparable8`]:
/// `out = (Σ_j ⌊h[y + j − r]·vq[j] / 65536⌋ + 128) >> 8` (the sum of floors never exceeds
/// 255 · 256). On AVX-512BW CPUs 32 outputs at a time
/// with `vpmulhuw` through pulp's `V4` token (the autovectoriser widens this pattern to 32-bit
/// lanes and back); elsewhere the same integers one by one.
fn fixed_vertical(tmp: &[u16], d: Dims, vq: &[u16]) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        return pulp::Simd::vectorize(simd, VerticalV4 { simd, tmp, d, vq });
    }
    fixed_vertical_scalar(tmp, d, vq)
}

/// `taps[j]` = the row read by vertical tap `j` for output row `y` (reflect-101).
#[inline(always)]
fn vertical_rows(tmp: &[u16], d: Dims, r: usize, y: usize) -> impl Iterator<Item = &[u16]> {
    let rl = d.row_len();
    (0..=2 * r).map(move |j| {
        let sy = reflect101(y as isize + j as isize - r as isize, d.h);
        &tmp[sy * rl..sy * rl + rl]
    })
}

/// One output sample of the vertical pass: `(Σ_j ⌊rows[j][x]·vq[j] / 65536⌋ + 128) >> 8`.
#[inline(always)]
fn vertical_at(rows: &[&[u16]], vq: &[u16], x: usize) -> u8 {
    let a = rows.iter().zip(vq).fold(0u16, |a, (src, &w)| {
        a.wrapping_add(((src[x] as u32 * w as u32) >> 16) as u16)
    });
    ((a as u32 + 128) >> 8) as u8
}

fn fixed_vertical_scalar(tmp: &[u16], d: Dims, vq: &[u16]) -> Vec<u8> {
    let (r, rl) = (vq.len() / 2, d.row_len());
    let mut dst = vec![0u8; tmp.len()];
    for (y, orow) in dst.chunks_exact_mut(rl).enumerate() {
        let rows: Vec<&[u16]> = vertical_rows(tmp, d, r, y).collect();
        for (x, o) in orow.iter_mut().enumerate() {
            *o = vertical_at(&rows, vq, x);
        }
    }
    dst
}

#[cfg(target_arch = "x86_64")]
struct VerticalV4<'a> {
    simd: pulp::x86::V4,
    tmp: &'a [u16],
    d: Dims,
    vq: &'a [u16],
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for VerticalV4<'_> {
    type Output = Vec<u8>;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<u8> {
        use core::arch::x86_64::{__m256i, __m512i};
        let Self { simd, tmp, d, vq } = self;
        let (bw, f) = (simd.avx512bw, simd.avx512f);
        let (r, rl) = (vq.len() / 2, d.row_len());
        let weights: Vec<__m512i> = vq.iter().map(|&w| f._mm512_set1_epi16(w as i16)).collect();
        let half = f._mm512_set1_epi16(128);
        let full = rl / 32 * 32;
        let mut dst = vec![0u8; tmp.len()];
        let mut rows: Vec<&[u16]> = Vec::with_capacity(2 * r + 1);
        for (y, orow) in dst.chunks_exact_mut(rl).enumerate() {
            rows.clear();
            rows.extend(vertical_rows(tmp, d, r, y));
            for (ci, o) in orow[..full].chunks_exact_mut(32).enumerate() {
                let lo = ci * 32;
                let mut acc = f._mm512_setzero_si512();
                for (src, &w) in rows.iter().zip(&weights) {
                    let h: [u16; 32] = src[lo..lo + 32].try_into().expect("32 lanes");
                    let h: __m512i = pulp::cast(h);
                    acc = bw._mm512_add_epi16(acc, bw._mm512_mulhi_epu16(h, w));
                }
                let q = bw._mm512_srli_epi16::<8>(bw._mm512_add_epi16(acc, half));
                let bytes: __m256i = bw._mm512_cvtepi16_epi8(q);
                let bytes: [u8; 32] = pulp::cast(bytes);
                o.copy_from_slice(&bytes);
            }
            for (x, o) in orow.iter_mut().enumerate().skip(full) {
                *o = vertical_at(&rows, vq, x);
            }
        }
        dst
    }
}

pub(crate) fn gaussian_radius<T: Sample>(sigma: f64) -> usize {
    let per_side = if T::MAX == 255 { 3.0 } else { 4.0 };
    let ksize = ((sigma * per_side * 2.0 + 1.0).round() as usize) | 1;
    ksize / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::common::{noise, scalar};

    #[test]
    fn fixed_point_gaussian_is_close_to_the_float_one_on_every_path() {
        // Noise is the hardest case for weight quantisation (no smooth regions to cancel in).
        for (w, h, c) in [(67, 23, 1), (31, 17, 3), (300, 2, 1)] {
            let d = Dims { w, h, c };
            let v = noise::<u8>(w * h * c);
            for sigma in [0.3, 0.8, 1.0, 2.0, 5.0] {
                let fixed = gaussian_blur_u8(&v, d, sigma);
                let float = gaussian_blur_samples(&v, d, sigma);
                let diffs: Vec<u32> = fixed
                    .iter()
                    .zip(&float)
                    .map(|(&a, &b)| a.abs_diff(b) as u32)
                    .collect();
                let max = diffs.iter().copied().max().unwrap();
                let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
                eprintln!("{w}x{h}x{c} sigma {sigma}: max {max}, mean {mean:.3}");
                assert!(
                    max <= 2 && mean < 0.3,
                    "{w}x{h}x{c} sigma {sigma}: max {max}, mean {mean}"
                );
                // Dispatched (AVX-512/AVX2) and baseline builds give the same bytes.
                let k = gaussian_weights(sigma, gaussian_radius::<u8>(sigma));
                let (hq, vq) = (
                    quantised_weights(&k, 256).unwrap(),
                    quantised_weights(&k, 65536).unwrap(),
                );
                let job = || FixedSeparable8 {
                    v: &v,
                    d,
                    hq: &hq,
                    vq: &vq,
                };
                assert_eq!(vectorized(job()), scalar(job()));
                assert_eq!(vectorized(job()), fixed);
            }
        }
    }

    #[test]
    fn fixed_vertical_pass_paths_agree() {
        // Horizontal results are at most 255·256; widths with and without a ragged tail.
        for (w, h, c) in [(64, 9, 1), (67, 23, 1), (31, 17, 3), (5, 4, 1)] {
            let d = Dims { w, h, c };
            let tmp: Vec<u16> = noise::<u16>(w * h * c)
                .into_iter()
                .map(|x| x % 65281)
                .collect();
            for sigma in [0.8, 2.0, 5.0] {
                let k = gaussian_weights(sigma, gaussian_radius::<u8>(sigma));
                let vq = quantised_weights(&k, 65536).unwrap();
                assert_eq!(
                    fixed_vertical(&tmp, d, &vq),
                    fixed_vertical_scalar(&tmp, d, &vq),
                    "{w}x{h}x{c} sigma {sigma}"
                );
            }
        }
    }

    #[test]
    fn simd_and_baseline_paths_give_the_same_bytes() {
        // The dispatched path (AVX2 or AVX-512 here) against the baseline build of the same
        // loops: integer and uncontracted float arithmetic must not depend on the vector width.
        let d = Dims { w: 67, h: 23, c: 3 };
        let k = gaussian_weights(2.0, 6);
        let v8 = noise::<u8>(d.w * d.h * d.c);
        let v16 = noise::<u16>(d.w * d.h * d.c);
        let job8 = || Separable { v: &v8, d, k: &k };
        let job16 = || Separable { v: &v16, d, k: &k };
        assert_eq!(vectorized(job8()), scalar(job8()));
        assert_eq!(vectorized(job16()), scalar(job16()));
    }

    #[test]
    fn opencv_kernel_size_rule() {
        // sigma 2: 8-bit ksize 13, 16-bit ksize 17.
        assert_eq!(gaussian_radius::<u8>(2.0), 6);
        assert_eq!(gaussian_radius::<u16>(2.0), 8);
        let k = gaussian_weights(2.0, 6);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(k[0], k[12]);
    }
}
