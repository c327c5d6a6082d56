//! Eight `i32` lanes for the block transforms, two ways: plain arrays (any CPU) and AVX2
//! registers through pulp's safe `V3` token. The transforms in `dct` are written once against
//! [`Lanes`]; the AVX2 path exists because LLVM did not vectorise the array form of a whole
//! block round trip (it spilled and went scalar: 1.06 ms for 512² gray, measured).

use std::ops::{Add, Mul, Sub};

/// The lane operations the block transforms need. Integer only, so both implementations give
/// the same bits.
pub(super) trait Lanes: Copy {
    type R: Copy;
    fn splat(self, x: i32) -> Self::R;
    fn load_array(self, a: [i32; 8]) -> Self::R;
    fn add(self, a: Self::R, b: Self::R) -> Self::R;
    fn sub(self, a: Self::R, b: Self::R) -> Self::R;
    fn mul(self, a: Self::R, b: Self::R) -> Self::R;
    /// Arithmetic shift right by `N`.
    fn sra<const N: i32>(self, a: Self::R) -> Self::R;
    fn sll<const N: i32>(self, a: Self::R) -> Self::R;
    /// Arithmetic shift right by a per-lane count.
    fn srav(self, a: Self::R, n: Self::R) -> Self::R;
    fn abs(self, a: Self::R) -> Self::R;
    /// `a` with the sign of `s` (zero where `s` is zero).
    fn sign(self, a: Self::R, s: Self::R) -> Self::R;
    fn transpose(self, m: [Self::R; 8]) -> [Self::R; 8];
    /// Eight samples minus 128.
    fn load_centred(self, px: &[u8; 8]) -> Self::R;
    /// Eight rows to bytes, saturating to 0..=255.
    fn to_bytes(self, rows: [Self::R; 8]) -> [[u8; 8]; 8];
}

/// A value in lanes with its instruction set, so the transforms read as arithmetic.
#[derive(Clone, Copy)]
pub(super) struct X<L: Lanes> {
    pub(super) l: L,
    pub(super) r: L::R,
}

impl<L: Lanes> X<L> {
    #[inline(always)]
    pub(super) fn new(l: L, r: L::R) -> Self {
        X { l, r }
    }
    #[inline(always)]
    pub(super) fn sra<const N: i32>(self) -> Self {
        X::new(self.l, self.l.sra::<N>(self.r))
    }
    #[inline(always)]
    pub(super) fn sll<const N: i32>(self) -> Self {
        X::new(self.l, self.l.sll::<N>(self.r))
    }
    /// `(x + 2^(N−1)) >> N`: libjpeg's `DESCALE`.
    #[inline(always)]
    pub(super) fn descale<const N: i32>(self) -> Self {
        X::new(self.l, self.l.add(self.r, self.l.splat(1 << (N - 1)))).sra::<N>()
    }
}

/// Eight registers as [`X`]s. Written out, not `array::map`: a closure may stay out of line,
/// and then every intrinsic inside it becomes a call (measured: a quarter of the time).
#[inline(always)]
pub(super) fn wrap<L: Lanes>(l: L, d: [L::R; 8]) -> [X<L>; 8] {
    [
        X::new(l, d[0]),
        X::new(l, d[1]),
        X::new(l, d[2]),
        X::new(l, d[3]),
        X::new(l, d[4]),
        X::new(l, d[5]),
        X::new(l, d[6]),
        X::new(l, d[7]),
    ]
}

/// The registers of eight [`X`]s.
#[inline(always)]
pub(super) fn unwrap<L: Lanes>(x: [X<L>; 8]) -> [L::R; 8] {
    [
        x[0].r, x[1].r, x[2].r, x[3].r, x[4].r, x[5].r, x[6].r, x[7].r,
    ]
}

impl<L: Lanes> Add for X<L> {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        X::new(self.l, self.l.add(self.r, o.r))
    }
}

impl<L: Lanes> Sub for X<L> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        X::new(self.l, self.l.sub(self.r, o.r))
    }
}

impl<L: Lanes> Mul<i32> for X<L> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, k: i32) -> Self {
        X::new(self.l, self.l.mul(self.r, self.l.splat(k)))
    }
}

/// Plain arrays: the path for CPUs without AVX2 (and the tests' reference path).
#[derive(Clone, Copy)]
pub(super) struct Scalar;

#[inline(always)]
fn zip(a: [i32; 8], b: [i32; 8], f: fn(i32, i32) -> i32) -> [i32; 8] {
    let mut r = [0; 8];
    for i in 0..8 {
        r[i] = f(a[i], b[i]);
    }
    r
}

impl Lanes for Scalar {
    type R = [i32; 8];
    #[inline(always)]
    fn splat(self, x: i32) -> [i32; 8] {
        [x; 8]
    }
    #[inline(always)]
    fn load_array(self, a: [i32; 8]) -> [i32; 8] {
        a
    }
    #[inline(always)]
    fn add(self, a: [i32; 8], b: [i32; 8]) -> [i32; 8] {
        zip(a, b, i32::wrapping_add)
    }
    #[inline(always)]
    fn sub(self, a: [i32; 8], b: [i32; 8]) -> [i32; 8] {
        zip(a, b, i32::wrapping_sub)
    }
    #[inline(always)]
    fn mul(self, a: [i32; 8], b: [i32; 8]) -> [i32; 8] {
        zip(a, b, i32::wrapping_mul)
    }
    #[inline(always)]
    fn sra<const N: i32>(self, a: [i32; 8]) -> [i32; 8] {
        a.map(|x| x >> N)
    }
    #[inline(always)]
    fn sll<const N: i32>(self, a: [i32; 8]) -> [i32; 8] {
        a.map(|x| x << N)
    }
    #[inline(always)]
    fn srav(self, a: [i32; 8], n: [i32; 8]) -> [i32; 8] {
        zip(a, n, |x, n| x >> n)
    }
    #[inline(always)]
    fn abs(self, a: [i32; 8]) -> [i32; 8] {
        a.map(i32::wrapping_abs)
    }
    #[inline(always)]
    fn sign(self, a: [i32; 8], s: [i32; 8]) -> [i32; 8] {
        zip(a, s, |a, s| a.wrapping_mul(s.signum()))
    }
    #[inline(always)]
    fn transpose(self, m: [[i32; 8]; 8]) -> [[i32; 8]; 8] {
        std::array::from_fn(|j| std::array::from_fn(|i| m[i][j]))
    }
    #[inline(always)]
    fn load_centred(self, px: &[u8; 8]) -> [i32; 8] {
        px.map(|p| i32::from(p) - 128)
    }
    #[inline(always)]
    fn to_bytes(self, rows: [[i32; 8]; 8]) -> [[u8; 8]; 8] {
        rows.map(|r| r.map(|x| x.clamp(0, 255) as u8))
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use avx2::Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::{__m128i, __m256i};
    use pulp::x86::V3;

    use super::Lanes;

    /// AVX2 through pulp's safe wrappers (`V3` is only constructed on CPUs that have it).
    #[derive(Clone, Copy)]
    pub(in crate::kernels::jpeg) struct Avx2(pub(in crate::kernels::jpeg) V3);

    impl Lanes for Avx2 {
        type R = __m256i;
        #[inline(always)]
        fn splat(self, x: i32) -> __m256i {
            self.0.avx._mm256_set1_epi32(x)
        }
        #[inline(always)]
        fn load_array(self, a: [i32; 8]) -> __m256i {
            pulp::cast(a)
        }
        #[inline(always)]
        fn add(self, a: __m256i, b: __m256i) -> __m256i {
            self.0.avx2._mm256_add_epi32(a, b)
        }
        #[inline(always)]
        fn sub(self, a: __m256i, b: __m256i) -> __m256i {
            self.0.avx2._mm256_sub_epi32(a, b)
        }
        #[inline(always)]
        fn mul(self, a: __m256i, b: __m256i) -> __m256i {
            self.0.avx2._mm256_mullo_epi32(a, b)
        }
        #[inline(always)]
        fn sra<const N: i32>(self, a: __m256i) -> __m256i {
            self.0.avx2._mm256_srai_epi32::<N>(a)
        }
        #[inline(always)]
        fn sll<const N: i32>(self, a: __m256i) -> __m256i {
            self.0.avx2._mm256_slli_epi32::<N>(a)
        }
        #[inline(always)]
        fn srav(self, a: __m256i, n: __m256i) -> __m256i {
            self.0.avx2._mm256_srav_epi32(a, n)
        }
        #[inline(always)]
        fn abs(self, a: __m256i) -> __m256i {
            self.0.avx2._mm256_abs_epi32(a)
        }
        #[inline(always)]
        fn sign(self, a: __m256i, s: __m256i) -> __m256i {
            self.0.avx2._mm256_sign_epi32(a, s)
        }
        #[inline(always)]
        fn transpose(self, m: [__m256i; 8]) -> [__m256i; 8] {
            let x = self.0.avx2;
            let t0 = x._mm256_unpacklo_epi32(m[0], m[1]);
            let t1 = x._mm256_unpackhi_epi32(m[0], m[1]);
            let t2 = x._mm256_unpacklo_epi32(m[2], m[3]);
            let t3 = x._mm256_unpackhi_epi32(m[2], m[3]);
            let t4 = x._mm256_unpacklo_epi32(m[4], m[5]);
            let t5 = x._mm256_unpackhi_epi32(m[4], m[5]);
            let t6 = x._mm256_unpacklo_epi32(m[6], m[7]);
            let t7 = x._mm256_unpackhi_epi32(m[6], m[7]);
            let u0 = x._mm256_unpacklo_epi64(t0, t2);
            let u1 = x._mm256_unpackhi_epi64(t0, t2);
            let u2 = x._mm256_unpacklo_epi64(t1, t3);
            let u3 = x._mm256_unpackhi_epi64(t1, t3);
            let u4 = x._mm256_unpacklo_epi64(t4, t6);
            let u5 = x._mm256_unpackhi_epi64(t4, t6);
            let u6 = x._mm256_unpacklo_epi64(t5, t7);
            let u7 = x._mm256_unpackhi_epi64(t5, t7);
            [
                x._mm256_permute2x128_si256::<0x20>(u0, u4),
                x._mm256_permute2x128_si256::<0x20>(u1, u5),
                x._mm256_permute2x128_si256::<0x20>(u2, u6),
                x._mm256_permute2x128_si256::<0x20>(u3, u7),
                x._mm256_permute2x128_si256::<0x31>(u0, u4),
                x._mm256_permute2x128_si256::<0x31>(u1, u5),
                x._mm256_permute2x128_si256::<0x31>(u2, u6),
                x._mm256_permute2x128_si256::<0x31>(u3, u7),
            ]
        }
        #[inline(always)]
        fn load_centred(self, px: &[u8; 8]) -> __m256i {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(px);
            let v: __m128i = pulp::cast(b);
            let w = self.0.avx2._mm256_cvtepu8_epi32(v);
            self.sub(w, self.splat(128))
        }
        #[inline(always)]
        fn to_bytes(self, r: [__m256i; 8]) -> [[u8; 8]; 8] {
            let x = self.0.avx2;
            // Packing works per 128-bit half: after two packs a half holds four samples of
            // each of four rows; the permute puts each row's eight samples together.
            let p01 = x._mm256_packus_epi32(r[0], r[1]);
            let p23 = x._mm256_packus_epi32(r[2], r[3]);
            let p45 = x._mm256_packus_epi32(r[4], r[5]);
            let p67 = x._mm256_packus_epi32(r[6], r[7]);
            let idx = self.load_array([0, 4, 1, 5, 2, 6, 3, 7]);
            let a = x._mm256_permutevar8x32_epi32(x._mm256_packus_epi16(p01, p23), idx);
            let b = x._mm256_permutevar8x32_epi32(x._mm256_packus_epi16(p45, p67), idx);
            let a: [[u8; 8]; 4] = pulp::cast(a);
            let b: [[u8; 8]; 4] = pulp::cast(b);
            [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
        }
    }
}
