//! Deterministic synthetic chest-radiograph phantoms.
//!
//! [`generate`] renders one posteroanterior (PA) chest film from a [`PhantomSpec`]: body
//! outline and soft tissue, two dark lung fields with vascular markings, posterior and
//! anterior ribs, clavicles, spine and mediastinum, the heart shadow (bulging to the image
//! right, the patient's left), diaphragm domes (the right one higher) with a gastric bubble,
//! smooth parenchymal texture, and detector noise (correlated quantum mottle plus white grain).
//! Patients differ: body habitus, lung size and shape, heart size, inspiration depth,
//! positioning (shift, rotation, magnification), exposure and noise level are drawn per seed;
//! lesions differ in size, contrast, outline and edge softness. An optional [`LesionSpec`] adds a round
//! [`LesionKind::Nodule`] or a patchy [`LesionKind::Opacity`] in one of six lung [`Zone`]s; the
//! [`GroundTruth`] records where it is and which class the builtin model should answer.
//!
//! Every structure is an analytic function of normalised coordinates, so any size from 64² to
//! 1024² is rendered directly; the anatomy depends only on the seed, so one seed is the same
//! "patient" at every size and bit depth, with or without a lesion. All randomness comes from
//! ChaCha8 generators seeded from BLAKE3 hashes of the inputs.
//!
//! [`cohort`] builds the builtin cohort (`phantom-0000`, `phantom-0001`, …) with the classes of
//! [`class_names`] in round-robin order.

mod noise;
mod render;

use clarity_image::{BitDepth, Channels, Image};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Smallest accepted phantom side length, in pixels.
pub const MIN_SIZE: u32 = 64;
/// Largest accepted phantom side length, in pixels.
pub const MAX_SIZE: u32 = 1024;

/// The label set shared with the builtin model: `normal`, or the lesion kind and the patient's
/// side (`right` = image left in PA convention).
const CLASS_NAMES: [&str; 5] = [
    "normal",
    "nodule_right",
    "nodule_left",
    "opacity_right",
    "opacity_left",
];

/// The class names, in the builtin model's output order.
pub fn class_names() -> &'static [&'static str] {
    &CLASS_NAMES
}

/// Errors from phantom generation. Messages name the offending value and the allowed range.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PhantomError {
    #[error("phantom size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {0}")]
    InvalidSize(u32),
    #[error(
        "lesion size (diameter as a fraction of the image width) must be in (0, 0.35], got {0}"
    )]
    InvalidLesionSize(f32),
    #[error("lesion contrast (fraction of the intensity range) must be in (0, 1], got {0}")]
    InvalidContrast(f32),
    #[error("image construction failed: {0}")]
    Image(#[from] clarity_image::ImageError),
}

/// What kind of lesion a phantom carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LesionKind {
    /// A round, well-defined solid nodule.
    Nodule,
    /// A patchy, ill-defined opacity (consolidation-like).
    Opacity,
}

impl LesionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LesionKind::Nodule => "nodule",
            LesionKind::Opacity => "opacity",
        }
    }
}

impl std::fmt::Display for LesionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lung zone, named from the patient's point of view: the patient's right lung is on the
/// image left in a PA film.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    RightUpper,
    RightMiddle,
    RightLower,
    LeftUpper,
    LeftMiddle,
    LeftLower,
}

/// Vertical zone boundaries (normalised `v`): upper / middle / lower thirds of the lung fields.
const ZONE_ROWS: [f32; 4] = [0.17, 0.33, 0.49, 0.645];
/// Horizontal extent of each lung's zones (normalised `u`): patient right, patient left.
const ZONE_COLS: [[f32; 2]; 2] = [[0.13, 0.44], [0.56, 0.87]];

impl Zone {
    pub const ALL: [Zone; 6] = [
        Zone::RightUpper,
        Zone::RightMiddle,
        Zone::RightLower,
        Zone::LeftUpper,
        Zone::LeftMiddle,
        Zone::LeftLower,
    ];

    /// Whether the zone is in the patient's right lung (image left).
    pub fn is_right(self) -> bool {
        matches!(
            self,
            Zone::RightUpper | Zone::RightMiddle | Zone::RightLower
        )
    }

    /// `"right"` or `"left"` (the patient's side).
    pub fn side(self) -> &'static str {
        if self.is_right() { "right" } else { "left" }
    }

    /// 0 = upper, 1 = middle, 2 = lower.
    pub fn level(self) -> usize {
        match self {
            Zone::RightUpper | Zone::LeftUpper => 0,
            Zone::RightMiddle | Zone::LeftMiddle => 1,
            Zone::RightLower | Zone::LeftLower => 2,
        }
    }

    /// snake_case name, as in serde.
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::RightUpper => "right_upper",
            Zone::RightMiddle => "right_middle",
            Zone::RightLower => "right_lower",
            Zone::LeftUpper => "left_upper",
            Zone::LeftMiddle => "left_middle",
            Zone::LeftLower => "left_lower",
        }
    }

    /// The zone's rectangle in normalised image coordinates `[x0, y0, x1, y1]` (x right, y
    /// down, both in `[0, 1]`).
    pub fn bounds(self) -> [f32; 4] {
        let [x0, x1] = ZONE_COLS[usize::from(!self.is_right())];
        let l = self.level();
        [x0, ZONE_ROWS[l], x1, ZONE_ROWS[l + 1]]
    }

    /// The zone containing a normalised image point, by side of the midline and lung third
    /// (points above or below the lung fields map to the nearest third).
    pub fn from_point(x: f32, y: f32) -> Zone {
        let level = if y < ZONE_ROWS[1] {
            0
        } else if y < ZONE_ROWS[2] {
            1
        } else {
            2
        };
        let zones = if x < 0.5 {
            [Zone::RightUpper, Zone::RightMiddle, Zone::RightLower]
        } else {
            [Zone::LeftUpper, Zone::LeftMiddle, Zone::LeftLower]
        };
        zones[level]
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = ["upper", "middle", "lower"][self.level()];
        write!(f, "{} {level} zone", self.side())
    }
}

/// A lesion to add to a phantom.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LesionSpec {
    pub kind: LesionKind,
    pub zone: Zone,
    /// Diameter as a fraction of the image width, in `(0, 0.35]`.
    pub size: f32,
    /// Added density as a fraction of the intensity range, in `(0, 1]`.
    pub contrast: f32,
}

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhantomSpec {
    /// Side length in pixels (square images), `MIN_SIZE..=MAX_SIZE`.
    pub size: u32,
    pub depth: BitDepth,
    pub seed: u64,
    pub lesion: Option<LesionSpec>,
}

/// The known answer for a phantom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub present: bool,
    pub kind: Option<LesionKind>,
    pub zone: Option<Zone>,
    /// Lesion bounding box `[x0, y0, x1, y1]` in pixels, end-exclusive.
    pub bbox: Option<[u32; 4]>,
    /// The class name (one of [`class_names`]) the builtin model answers for this image.
    pub label: String,
}

/// One rendered phantom.
#[derive(Debug, Clone, PartialEq)]
pub struct Phantom {
    pub id: String,
    pub image: Image,
    pub truth: GroundTruth,
}

/// The class label for a lesion (or its absence).
pub fn label_for(lesion: Option<(LesionKind, Zone)>) -> String {
    match lesion {
        None => "normal".to_string(),
        Some((kind, zone)) => format!("{}_{}", kind.as_str(), zone.side()),
    }
}

/// A ChaCha8 generator for one named stream of one phantom.
fn stream(seed: u64, name: &str, extra: &[u8]) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"clarity-phantom-v1\0");
    h.update(&seed.to_le_bytes());
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update(extra);
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// Renders one phantom. The id is `phantom-{seed:016x}`.
pub fn generate(spec: &PhantomSpec) -> Result<Phantom, PhantomError> {
    let size = spec.size;
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        return Err(PhantomError::InvalidSize(size));
    }
    if let Some(l) = &spec.lesion {
        // `!(x > 0)` also rejects NaN.
        if !(l.size > 0.0 && l.size <= 0.35) {
            return Err(PhantomError::InvalidLesionSize(l.size));
        }
        if !(l.contrast > 0.0 && l.contrast <= 1.0) {
            return Err(PhantomError::InvalidContrast(l.contrast));
        }
    }

    let anatomy = render::Anatomy::new(&mut stream(spec.seed, "anatomy", &[]));
    let lesion = spec.lesion.map(|l| {
        let mut extra = Vec::new();
        extra.push(l.kind as u8);
        extra.push(l.zone as u8);
        extra.extend_from_slice(&l.size.to_le_bytes());
        extra.extend_from_slice(&l.contrast.to_le_bytes());
        let mut rng = stream(spec.seed, "lesion", &extra);
        render::Lesion::place(l.kind, l.zone, l.size, l.contrast, &anatomy, &mut rng)
    });
    // Rows are rendered in parallel; each row's grain comes from its own stream, so the
    // pixels do not depend on the number of threads.
    let n = size as usize;
    let inv = 1.0 / size as f32;
    let mut field = vec![0.0f32; n * n];
    field.par_chunks_mut(n).enumerate().for_each(|(y, row)| {
        let mut extra = size.to_le_bytes().to_vec();
        extra.extend_from_slice(&(y as u32).to_le_bytes());
        let mut grain = stream(spec.seed, "grain", &extra);
        let v = (y as f32 + 0.5) * inv;
        for (x, out) in row.iter_mut().enumerate() {
            let u = (x as f32 + 0.5) * inv;
            let (p, q) = anatomy.to_patient(u, v);
            let mut d = anatomy.density(p, q);
            if let Some(l) = &lesion {
                d += l.density(u, v);
            }
            let grey = anatomy.expose(d);
            let noisy =
                grey + anatomy.mottle(u, v, grey) + render::grain(&mut grain, anatomy.grain_amp);
            *out = noisy.clamp(0.0, 1.0);
        }
    });
    let image = match spec.depth {
        BitDepth::Eight => Image::from_u8(
            size,
            size,
            Channels::Gray,
            field.iter().map(|&d| (d * 255.0).round() as u8).collect(),
        )?,
        BitDepth::Sixteen => Image::from_u16(
            size,
            size,
            Channels::Gray,
            field
                .iter()
                .map(|&d| (d * 65535.0).round() as u16)
                .collect(),
        )?,
    };

    let truth = match (&spec.lesion, &lesion) {
        (Some(l), Some(placed)) => GroundTruth {
            present: true,
            kind: Some(l.kind),
            zone: Some(l.zone),
            bbox: Some(placed.bbox(size)),
            label: label_for(Some((l.kind, l.zone))),
        },
        _ => GroundTruth {
            present: false,
            kind: None,
            zone: None,
            bbox: None,
            label: label_for(None),
        },
    };
    Ok(Phantom {
        id: format!("phantom-{:016x}", spec.seed),
        image,
        truth,
    })
}

/// The lesion (if any) of case `index` of the builtin cohort with base seed `seed`: classes in
/// [`class_names`] order, round-robin; zone level, size and contrast drawn per case.
///
/// Nodules: diameter 0.05–0.10 of the width (under 3 cm on an adult film), contrast
/// 0.10–0.24. Opacities: diameter 0.15–0.28, contrast 0.10–0.22.
pub fn cohort_spec(index: usize, size: u32, depth: BitDepth, seed: u64) -> PhantomSpec {
    let mut rng = stream(seed, "cohort", &(index as u64).to_le_bytes());
    let case_seed = rng.next_u64();
    let class = index % CLASS_NAMES.len();
    let level = (rng.next_u64() % 3) as usize;
    let lesion = match class {
        0 => None,
        c => {
            let kind = if c <= 2 {
                LesionKind::Nodule
            } else {
                LesionKind::Opacity
            };
            let right = c % 2 == 1;
            let zone = Zone::ALL[level + if right { 0 } else { 3 }];
            let (size, contrast) = match kind {
                LesionKind::Nodule => (
                    noise::range(&mut rng, 0.05, 0.10),
                    noise::range(&mut rng, 0.10, 0.24),
                ),
                LesionKind::Opacity => (
                    noise::range(&mut rng, 0.15, 0.28),
                    noise::range(&mut rng, 0.10, 0.22),
                ),
            };
            Some(LesionSpec {
                kind,
                zone,
                size,
                contrast,
            })
        }
    };
    PhantomSpec {
        size,
        depth,
        seed: case_seed,
        lesion,
    }
}

/// The builtin cohort: `n` phantoms with ids `phantom-0000`, `phantom-0001`, …, classes
/// balanced round-robin (see [`cohort_spec`]). Deterministic in `(n, size, depth, seed)`, and
/// case `i` does not depend on `n`.
pub fn cohort(
    n: usize,
    size: u32,
    depth: BitDepth,
    seed: u64,
) -> Result<Vec<Phantom>, PhantomError> {
    (0..n)
        .map(|i| {
            let mut p = generate(&cohort_spec(i, size, depth, seed))?;
            p.id = format!("phantom-{i:04}");
            Ok(p)
        })
        .collect()
}
