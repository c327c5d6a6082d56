//! Reflect-101 borders (OpenCV's `BORDER_REFLECT_101`): one index, and the padding of a row.

use super::Dims;

/// Reflect-101 border index (OpenCV's `BORDER_REFLECT_101`: `gfedcb|abcdefgh|gfedcba`), valid for
/// any offset, however far outside.
#[inline]
pub(crate) fn reflect101(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let n = n as isize;
    let period = 2 * (n - 1);
    let mut i = i.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    i as usize
}

/// Reflect-101 horizontal padding by `r` pixels: the source columns of the `r` pixels left and
/// right of a row, which a horizontal pass with radius `r` reads.
pub(crate) struct RowPad {
    pub left: Vec<usize>,
    pub right: Vec<usize>,
    r: usize,
    w: usize,
    c: usize,
}

impl RowPad {
    pub fn new(d: Dims, r: usize) -> RowPad {
        RowPad {
            left: (0..r)
                .map(|p| reflect101(p as isize - r as isize, d.w))
                .collect(),
            right: (0..r)
                .map(|p| reflect101((d.w + p) as isize, d.w))
                .collect(),
            r,
            w: d.w,
            c: d.c,
        }
    }

    /// Writes `row`, converted by `f`, into `padded` (`(w + 2r)·c` long) with its borders.
    #[inline(always)]
    pub fn fill<T: Copy, U>(&self, row: &[T], padded: &mut [U], f: impl Fn(T) -> U) {
        let (r, c, rl) = (self.r, self.c, self.w * self.c);
        for (o, &s) in padded[r * c..r * c + rl].iter_mut().zip(row) {
            *o = f(s);
        }
        for (p, &sx) in self.left.iter().enumerate() {
            for ch in 0..c {
                padded[p * c + ch] = f(row[sx * c + ch]);
            }
        }
        for (p, &sx) in self.right.iter().enumerate() {
            for ch in 0..c {
                padded[(r + self.w + p) * c + ch] = f(row[sx * c + ch]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect101_matches_opencv() {
        // gfedcb|abcdefgh|gfedcba on n = 8 (a = 0).
        let got: Vec<usize> = (-3..11).map(|i| reflect101(i, 8)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4]);
        assert_eq!(reflect101(-5, 1), 0);
        // Far outside: keeps bouncing.
        assert_eq!(reflect101(-4, 3), 0);
        assert_eq!(reflect101(5, 3), 1);
    }
}
