//! Invariants every registered kernel must satisfy. These iterate the whole registry, so a new
//! kernel cannot skip them.

use clarity_image::{Channels, Image, Samples};
use clarity_perturb::{
    DefaultValue, ParamKind, ParamValue, Params, PerturbError, Perturbation, Recipe, Step,
    registry, rng_from_seed,
};
use proptest::prelude::*;

const EXPECTED: [&str; 20] = [
    "brightness",
    "contrast",
    "defocus_blur",
    "downscale",
    "elastic",
    "gamma",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg",
    "line_artifact",
    "motion_blur",
    "occluder",
    "poisson_noise",
    "region_mask",
    "rotation",
    "salt_pepper",
    "scale",
    "speckle_noise",
    "translation",
    "window_shift",
];

/// Every parameter that has an identity value set to it.
fn identity_params(k: &dyn Perturbation) -> Params {
    k.params()
        .iter()
        .filter_map(|s| s.identity.map(|id| (s.name.to_string(), id.to_value())))
        .collect()
}

fn rng(seed: u64) -> clarity_perturb::KernelRng {
    rng_from_seed(clarity_perturb::derive_seed(seed, "case", "test"))
}

/// A textured image: a ramp plus a bright square plus a checker, so every kernel changes it.
fn textured(w: u32, h: u32, channels: Channels, wide: bool) -> Image {
    let c = channels.count() as u32;
    let max = if wide { 65535.0 } else { 255.0 };
    let vals: Vec<f64> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| (0..c).map(move |ch| (x, y, ch))))
        .map(|(x, y, ch)| {
            let ramp = (x + 2 * y + 7 * ch) as f64 / (w + 2 * h + 14) as f64;
            let square = (x > w / 3 && x < 2 * w / 3 && y > h / 3 && y < 2 * h / 3) as u8 as f64;
            let checker = ((x / 2 + y / 2) % 2) as f64;
            (0.1 + 0.5 * ramp + 0.25 * square + 0.1 * checker) * max
        })
        .collect();
    if wide {
        Image::from_u16(
            w,
            h,
            channels,
            vals.iter().map(|v| v.round() as u16).collect(),
        )
        .unwrap()
    } else {
        Image::from_u8(
            w,
            h,
            channels,
            vals.iter().map(|v| v.round() as u8).collect(),
        )
        .unwrap()
    }
}

fn arb_image() -> impl Strategy<Value = Image> {
    (1u32..7, 1u32..7, any::<bool>(), any::<bool>()).prop_flat_map(|(w, h, rgb, wide)| {
        let ch = if rgb { Channels::Rgb } else { Channels::Gray };
        let n = (w * h) as usize * ch.count();
        if wide {
            proptest::collection::vec(any::<u16>(), n)
                .prop_map(move |v| Image::from_u16(w, h, ch, v).unwrap())
                .boxed()
        } else {
            proptest::collection::vec(any::<u8>(), n)
                .prop_map(move |v| Image::from_u8(w, h, ch, v).unwrap())
                .boxed()
        }
    })
}

#[test]
fn registry_holds_exactly_the_spec_kernels() {
    assert_eq!(registry().names(), EXPECTED.to_vec());
    for name in EXPECTED {
        let k = registry().get(name).unwrap();
        assert_eq!(k.name(), name);
        assert!(k.version() >= 1);
        assert!(!k.description().is_empty(), "{name}: description");
        assert!(!k.params().is_empty(), "{name}: params");
        for s in k.params() {
            assert!(!s.doc.is_empty(), "{name}.{}: doc", s.name);
        }
    }
}

#[test]
fn every_kernel_has_an_identity_and_valid_defaults() {
    for k in registry().iter() {
        let id = identity_params(k);
        assert!(
            !id.is_empty(),
            "{}: no parameter has an identity value",
            k.name()
        );
        let resolved = k.resolve(&id).unwrap();
        assert!(
            k.is_identity(&resolved),
            "{}: identity not recognised",
            k.name()
        );
        // Defaults must be valid too.
        k.resolve(&Params::new()).unwrap();
    }
}

#[test]
fn presets_are_valid_distinct_and_not_identity() {
    for k in registry().iter() {
        let presets = k.presets();
        for (i, p) in presets.iter().enumerate() {
            let r = k
                .resolve(p)
                .unwrap_or_else(|e| panic!("{} preset {}: {e}", k.name(), i + 1));
            assert!(
                !k.is_identity(&r),
                "{} preset {} is identity",
                k.name(),
                i + 1
            );
        }
        for i in 0..5 {
            for j in i + 1..5 {
                assert_ne!(
                    presets[i],
                    presets[j],
                    "{}: presets {i} and {j} equal",
                    k.name()
                );
            }
        }
    }
}

#[test]
fn out_of_range_and_unknown_params_are_rejected_clearly() {
    for k in registry().iter() {
        for s in k.params() {
            let bad: Vec<ParamValue> = match s.kind {
                ParamKind::Float { min, max } => vec![
                    ParamValue::Num(min - 1.0),
                    ParamValue::Num(max + 1.0),
                    ParamValue::Num(f64::NAN),
                    ParamValue::Text("x".into()),
                ],
                ParamKind::Int { min, max } => vec![
                    ParamValue::Num(min as f64 - 1.0),
                    ParamValue::Num(max as f64 + 1.0),
                    ParamValue::Num(min as f64 + 0.5),
                ],
                ParamKind::Choice(_) => {
                    vec![
                        ParamValue::Text("no_such_choice".into()),
                        ParamValue::Num(1.0),
                    ]
                }
            };
            for v in bad {
                let p = Params::from([(s.name.to_string(), v.clone())]);
                let err = k.resolve(&p).unwrap_err();
                assert!(
                    matches!(err, PerturbError::InvalidValue { .. }),
                    "{}.{} = {v}: {err:?}",
                    k.name(),
                    s.name
                );
                let msg = err.to_string();
                assert!(
                    msg.starts_with(&format!("{}.{}: expected ", k.name(), s.name)),
                    "{msg}"
                );
                // ... and the allowed range or choices.
                let range = match s.kind {
                    ParamKind::Float { min, max } => format!("a number in [{min}, {max}]"),
                    ParamKind::Int { min, max } => format!("an integer in [{min}, {max}]"),
                    ParamKind::Choice(names) => format!("one of {}", names.join(", ")),
                };
                assert!(msg.contains(&range), "{msg} lacks {range:?}");
            }
        }
        let err = k
            .resolve(&Params::from([("bogus".to_string(), ParamValue::Num(1.0))]))
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown parameter \"bogus\""),
            "{err}"
        );
    }
}

#[test]
fn random_kernels_depend_on_the_seed_and_others_do_not() {
    for wide in [false, true] {
        for ch in [Channels::Gray, Channels::Rgb] {
            let img = textured(24, 20, ch, wide);
            for k in registry().iter() {
                for (level, preset) in k.presets().iter().enumerate() {
                    let level = level + 1;
                    let p = k.resolve(preset).unwrap();
                    let a = k.apply(&img, &p, &mut rng(1)).unwrap();
                    let a2 = k.apply(&img, &p, &mut rng(1)).unwrap();
                    let b = k.apply(&img, &p, &mut rng(2)).unwrap();
                    let name = k.name();
                    assert_eq!(a, a2, "{name} preset {level}: same seed, different output");
                    assert_ne!(a, img, "{name} preset {level} left the image unchanged");
                    if k.is_random() && name != "region_mask" {
                        assert_ne!(a, b, "{name} preset {level}: different seeds, same output");
                    } else {
                        assert_eq!(a, b, "{name} preset {level}: not random but seed-dependent");
                    }
                }
            }
        }
    }
}

#[test]
fn region_mask_noise_fill_depends_on_the_seed() {
    let k = registry().get("region_mask").unwrap();
    let mut p = k.presets()[2].clone();
    p.insert("fill".into(), ParamValue::Text("noise".into()));
    let p = k.resolve(&p).unwrap();
    let img = textured(24, 20, Channels::Gray, false);
    assert_ne!(
        k.apply(&img, &p, &mut rng(1)).unwrap(),
        k.apply(&img, &p, &mut rng(2)).unwrap()
    );
}

#[test]
fn recipe_composes_in_order_and_is_reproducible() {
    let recipe = Recipe {
        steps: vec![
            Step {
                name: "gaussian_noise".into(),
                params: Params::from([("sigma".into(), ParamValue::Num(0.05))]),
            },
            Step {
                name: "gaussian_blur".into(),
                params: Params::from([("sigma".into(), ParamValue::Num(1.0))]),
            },
        ],
    };
    let img = textured(16, 16, Channels::Rgb, false);
    let a = recipe.apply(&img, 7, "case-1").unwrap();
    assert_eq!(a, recipe.apply(&img, 7, "case-1").unwrap());
    assert_ne!(a, recipe.apply(&img, 8, "case-1").unwrap());
    assert_ne!(a, recipe.apply(&img, 7, "case-2").unwrap());
    let mut reversed = recipe.clone();
    reversed.steps.reverse();
    assert_ne!(a, reversed.apply(&img, 7, "case-1").unwrap());
    let err = Recipe {
        steps: vec![Step {
            name: "nope".into(),
            params: Params::new(),
        }],
    }
    .apply(&img, 7, "c")
    .unwrap_err();
    assert!(err.to_string().starts_with("unknown perturbation \"nope\""));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn identity_returns_the_input_bit_for_bit(img in arb_image(), seed in any::<u64>()) {
        for k in registry().iter() {
            let p = k.resolve(&identity_params(k)).unwrap();
            let out = k.apply(&img, &p, &mut rng(seed)).unwrap();
            prop_assert_eq!(&out, &img, "{} at identity changed the image", k.name());
            let recipe = Recipe { steps: vec![Step { name: k.name().into(), params: identity_params(k) }] };
            prop_assert_eq!(&recipe.apply(&img, seed, "c").unwrap(), &img);
        }
    }

    #[test]
    fn presets_keep_size_and_sample_type(img in arb_image(), seed in any::<u64>(), level in 0usize..5) {
        for k in registry().iter() {
            let p = k.resolve(&k.presets()[level]).unwrap();
            let out = k.apply(&img, &p, &mut rng(seed)).unwrap();
            prop_assert_eq!(out.width(), img.width(), "{}", k.name());
            prop_assert_eq!(out.height(), img.height(), "{}", k.name());
            prop_assert_eq!(out.format(), img.format(), "{}", k.name());
            let again = k.apply(&img, &p, &mut rng(seed)).unwrap();
            prop_assert_eq!(&out, &again, "{}: not deterministic", k.name());
        }
    }

    #[test]
    fn random_params_in_range_never_panic(img in arb_image(), seed in any::<u64>(), u in proptest::collection::vec(0.0f64..=1.0, 8)) {
        for k in registry().iter() {
            let p: Params = k.params().iter().zip(&u).map(|(s, &t)| {
                let v = match s.kind {
                    // Keep heavy parameters small so debug-mode tests stay fast.
                    ParamKind::Float { min, max } => ParamValue::Num(min + (max.min(min + 12.0) - min) * t),
                    ParamKind::Int { min, max } => ParamValue::Num((min as f64 + ((max.min(min + 12)) - min) as f64 * t).round()),
                    ParamKind::Choice(names) => ParamValue::Text(names[((names.len() - 1) as f64 * t).round() as usize].to_string()),
                };
                (s.name.to_string(), v)
            }).collect();
            let r = k.resolve(&p).unwrap();
            let out = k.apply(&img, &r, &mut rng(seed)).unwrap();
            prop_assert_eq!(out.format(), img.format(), "{}", k.name());
            prop_assert_eq!((out.width(), out.height()), (img.width(), img.height()), "{}", k.name());
            // Whatever the other parameters, setting one to its identity value either leaves the
            // kernel at identity (then the output is the input, as `Recipe` assumes when it
            // skips the step) or the kernel says it is not at identity.
            for s in k.params().iter().filter(|s| s.identity.is_some()) {
                let mut q = p.clone();
                q.insert(s.name.to_string(), s.identity.unwrap().to_value());
                let rq = k.resolve(&q).unwrap();
                if k.is_identity(&rq) {
                    let out = k.apply(&img, &rq, &mut rng(seed)).unwrap();
                    prop_assert_eq!(&out, &img, "{} with {} at identity ({:?})", k.name(), s.name, q);
                }
            }
            let all = k.resolve(&p.clone().into_iter().chain(identity_params(k)).collect()).unwrap();
            prop_assert!(k.is_identity(&all), "{}: every identity value set, not identity", k.name());
            prop_assert_eq!(&k.apply(&img, &all, &mut rng(seed)).unwrap(), &img, "{}", k.name());
        }
    }

    #[test]
    fn params_outside_the_range_are_rejected_inside_accepted(u in -3.0f64..4.0, which in 0usize..64) {
        // One numeric parameter of one kernel at min + u·(max − min): accepted exactly when
        // 0 ≤ u ≤ 1, otherwise an error naming the kernel and the parameter.
        let specs: Vec<(&dyn Perturbation, &clarity_perturb::ParamSpec)> = registry()
            .iter()
            .flat_map(|k| k.params().iter().map(move |s| (k, s)))
            .filter(|(_, s)| !matches!(s.kind, ParamKind::Choice(_)))
            .collect();
        let (k, s) = specs[which % specs.len()];
        let (min, max, int) = match s.kind {
            ParamKind::Float { min, max } => (min, max, false),
            ParamKind::Int { min, max } => (min as f64, max as f64, true),
            ParamKind::Choice(_) => unreachable!(),
        };
        let mut x = min + u * (max - min);
        if int {
            x = x.round();
        }
        let res = k.resolve(&Params::from([(s.name.to_string(), ParamValue::Num(x))]));
        if (min..=max).contains(&x) {
            prop_assert!(res.is_ok(), "{}.{} = {x}: {:?}", k.name(), s.name, res);
        } else {
            let msg = res.unwrap_err().to_string();
            let prefix = format!("{}.{}: expected ", k.name(), s.name);
            prop_assert!(msg.starts_with(&prefix), "{}", msg);
            prop_assert!(msg.contains(&format!("[{min}, {max}]")), "{}", msg);
        }
    }
}

#[test]
fn identity_is_exact_for_every_sample_type() {
    // Deterministic companion of the identity property: every kernel, every layout (u8/u16 ×
    // gray/RGB), degenerate sizes included, samples at both ends of the range.
    for (w, h) in [(1, 1), (1, 5), (5, 1), (3, 2), (8, 8)] {
        for wide in [false, true] {
            for ch in [Channels::Gray, Channels::Rgb] {
                let mut img = textured(w, h, ch, wide);
                let max = if wide { 65535 } else { 255 };
                let n = img.samples().len();
                match img.samples_mut() {
                    clarity_image::SamplesMut::U8(v) => {
                        v[0] = 0;
                        v[n - 1] = max as u8;
                    }
                    clarity_image::SamplesMut::U16(v) => {
                        v[0] = 0;
                        v[n - 1] = max as u16;
                    }
                }
                for k in registry().iter() {
                    let p = k.resolve(&identity_params(k)).unwrap();
                    let out = k.apply(&img, &p, &mut rng(5)).unwrap();
                    assert_eq!(
                        out,
                        img,
                        "{} at identity on {w}x{h} {}",
                        k.name(),
                        img.format()
                    );
                }
            }
        }
    }
}

#[test]
fn identity_values_are_declared_as_numbers_in_range() {
    for k in registry().iter() {
        for s in k.params() {
            if let Some(DefaultValue::Num(x)) = s.identity {
                let p = Params::from([(s.name.to_string(), ParamValue::Num(x))]);
                k.resolve(&p)
                    .unwrap_or_else(|e| panic!("{}: {e}", k.name()));
            }
        }
    }
}

#[test]
fn samples_stay_in_range_for_u16() {
    // u16 samples near the top of the range must not wrap.
    let img = Image::from_u16(8, 8, Channels::Gray, vec![65000; 64]).unwrap();
    for k in registry().iter() {
        let p = k.resolve(&k.presets()[4]).unwrap();
        let out = k.apply(&img, &p, &mut rng(3)).unwrap();
        let Samples::U16(v) = out.samples() else {
            panic!("{}: depth changed", k.name())
        };
        assert_eq!(v.len(), 64);
    }
}

/// Fingerprint of every kernel's output: presets 1..=5 plus, for each choice parameter, every
/// choice on top of preset 3, on all four layouts, fixed seed. BLAKE3 over the output samples
/// (u16 little-endian).
fn output_fingerprint(k: &dyn Perturbation) -> String {
    let mut sets: Vec<Params> = k.presets().to_vec();
    for s in k.params() {
        if let ParamKind::Choice(names) = s.kind {
            for name in names {
                let mut p = k.presets()[2].clone();
                p.insert(s.name.to_string(), ParamValue::Text(name.to_string()));
                sets.push(p);
            }
        }
    }
    let mut h = blake3::Hasher::new();
    for wide in [false, true] {
        for ch in [Channels::Gray, Channels::Rgb] {
            let img = textured(24, 20, ch, wide);
            for p in &sets {
                let out = k.apply(&img, &k.resolve(p).unwrap(), &mut rng(7)).unwrap();
                match out.samples() {
                    Samples::U8(v) => h.update(v),
                    Samples::U16(v) => {
                        h.update(&v.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>())
                    }
                };
            }
        }
    }
    h.finalize().to_hex()[..16].to_string()
}

/// (kernel, version, output fingerprint). A kernel's version must change whenever its output
/// bytes do, because the version (not the code) goes into every run's content key.
const GOLDEN: &[(&str, u32, &str)] = &[
    ("brightness", 1, "922428fcf8f483b3"),
    ("contrast", 1, "8119779ad7ee6e45"),
    ("defocus_blur", 1, "28b3ad5fc1a2a2ac"),
    ("downscale", 2, "d2d6f744de6ecc94"),
    ("elastic", 1, "ea10100fd17475ea"),
    ("gamma", 1, "2d3ed23fbcafb3b2"),
    ("gaussian_blur", 3, "f44ec09e1d48b956"),
    ("gaussian_noise", 1, "bd8fb95394eafb97"),
    ("jpeg", 3, "39a8537e58c0ed71"),
    ("line_artifact", 1, "25d521fd4fc8804c"),
    ("motion_blur", 1, "61601bff631dd763"),
    ("occluder", 2, "60dc5e51533cc49f"),
    ("poisson_noise", 1, "44c43c42274e496b"),
    ("region_mask", 2, "239c4b069f7c67c2"),
    ("rotation", 2, "a9b1d80b8dd3b259"),
    ("salt_pepper", 1, "62fee504f8b25cbb"),
    ("scale", 2, "343239bbbd5a0af2"),
    ("speckle_noise", 1, "49addb925c8d1696"),
    ("translation", 2, "259199bff9ffe22c"),
    ("window_shift", 1, "e67ee8f90e0b3bb4"),
];

#[test]
fn output_bytes_change_only_with_the_version() {
    let mut table = String::new();
    let mut problems = Vec::new();
    for k in registry().iter() {
        let fp = output_fingerprint(k);
        table.push_str(&format!(
            "    ({:?}, {}, {:?}),\n",
            k.name(),
            k.version(),
            fp
        ));
        match GOLDEN.iter().find(|g| g.0 == k.name()) {
            Some(&(_, v, g)) if v == k.version() && g == fp => {}
            Some(&(_, v, _)) if v == k.version() => problems.push(format!(
                "{}: output bytes changed but the version is still {v}: either restore the \
                 bytes (an optimisation must not change them) or bump version() so content \
                 keys change, then update GOLDEN",
                k.name()
            )),
            _ => problems.push(format!(
                "{}: version {} is new: update GOLDEN (check the hand examples still hold)",
                k.name(),
                k.version()
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nCurrent table (GOLDEN in crates/clarity-perturb/tests/it/registry.rs; also run \
         UPDATE_DOCS=1 cargo test -p clarity-perturb for docs/perturbations.md):\n{table}",
        problems.join("\n")
    );
}
