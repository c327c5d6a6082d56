//! The analytic chest model. Every structure is a closed-form function of normalised image
//! coordinates `(u, v)` in `[0, 1]²` (u to the right, v down), so any output size is rendered
//! directly, pixel by pixel, with no resampling.
//!
//! PA convention: the patient faces the viewer, so the patient's right lung is on the image
//! left (`u < 0.5`) and the heart bulges to the image right.

use rand_chacha::ChaCha8Rng;

use rand::Rng;

use crate::noise::{ValueNoise1, ValueNoise2, hashed_noise, range, smoothstep, unit};
use crate::{LesionKind, Zone};

/// Per-patient anatomy and acquisition: body habitus, lung shape and size, heart size,
/// inspiration depth, patient positioning (shift, rotation, magnification), exposure and the
/// detector's noise level all vary between seeds.
pub(crate) struct Anatomy {
    /// Image point that maps to the centre of the standard patient (positioning shift).
    centre: [f32; 2],
    /// Rotation of the patient in the image plane, as cosine and sine (no libm call).
    rot: [f32; 2],
    /// 1 / magnification.
    inv_scale: f32,
    body_half_width: f32,
    lung_rx: [f32; 2],
    lung_ry: [f32; 2],
    lung_cx: [f32; 2],
    lung_cy: [f32; 2],
    dome_top: [f32; 2],
    heart_cx: f32,
    heart_cy: f32,
    heart_rx: f32,
    heart_ry: f32,
    rib_phase: [f32; 2],
    rib_spacing: f32,
    soft_tissue: f32,
    /// Exposure: added offset, gain around mid-grey, and a quadratic tone-curve bend.
    exposure: f32,
    gain: f32,
    tone: f32,
    /// Detector noise: correlated quantum mottle and white grain amplitudes.
    pub(crate) mottle_amp: f32,
    pub(crate) grain_amp: f32,
    mottle_key: u64,
    texture: ValueNoise2,
    fine_texture: ValueNoise2,
    /// Low-frequency modulation of each lung's width along its height (lung shape).
    lung_shape: [ValueNoise1; 2],
    vessels: [ValueNoise1; 2],
    vessels_fine: [ValueNoise1; 2],
}

impl Anatomy {
    pub(crate) fn new(rng: &mut ChaCha8Rng) -> Self {
        let lung_rx = range(rng, 0.145, 0.18);
        let lung_ry = range(rng, 0.32, 0.38);
        let lung_cy = range(rng, 0.46, 0.50);
        // Inspiration: a deeper breath lowers the domes and lengthens the lungs together.
        let breath = range(rng, -0.025, 0.025);
        let sin = range(rng, -0.07, 0.07);
        Self {
            centre: [
                0.5 + range(rng, -0.03, 0.03),
                0.5 + range(rng, -0.025, 0.025),
            ],
            rot: [(1.0 - sin * sin).sqrt(), sin],
            inv_scale: 1.0 / range(rng, 0.92, 1.06),
            body_half_width: range(rng, 0.40, 0.48),
            lung_rx: [lung_rx + range(rng, -0.008, 0.012), lung_rx],
            lung_ry: [lung_ry + breath, lung_ry + breath + range(rng, 0.0, 0.015)],
            lung_cx: [
                0.5 - range(rng, 0.205, 0.235),
                0.5 + range(rng, 0.205, 0.235),
            ],
            lung_cy: [lung_cy, lung_cy + range(rng, 0.0, 0.015)],
            // The right hemidiaphragm sits higher than the left.
            dome_top: [
                range(rng, 0.635, 0.665) + breath,
                range(rng, 0.665, 0.695) + breath,
            ],
            heart_cx: range(rng, 0.54, 0.57),
            heart_cy: range(rng, 0.57, 0.60),
            heart_rx: range(rng, 0.14, 0.185),
            heart_ry: range(rng, 0.125, 0.155),
            rib_phase: [range(rng, 0.0, 0.25), range(rng, 0.0, 0.25)],
            rib_spacing: range(rng, 0.056, 0.068),
            soft_tissue: range(rng, 0.34, 0.42),
            exposure: range(rng, -0.05, 0.05),
            gain: range(rng, 0.85, 1.15),
            tone: range(rng, -0.3, 0.3),
            mottle_amp: range(rng, 0.008, 0.022),
            grain_amp: range(rng, 0.015, 0.04),
            mottle_key: rng.next_u64(),
            texture: ValueNoise2::new(10, rng),
            fine_texture: ValueNoise2::new(40, rng),
            lung_shape: [ValueNoise1::new(8, rng), ValueNoise1::new(8, rng)],
            vessels: [ValueNoise1::new(48, rng), ValueNoise1::new(48, rng)],
            vessels_fine: [ValueNoise1::new(150, rng), ValueNoise1::new(150, rng)],
        }
    }

    /// Maps an image point to the standard patient's coordinates (undoes the positioning
    /// shift, rotation and magnification).
    pub(crate) fn to_patient(&self, u: f32, v: f32) -> (f32, f32) {
        let (x, y) = (u - self.centre[0], v - self.centre[1]);
        let [c, s] = self.rot;
        (
            0.5 + (c * x + s * y) * self.inv_scale,
            0.5 + (c * y - s * x) * self.inv_scale,
        )
    }

    /// Lung membership (either lung) at an image point, in `[0, 1]`.
    pub(crate) fn lung_at(&self, u: f32, v: f32) -> f32 {
        let (p, q) = self.to_patient(u, v);
        (self.lung(0, p, q) + self.lung(1, p, q)).min(1.0)
    }

    /// The film's grey value (before noise) for attenuation `d`: exposure offset, gain
    /// around mid-grey and a quadratic tone curve (polynomial only: no libm).
    pub(crate) fn expose(&self, d: f32) -> f32 {
        let d = 0.5 + self.gain * (d - 0.5) + self.exposure;
        let c = d.clamp(0.0, 1.0);
        d + self.tone * c * (1.0 - c)
    }

    /// Quantum mottle at an image point: spatially correlated, resolution-independent noise
    /// (two octaves of hashed value noise on lattices in normalised coordinates), stronger
    /// where less radiation reaches the detector (denser, brighter film).
    pub(crate) fn mottle(&self, u: f32, v: f32, grey: f32) -> f32 {
        let n = 0.65 * hashed_noise(self.mottle_key, 150.0, u, v)
            + 0.35 * hashed_noise(self.mottle_key ^ 0x9e37_79b9_7f4a_7c15, 330.0, u, v);
        n * self.mottle_amp * (0.4 + 1.2 * grey.clamp(0.0, 1.0))
    }

    /// Half width of the body outline at height `v` (neck, shoulders, chest).
    fn body_half_width_at(&self, v: f32) -> f32 {
        0.11 + (self.body_half_width - 0.11) * smoothstep(0.0, 0.17, v)
    }

    /// Diaphragm dome height under side `s` at `u`.
    fn dome(&self, s: usize, u: f32) -> f32 {
        let dx = u - self.lung_cx[s];
        self.dome_top[s] + 2.4 * dx * dx
    }

    /// Soft membership of the lung on side `s` (0 = patient right / image left).
    fn lung(&self, s: usize, u: f32, v: f32) -> f32 {
        let dy = (v - self.lung_cy[s]) / self.lung_ry[s];
        if dy.abs() > 1.1 {
            return 0.0;
        }
        // The lung's width varies smoothly along its height (patient-specific shape).
        let width = 1.0 + 0.16 * (self.lung_shape[s].at((dy + 1.1) * 3.0) - 0.5);
        let dx = (u - self.lung_cx[s]) / (self.lung_rx[s] * width);
        if dx.abs() > 1.1 {
            return 0.0;
        }
        // Flatter medial border: squash the ellipse towards the mediastinum.
        let medial = if s == 0 { dx > 0.0 } else { dx < 0.0 };
        let dx = if medial { dx * 1.15 } else { dx };
        // Squarer lower half: deep, sharp costophrenic angles.
        let inside = if dy > 0.0 {
            1.0 - smoothstep(0.804, 1.061, dx.abs().powi(3) + dy.powi(3))
        } else {
            1.0 - smoothstep(0.93, 1.02, (dx * dx + dy * dy).sqrt())
        };
        let above_dome = 1.0 - smoothstep(-0.012, 0.008, v - self.dome(s, u));
        inside * above_dome
    }

    fn heart(&self, u: f32, v: f32) -> f32 {
        let dx = (u - self.heart_cx) / self.heart_rx;
        let dy = (v - self.heart_cy) / self.heart_ry;
        if dx.abs() > 1.2 || dy.abs() > 1.2 {
            return 0.0;
        }
        // The left ventricle makes the left-lower border rounder and fuller.
        let dx = if dx > 0.0 { dx * 0.92 } else { dx * 1.05 };
        1.0 - smoothstep(0.9, 1.03, (dx * dx + dy * dy).sqrt())
    }

    /// Rib shadows: posterior ribs (bright arcs from the spine) and fainter anterior ribs.
    fn ribs(&self, u: f32, v: f32) -> f32 {
        let s = usize::from(u >= 0.5);
        let d = (u - 0.5).abs();
        if !(0.03..=0.46).contains(&d) || !(0.07..=0.80).contains(&v) {
            return 0.0;
        }
        // Posterior rib centre line: rises laterally, then droops at the chest wall.
        let post_t = v - 2.0 * (d - 0.15) * (d - 0.15) - self.rib_phase[s] * 0.05;
        let post = rib_band(post_t, 0.07, self.rib_spacing, 10);
        // Anterior ribs slope downwards towards the midline.
        let ant_t = v + 0.42 * d - 0.05 - self.rib_phase[1 - s] * 0.05;
        let ant = rib_band(ant_t, 0.12, self.rib_spacing * 1.05, 6) * smoothstep(0.08, 0.2, d);
        post + 0.45 * ant
    }

    fn clavicles(&self, u: f32, v: f32) -> f32 {
        let d = (u - 0.5).abs();
        if !(0.04..=0.33).contains(&d) {
            return 0.0;
        }
        let centre = 0.175 - 0.16 * (d - 0.04) + 0.25 * (d - 0.2) * (d - 0.2);
        let dist = (v - centre).abs();
        (1.0 - smoothstep(0.008, 0.016, dist)) * smoothstep(0.33, 0.29, d)
    }

    fn spine(&self, u: f32, v: f32) -> f32 {
        let d = (u - 0.5).abs();
        if d >= 0.046 {
            return 0.0;
        }
        let column = 1.0 - smoothstep(0.036, 0.046, d);
        // Vertebral bodies separated by darker disc spaces.
        let p = (v / 0.052).fract();
        let disc = smoothstep(0.0, 0.15, p) * smoothstep(1.0, 0.85, p);
        column * (0.55 + 0.45 * disc)
    }

    /// Lung vascular markings: streaks radiating from each hilum, fading to the periphery.
    fn vessels(&self, s: usize, u: f32, v: f32) -> f32 {
        let hx = if s == 0 { 0.41 } else { 0.6 };
        let (dx, dy) = (u - hx, v - 0.44);
        let r = (dx * dx + dy * dy).sqrt();
        let angle = turns(dy, dx);
        let coarse = self.vessels[s].at(angle * 48.0);
        let fine = self.vessels_fine[s].at(angle * 150.0 + r * 18.0);
        let streak = smoothstep(0.55, 0.9, 0.55 * coarse + 0.45 * fine);
        let hilum = (1.0 - r * r / (0.085 * 0.085)).max(0.0).powi(3);
        streak * (1.0 - smoothstep(0.05, 0.32, r)) + 0.8 * hilum
    }

    /// Noise-free attenuation at `(u, v)`, roughly in `[0, 1]` (bright = dense).
    pub(crate) fn density(&self, u: f32, v: f32) -> f32 {
        let hw = self.body_half_width_at(v);
        let body = 1.0 - smoothstep(hw - 0.012, hw + 0.004, (u - 0.5).abs());
        let heart = self.heart(u, v);
        let lungs = [self.lung(0, u, v), self.lung(1, u, v)];
        let lung = (lungs[0] + lungs[1]).min(1.0) * (1.0 - 0.85 * heart);
        let dome_v = if u < 0.5 {
            self.dome(0, u)
        } else {
            self.dome(1, u)
        };
        let abdomen = smoothstep(-0.01, 0.03, v - dome_v) * smoothstep(0.1, 0.3, v);
        let thorax = smoothstep(0.0, 0.03, hw - 0.025 - (u - 0.5).abs());

        let mut d = 0.06;
        // Soft tissue is thinner towards the flanks (rounder look).
        let depth = (1.0 - ((u - 0.5) / hw).powi(2)).max(0.0).sqrt();
        d += (self.soft_tissue + 0.14 * depth) * body;
        d += 0.05 * abdomen * body;
        d += 0.06 * heart;
        d -= 0.34 * lung;
        // Aortic knob at the upper left mediastinal border.
        let (ax, ay) = ((u - 0.585) / 0.035, (v - 0.31) / 0.03);
        if lungs[1] > 0.0 && ax.abs() < 1.1 && ay.abs() < 1.1 {
            d += 0.2 * (1.0 - smoothstep(0.8, 1.05, (ax * ax + ay * ay).sqrt())) * lungs[1];
        }
        d += 0.1 * self.spine(u, v) * (1.0 - 0.6 * lung);
        d += 0.1 * self.ribs(u, v) * thorax;
        d += 0.12 * self.clavicles(u, v) * thorax;
        for (s, &l) in lungs.iter().enumerate() {
            if l > 0.0 {
                d += 0.07 * l * self.vessels(s, u, v) * (1.0 - heart);
            }
        }
        // Air in the trachea and the gastric bubble under the left hemidiaphragm.
        if v < 0.36 && (u - 0.5).abs() < 0.02 {
            let trachea =
                (1.0 - smoothstep(0.012, 0.02, (u - 0.5).abs())) * smoothstep(0.36, 0.30, v);
            d -= 0.08 * trachea * body;
        }
        let (gx, gy) = ((u - 0.66) / 0.04, (v - self.dome_top[1] - 0.06) / 0.028);
        if abdomen > 0.0 && gx.abs() < 1.0 && gy.abs() < 1.0 {
            d -= 0.09 * (1.0 - smoothstep(0.8, 1.0, (gx * gx + gy * gy).sqrt())) * abdomen;
        }
        // Soft-tissue texture, stronger in the lungs (parenchyma) than elsewhere.
        d += (0.015 + 0.02 * lung) * self.texture.at(u, v) * body;
        if lung > 0.0 {
            d += 0.018 * lung * self.fine_texture.at(u, v);
        }
        d
    }
}

/// The angle of `(x, y)` in turns, `[-0.5, 0.5]`, from a polynomial arctangent (error below
/// 1e-5 turns). Only `+ - * /` and `sqrt`, which IEEE 754 fixes exactly, so the pixels do not
/// depend on the platform's libm (unlike `f32::atan2`).
fn turns(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let (lo, hi) = if ax > ay { (ay, ax) } else { (ax, ay) };
    if hi == 0.0 {
        return 0.0;
    }
    let t = lo / hi;
    let t2 = t * t;
    // Minimax odd polynomial for atan on [0, 1], in radians.
    let mut a = t
        * (0.999_866
            + t2 * (-0.330_299_5 + t2 * (0.180_141 + t2 * (-0.085_133 + t2 * 0.020_835_1))));
    if ay > ax {
        a = std::f32::consts::FRAC_PI_2 - a;
    }
    if x < 0.0 {
        a = std::f32::consts::PI - a;
    }
    if y < 0.0 {
        a = -a;
    }
    a / std::f32::consts::TAU
}

/// A periodic rib-band profile along `t`: `count` bands starting at `t0`, each with brighter
/// cortical margins.
fn rib_band(t: f32, t0: f32, spacing: f32, count: u32) -> f32 {
    let k = (t - t0) / spacing;
    if k < 0.0 || k >= count as f32 {
        return 0.0;
    }
    let p = k.fract();
    let width = 0.42;
    if p >= width {
        return 0.0;
    }
    let q = p / width;
    let body = smoothstep(0.0, 0.18, q) * smoothstep(1.0, 0.82, q);
    let cortex = (1.0 - smoothstep(0.0, 0.2, q)) + (1.0 - smoothstep(0.0, 0.2, 1.0 - q));
    // Ribs thin and fade a little lower down.
    let fade = 1.0 - 0.04 * k;
    (0.75 * body + 0.35 * cortex.min(1.0) * body.max(0.3)) * fade
}

/// A placed lesion in normalised image coordinates.
pub(crate) struct Lesion {
    pub(crate) kind: LesionKind,
    pub(crate) cx: f32,
    pub(crate) cy: f32,
    /// Radius (half the diameter), normalised by the image width.
    pub(crate) r: f32,
    pub(crate) contrast: f32,
    patches: ValueNoise2,
    /// Outline modulation around the centre (lobulation of a nodule).
    outline: ValueNoise1,
    lobulation: f32,
    aspect: f32,
    /// Where the soft edge starts, as a fraction of the radius (lower = softer margin).
    edge: f32,
}

impl Lesion {
    /// Places a lesion of diameter `size` in `zone`, in the lateral part of the zone, inside
    /// the patient's lung (a few deterministic redraws if a draw falls outside it).
    pub(crate) fn place(
        kind: LesionKind,
        zone: Zone,
        size: f32,
        contrast: f32,
        anatomy: &Anatomy,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let r = size / 2.0;
        let (aspect, edge, lobulation) = match kind {
            // Nodules: well to fairly defined, round to oval, smooth to lobulated.
            LesionKind::Nodule => (
                range(rng, 0.85, 1.18),
                range(rng, 0.5, 0.85),
                range(rng, 0.0, 0.12),
            ),
            // Opacities: ill-defined, with a wide soft edge.
            LesionKind::Opacity => (range(rng, 0.75, 1.3), range(rng, 0.1, 0.4), 0.0),
        };
        let (rx, ry) = support(r * (1.0 + lobulation), aspect);
        let [zx0, zy0, zx1, zy1] = zone.bounds();
        // Prefer the lateral two thirds of the lung (the heart covers the medial left base).
        let (pref_lo, pref_hi) = if zone.is_right() {
            (0.2, 0.31)
        } else {
            (0.69, 0.8)
        };
        let lo = (zx0 + rx).max(pref_lo);
        let hi = (zx1 - rx).min(pref_hi);
        let margin = ry.min(0.3 * (zy1 - zy0));
        let draw = |rng: &mut ChaCha8Rng| {
            let cx = if lo <= hi {
                range(rng, lo, hi)
            } else {
                (zx0 + zx1) / 2.0
            };
            (cx, range(rng, zy0 + margin, zy1 - margin))
        };
        let mut centre = draw(rng);
        for _ in 0..8 {
            if anatomy.lung_at(centre.0, centre.1) > 0.5 {
                break;
            }
            centre = draw(rng);
        }
        let (cx, cy) = centre;
        Self {
            kind,
            cx,
            cy,
            r,
            contrast,
            patches: ValueNoise2::new(24, rng),
            outline: ValueNoise1::new(7, rng),
            lobulation,
            aspect,
            edge,
        }
    }

    /// Added density at `(u, v)`.
    pub(crate) fn density(&self, u: f32, v: f32) -> f32 {
        let dx = u - self.cx;
        let dy = v - self.cy;
        let (ex, ey) = (dx * self.aspect, dy / self.aspect);
        let reach = self.r * (1.0 + self.lobulation);
        if ex * ex + ey * ey >= reach * reach {
            return 0.0;
        }
        match self.kind {
            LesionKind::Nodule => {
                // Lobulated outline: the radius varies smoothly with the direction.
                let lobe = if self.lobulation > 0.0 {
                    1.0 + self.lobulation * (2.0 * self.outline.at(turns(ey, ex) * 7.0) - 1.0)
                } else {
                    1.0
                };
                let rr = (ex * ex + ey * ey).sqrt() / (self.r * lobe);
                // Solid lesion, a soft margin of per-lesion width and a little domed profile.
                let edge = 1.0 - smoothstep(self.edge, 1.0, rr);
                self.contrast * edge * (0.85 + 0.15 * (1.0 - rr * rr).max(0.0))
            }
            LesionKind::Opacity => {
                let rr = (ex * ex + ey * ey).sqrt() / self.r;
                if rr >= 1.0 {
                    return 0.0;
                }
                // Ill-defined, patchy consolidation: soft envelope times clumpy texture.
                let envelope = 1.0 - smoothstep(self.edge, 1.0, rr);
                let patch = 0.5 + 0.5 * self.patches.at(u, v);
                self.contrast * envelope * (0.45 + 0.75 * patch).min(1.0)
            }
        }
    }

    /// Pixel bounding box `[x0, y0, x1, y1)` of the lesion's support, clamped to the image.
    pub(crate) fn bbox(&self, size: u32) -> [u32; 4] {
        let (rx, ry) = support(self.r * (1.0 + self.lobulation), self.aspect);
        let s = size as f32;
        let px = |x: f32| -> u32 { (x * s).clamp(0.0, s) as u32 };
        let x0 = px(self.cx - rx);
        let y0 = px(self.cy - ry);
        let x1 = ((self.cx + rx) * s).ceil().clamp(0.0, s) as u32;
        let y1 = ((self.cy + ry) * s).ceil().clamp(0.0, s) as u32;
        [x0, y0, x1.max(x0 + 1).min(size), y1.max(y0 + 1).min(size)]
    }
}

/// Semi-axes `(x, y)` of a lesion's support: the axis-aligned ellipse `(dx·aspect)² +
/// (dy/aspect)² < reach²`.
fn support(reach: f32, aspect: f32) -> (f32, f32) {
    (reach / aspect, reach * aspect)
}

/// Fine quantum-like noise: the sum of two uniforms (triangular, σ ≈ `amp`/2.45).
pub(crate) fn grain(rng: &mut ChaCha8Rng, amp: f32) -> f32 {
    (unit(rng) + unit(rng) - 1.0) * amp
}

#[cfg(test)]
mod tests {
    use super::turns;

    #[test]
    fn polynomial_atan2_matches_libm() {
        for i in 0..720 {
            let a = (i as f32 - 360.0) * 0.5_f32.to_radians();
            for r in [0.01_f32, 1.0, 37.0] {
                let (y, x) = (r * a.sin(), r * a.cos());
                let want = y.atan2(x) / std::f32::consts::TAU;
                let got = turns(y, x);
                // Compare on the circle (±0.5 turns are the same direction).
                let diff = (got - want).abs().min(1.0 - (got - want).abs());
                assert!(diff < 2e-5, "angle {a}: {got} vs {want}");
            }
        }
        assert_eq!(turns(0.0, 0.0), 0.0);
    }
}
