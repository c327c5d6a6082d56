//! The kernel against libjpeg-turbo itself: the fixture holds small images and what
//! libjpeg-turbo 3.2 (through Pillow 13, checked equal to OpenCV 5.1) decodes after encoding them
//! at a quality; `bench/jpeg_reference.py` writes it.

use clarity_image::Channels;

use super::jpeg_roundtrip;

const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/jpeg_libjpeg_turbo.bin");

struct Case<'a> {
    w: usize,
    h: usize,
    channels: Channels,
    quality: u8,
    input: &'a [u8],
    output: &'a [u8],
}

fn cases() -> Vec<Case<'static>> {
    let mut rest = FIXTURE;
    let mut cases = Vec::new();
    while !rest.is_empty() {
        let w = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let h = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let (nc, quality) = (usize::from(rest[4]), rest[5]);
        let n = w * h * nc;
        let channels = if nc == 1 {
            Channels::Gray
        } else {
            Channels::Rgb
        };
        let (input, output) = (&rest[6..6 + n], &rest[6 + n..6 + 2 * n]);
        cases.push(Case {
            w,
            h,
            channels,
            quality,
            input,
            output,
        });
        rest = &rest[6 + 2 * n..];
    }
    cases
}

#[test]
fn equals_libjpeg_turbo() {
    let cases = cases();
    assert_eq!(cases.len(), 63, "fixture holds 63 cases");
    let mut failures = Vec::new();
    for c in &cases {
        let got = jpeg_roundtrip(c.input, c.w, c.h, c.channels, c.quality);
        if got != c.output {
            let nc = if c.channels == Channels::Gray { 1 } else { 3 };
            let first = got.iter().zip(c.output).position(|(a, b)| a != b).unwrap();
            let wrong = got.iter().zip(c.output).filter(|(a, b)| a != b).count();
            failures.push(format!(
                "{}x{} {:?} q{}: {wrong} samples differ, first at pixel ({}, {}) channel {}: \
                 kernel {} libjpeg-turbo {}",
                c.w,
                c.h,
                c.channels,
                c.quality,
                first / nc % c.w,
                first / nc / c.w,
                first % nc,
                got[first],
                c.output[first]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Images for comparing paths: noise (wild coefficients, clipping) and smooth ramps, in sizes
/// around the 8/16 block and run lengths.
fn probe(w: usize, h: usize, nc: usize, seed: u32) -> Vec<u8> {
    (0..(w * h * nc) as u32)
        .map(|i| {
            let noise = (i ^ seed).wrapping_mul(2_654_435_761) >> 24;
            if seed.is_multiple_of(2) {
                noise as u8
            } else {
                ((i as usize % (w * nc)) * 255 / (w * nc)) as u8 ^ (noise as u8 & 7)
            }
        })
        .collect()
}

/// The AVX2 runs (blocks, colour conversion, chroma sums) and the plain path give the same
/// bytes, gray and RGB, on every size class and quality extreme.
#[test]
fn paths_agree() {
    if super::avx2(true).is_none() {
        eprintln!("skipped: this CPU has no AVX2, so only the plain path exists");
        return;
    }
    let sizes = [
        (1, 1),
        (3, 2),
        (8, 8),
        (15, 17),
        (16, 16),
        (17, 9),
        (33, 31),
        (48, 40),
    ];
    for (w, h) in sizes {
        for (channels, nc) in [(Channels::Gray, 1), (Channels::Rgb, 3)] {
            for seed in 0..4 {
                let data = probe(w, h, nc, seed);
                for quality in [1, 7, 50, 93, 100] {
                    let fast = super::round_trip(&data, (w, h), channels, quality, true);
                    let plain = super::round_trip(&data, (w, h), channels, quality, false);
                    assert!(fast == plain, "{w}x{h} {channels:?} seed {seed} q{quality}");
                }
            }
        }
    }
}
