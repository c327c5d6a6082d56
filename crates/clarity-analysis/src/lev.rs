//! Exact Levenshtein distance (unit costs): Hyyrö's block-based bit-parallel algorithm (2003)
//! restricted to Ukkonen's band.
//!
//! The first string (the "pattern", `n` symbols) lies along the bits of 64-bit blocks, one
//! column of the DP matrix per symbol of the second string (`m` symbols): a block holds the
//! vertical deltas `D[i][j] - D[i-1][j]` of its 64 rows as two bit vectors (`vp`: +1, `vn`: -1),
//! and its score `D[b][j]` at its bottom row `b` is tracked for the first and the last block
//! in the band only. The pattern is padded to whole blocks; padded rows match nothing and are
//! discarded at the end.
//!
//! Banding. `f(i, j) = D[i][j] + |(n - i) - (m - j)|` is a lower bound on the cost of any
//! alignment through cell `(i, j)`, and along an optimal path `f` never decreases, so with an
//! upper bound `k >= distance`, blocks whose cells all have `f > k` need not be computed. Cells
//! outside the computed blocks are replaced by over-estimates (a block entering the band starts
//! from "+1 per row" below the last computed score, the block below a dropped first block gets
//! a horizontal "+1" carry), which keeps every computed value `>=` the true one and exact for
//! every cell with `f <= k`. The band is adjusted every `q` columns ([`CHUNK`]) for the next `q`
//! columns, with these bounds for a block with bottom row `b` and score `S` at column `j` (a
//! computed column changes by at most 1 per row, and is exact where `f <= k`):
//! - the first block is dropped (for good) when all cells at rows `<= b`, row 0 included, have
//!   `f > k`: when `S - 64 > k` or `S + (n - b) - (m - j) > k`; the band is empty (the distance
//!   exceeds `k`) when that holds for the only block;
//! - a cell below the last block at one of the next `q` columns with `f <= k` implies
//!   `S + b + (m - j) - n <= k + 2q - 2` (the optimal path to it crosses column `j` within the
//!   band, at most `q` columns before it), so the next block is added when
//!   `S + b + (m - j) - n < k + 2q`, and the last block dropped when that fails for the one
//!   above it.
//!
//! `k` comes from a first pass over a fixed band of blocks around the straight line from
//! `(0, 0)` to `(n, m)`: its result is the cost of a real alignment (over-estimates are costs
//! of real paths), hence `>=` the distance, and equal to it when an optimal alignment stays
//! within that band.

/// The vertical deltas of one block of 64 rows.
#[derive(Clone, Copy)]
struct Block {
    vp: u64,
    vn: u64,
}

const FRESH: Block = Block { vp: !0, vn: 0 };

/// Advances one block by one column: `pm` is the block's match mask for the column's symbol,
/// `hp_in`/`hn_in` the horizontal delta (+1/-1 as bits) entering above its first row. Returns the
/// horizontal delta leaving below its last row.
#[inline(always)]
fn step(b: &mut Block, pm: u64, hp_in: u64, hn_in: u64) -> (u64, u64) {
    let Block { vp, vn } = *b;
    let x = pm | hn_in;
    let d0 = ((x & vp).wrapping_add(vp) ^ vp) | x | vn;
    let hp = vn | !(d0 | vp);
    let hn = d0 & vp;
    let (hp_out, hn_out) = (hp >> 63, hn >> 63);
    let hp = (hp << 1) | hp_in;
    let hn = (hn << 1) | hn_in;
    b.vp = hn | !(d0 | hp);
    b.vn = hp & d0;
    (hp_out, hn_out)
}

/// Sum of the vertical deltas of a block's rows selected by `mask`.
#[inline(always)]
fn delta(b: Block, mask: u64) -> isize {
    (b.vp & mask).count_ones() as isize - (b.vn & mask).count_ones() as isize
}

/// The pattern's match masks: `pm[o + w]` is block `w`'s mask of the symbol at offset `o`
/// (a multiple of `words`; offset 0 is a symbol absent from the pattern).
pub(crate) struct Pattern {
    pm: Vec<u64>,
    words: usize,
    n: usize,
}

/// How the band of blocks is chosen.
#[derive(Clone, Copy)]
enum Band {
    /// Blocks covering rows within `w` of the straight line from `(0, 0)` to `(n, m)`; the
    /// result is an upper bound of the distance.
    Diagonal(usize),
    /// Ukkonen's band for the upper bound `k`: the result is exact when `<= k`.
    Ukkonen(usize),
}

impl Pattern {
    /// `offsets` yields each pattern symbol's offset into the mask table (`sym * words`, sym
    /// from 1 to `symbols`).
    fn new(n: usize, symbols: usize, offsets: impl Iterator<Item = usize>) -> Pattern {
        let words = n.div_ceil(64);
        let mut pm = vec![0u64; (symbols + 1) * words];
        for (i, o) in offsets.enumerate() {
            pm[o + i / 64] |= 1 << (i % 64);
        }
        Pattern { pm, words, n }
    }

    /// Distance between the pattern and the text whose column offsets `col` yields (`m` of
    /// them), in `band`; `None` when the band shows the distance exceeds its bound.
    ///
    /// The band is adjusted every [`CHUNK`] columns, for the next `CHUNK` columns at once
    /// (computing more blocks than needed is harmless: it only makes more values exact).
    fn run<S: Copy>(&self, text: &[S], col: impl Fn(S) -> usize, band: Band) -> Option<usize> {
        let words = self.words;
        let n = self.n as isize;
        let m = text.len() as isize;
        let q = CHUNK as isize;
        let (k, diag) = match band {
            Band::Diagonal(w) => (isize::MAX / 4, w as isize),
            Band::Ukkonen(k) => (k as isize, -1),
        };
        if (n - m).abs() > k {
            return None;
        }
        let mut blocks = vec![FRESH; words];
        // Rows 1..=64*words; block w holds rows 64w+1..=64w+64 (its bottom row b = 64(w+1)).
        // Column 0: D[i][0] = i.
        let bottom = |w: usize| 64 * (w as isize + 1);
        let (mut first, mut last) = (0usize, 0usize);
        let (mut s_first, mut s_last) = (64isize, 64isize);
        let mut j = 0usize;
        loop {
            // The band for columns j+1..=j+q, from the state after column j.
            let rem = m - j as isize;
            if diag >= 0 {
                // Rows within `diag` of the line from (0, 0) to (n, m) over these columns.
                let hi = ((j as isize + q).min(m) * n / m + diag).min(n);
                let lo = (j as isize + 1) * n / m - diag;
                while last + 1 < words && bottom(last) < hi {
                    last += 1;
                    blocks[last] = FRESH;
                    s_last += 64;
                }
                while first < last && bottom(first) < lo {
                    first += 1;
                    s_first += delta(blocks[first], !0);
                }
            } else {
                // Below the last block, a cell of these columns may have f <= k only if
                // S + b + (m - j) - n < k + 2q (the module docs).
                while last + 1 < words && s_last + bottom(last) + rem - n < k + 2 * q {
                    last += 1;
                    blocks[last] = FRESH;
                    s_last += 64;
                }
                while last > first {
                    let above = s_last - delta(blocks[last], !0);
                    if above + bottom(last - 1) + rem - n < k + 2 * q {
                        break;
                    }
                    s_last = above;
                    last -= 1;
                }
                // All cells at rows <= b (row 0 included) have f > k now and later.
                let dead = |s: isize, w: usize| s - 64 > k || s + n - bottom(w) - rem > k;
                while first < last && dead(s_first, first) {
                    first += 1;
                    s_first += delta(blocks[first], !0);
                }
                if first == last && dead(s_first, first) {
                    return None;
                }
            }
            if j == text.len() {
                break;
            }
            let end = (j + CHUNK).min(text.len());
            let width = last - first + 1;
            let Some((b0, rest)) = blocks[first..=last].split_first_mut() else {
                unreachable!("first <= last")
            };
            for &c in &text[j..end] {
                let o = col(c) + first;
                let row = &self.pm[o..o + width];
                let (mut hp, mut hn) = step(b0, row[0], 1, 0);
                s_first += hp as isize - hn as isize;
                for (b, &p) in rest.iter_mut().zip(&row[1..]) {
                    (hp, hn) = step(b, p, hp, hn);
                }
                // When first == last this repeats the first block's carry: s_last == s_first.
                s_last += hp as isize - hn as isize;
            }
            j = end;
        }
        if last != words - 1 {
            return None;
        }
        let r = self.n % 64;
        let d = if r == 0 {
            s_last
        } else {
            s_last - delta(blocks[last], !0 << r)
        };
        (d <= k).then_some(d as usize)
    }
}

/// Columns computed between two adjustments of the band.
const CHUNK: usize = 16;
/// Blocks of the pattern beyond which the upper-bound pass and the band pay off.
const BANDED_FROM_WORDS: usize = 8;
/// Half-width in rows of the upper-bound pass's band.
const DIAGONAL_HALF_WIDTH: usize = 16;

/// Distance of a pattern (non-empty) and a text (non-empty).
fn distance_with<S: Copy>(p: &Pattern, text: &[S], col: impl Fn(S) -> usize + Copy) -> usize {
    let full = p.n.max(text.len());
    if p.words >= BANDED_FROM_WORDS {
        let ub = p
            .run(text, col, Band::Diagonal(DIAGONAL_HALF_WIDTH))
            .unwrap_or(full)
            .min(full);
        if let Some(d) = p.run(text, col, Band::Ukkonen(ub)) {
            return d;
        }
    }
    p.run(text, col, Band::Ukkonen(full))
        .expect("the full band holds the distance")
}

/// Lengths of the common prefix and, of the rest, the common suffix.
fn affix<T: PartialEq>(a: &[T], b: &[T]) -> (usize, usize) {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (pre, suf)
}

/// Levenshtein distance of two byte strings.
pub(crate) fn distance_bytes(a: &[u8], b: &[u8]) -> usize {
    let (pre, suf) = affix(a, b);
    let (a, b) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    if a.is_empty() || b.is_empty() {
        return a.len() + b.len();
    }
    let (p, map) = byte_pattern(a);
    distance_with(&p, b, |c: u8| map[c as usize] as usize)
}

/// The pattern of a non-empty byte string, and each byte's offset into its mask table.
fn byte_pattern(a: &[u8]) -> (Pattern, [u32; 256]) {
    let words = a.len().div_ceil(64);
    let mut map = [0u32; 256];
    let mut symbols = 0;
    for &c in a {
        if map[c as usize] == 0 {
            symbols += 1;
            map[c as usize] = (symbols * words) as u32;
        }
    }
    let p = Pattern::new(
        a.len(),
        symbols,
        a.iter().map(|&c| map[c as usize] as usize),
    );
    (p, map)
}

/// Levenshtein distance of two strings of Unicode scalar values.
pub(crate) fn distance_chars(a: &[char], b: &[char]) -> usize {
    let (pre, suf) = affix(a, b);
    let (a, b) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    if a.is_empty() || b.is_empty() {
        return a.len() + b.len();
    }
    let words = a.len().div_ceil(64);
    // Symbols: chars below U+0100 through a table, the others (sorted, distinct) after them.
    let mut latin = [0usize; 256];
    let mut symbols = 0;
    let mut others = Vec::new();
    for &c in a {
        match latin.get_mut(c as usize) {
            Some(o) if *o == 0 => {
                symbols += 1;
                *o = symbols * words;
            }
            Some(_) => {}
            None => others.push(c),
        }
    }
    others.sort_unstable();
    others.dedup();
    let offset = |&c: &char| match latin.get(c as usize) {
        Some(&o) => o,
        None => others
            .binary_search(&c)
            .map_or(0, |s| (symbols + s + 1) * words),
    };
    let p = Pattern::new(a.len(), symbols + others.len(), a.iter().map(offset));
    let text: Vec<usize> = b.iter().map(offset).collect();
    distance_with(&p, &text, |o| o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Plain O(n m) dynamic programming.
    fn dp<T: PartialEq>(a: &[T], b: &[T]) -> usize {
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, x) in a.iter().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, y) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(x != y))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }

    fn check(a: &str, b: &str) -> Result<(), TestCaseError> {
        let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let want = dp(&ac, &bc);
        prop_assert_eq!(distance_chars(&ac, &bc), want, "chars {:?} {:?}", a, b);
        prop_assert_eq!(distance_chars(&bc, &ac), want, "chars {:?} {:?}", b, a);
        if a.is_ascii() && b.is_ascii() {
            prop_assert_eq!(distance_bytes(a.as_bytes(), b.as_bytes()), want);
            prop_assert_eq!(distance_bytes(b.as_bytes(), a.as_bytes()), want);
            if !a.is_empty() && !b.is_empty() {
                check_bands(a.as_bytes(), b.as_bytes(), want)?;
            }
        }
        Ok(())
    }

    /// Every band on the whole strings: `Ukkonen(k)` gives the distance exactly when it is
    /// `<= k` (else `None`), `Diagonal(w)` an upper bound.
    fn check_bands(a: &[u8], b: &[u8], want: usize) -> Result<(), TestCaseError> {
        let (p, map) = byte_pattern(a);
        let col = |c: u8| map[c as usize] as usize;
        for w in [0, 1, 16, 64, 200] {
            let ub = p.run(b, col, Band::Diagonal(w));
            prop_assert!(
                ub.is_some_and(|u| u >= want),
                "diagonal {} {:?} < {}",
                w,
                ub,
                want
            );
            prop_assert_eq!(
                p.run(b, col, Band::Ukkonen(ub.unwrap())),
                Some(want),
                "ub {:?} a {} b {}",
                ub,
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            );
        }
        let ks = [
            0,
            1,
            2,
            want.saturating_sub(1),
            want,
            want + 1,
            want + 7,
            2 * want + 64,
        ];
        for k in ks {
            let got = p.run(b, col, Band::Ukkonen(k));
            prop_assert_eq!(got, (want <= k).then_some(want), "k {}", k);
        }
        Ok(())
    }

    /// `a` with about `rate` edits per symbol drawn from `alphabet`.
    fn edited(a: &[char], alphabet: &[char], ops: &[(u8, u8, u16)]) -> String {
        let mut b: Vec<char> = a.to_vec();
        for &(kind, sym, pos) in ops {
            let c = alphabet[sym as usize % alphabet.len()];
            let p = pos as usize % (b.len() + 1);
            match kind % 3 {
                0 => b.insert(p, c),
                1 if p < b.len() => {
                    b.remove(p);
                }
                _ if p < b.len() => b[p] = c,
                _ => b.push(c),
            }
        }
        b.into_iter().collect()
    }

    #[test]
    fn examples() {
        for (a, b) in [
            ("", ""),
            ("", "abc"),
            ("kitten", "sitting"),
            ("éa", "èa"),
            ("a", &"b".repeat(65)),
            (&"ab".repeat(100), &"ba".repeat(100)),
            (&"a".repeat(200), &"b".repeat(3)),
            (&"x".repeat(64), &"x".repeat(128)),
        ] {
            check(a, b).unwrap();
        }
    }

    fn len_near_64() -> impl Strategy<Value = usize> {
        prop_oneof![
            0usize..300,
            (0usize..5).prop_flat_map(|q| (q * 64).saturating_sub(1)..q * 64 + 2),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_ascii(
            a in len_near_64().prop_flat_map(|n| proptest::collection::vec(b'a'..b'e', n)),
            b in len_near_64().prop_flat_map(|n| proptest::collection::vec(b'a'..b'e', n)),
        ) {
            check(std::str::from_utf8(&a).unwrap(), std::str::from_utf8(&b).unwrap())?;
        }

        #[test]
        fn random_unicode(a in "[abé😀 ]{0,300}", b in "[abé😀 ]{0,300}") {
            check(&a, &b)?;
        }

        #[test]
        fn similar_ascii(
            a in len_near_64().prop_flat_map(|n| proptest::collection::vec(b'a'..=b'z', n)),
            ops in proptest::collection::vec((0u8..3, 0u8..26, 0u16..1000), 0..40),
        ) {
            let a: Vec<char> = a.into_iter().map(char::from).collect();
            let alphabet: Vec<char> = ('a'..='z').collect();
            let b = edited(&a, &alphabet, &ops);
            check(&a.iter().collect::<String>(), &b)?;
        }

        #[test]
        fn similar_unicode(
            a in "[abcé😀 ]{0,300}",
            ops in proptest::collection::vec((0u8..3, 0u8..6, 0u16..1000), 0..40),
        ) {
            let a: Vec<char> = a.chars().collect();
            let b = edited(&a, &['a', 'b', 'c', 'é', '😀', ' '], &ops);
            check(&a.iter().collect::<String>(), &b)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Long texts with few and many edits (several blocks, the banded passes).
        #[test]
        fn long_similar(
            n in 1000usize..3000,
            seed in proptest::collection::vec(0u8..4, 50),
            ops in proptest::collection::vec((0u8..3, 0u8..26, 0u16..4000), 0..600),
        ) {
            let words = ["the ", "lobe ", "upper ", "no ", "effusion ", "mild "];
            let mut a = String::new();
            let mut i = 0;
            while a.len() < n {
                a.push_str(words[(seed[i % seed.len()] as usize + i / 7) % words.len()]);
                i += 1;
            }
            let a: Vec<char> = a.chars().take(n).collect();
            let alphabet: Vec<char> = ('a'..='z').collect();
            let b = edited(&a, &alphabet, &ops);
            check(&a.iter().collect::<String>(), &b)?;
        }

        #[test]
        fn long_random(
            a in proptest::collection::vec(b'a'..b'd', 500..1500),
            b in proptest::collection::vec(b'a'..b'd', 500..1500),
        ) {
            check(std::str::from_utf8(&a).unwrap(), std::str::from_utf8(&b).unwrap())?;
        }
    }
}
