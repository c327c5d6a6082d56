//! Kernel declarations: `const` parameter constructors, preset helpers, the `unsupported` error
//! and the `meta!` macro that implements a kernel's descriptive methods.

use crate::params::{DefaultValue, ParamKind, ParamSpec, ParamValue, Params, PerturbError};

/// `const` constructor for a float parameter declaration.
pub(crate) const fn float(
    name: &'static str,
    doc: &'static str,
    unit: &'static str,
    min: f64,
    max: f64,
    default: f64,
    identity: Option<f64>,
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        unit,
        kind: ParamKind::Float { min, max },
        default: DefaultValue::Num(default),
        identity: match identity {
            Some(x) => Some(DefaultValue::Num(x)),
            None => None,
        },
    }
}

/// `const` constructor for an integer parameter declaration.
pub(crate) const fn int(
    name: &'static str,
    doc: &'static str,
    unit: &'static str,
    min: i64,
    max: i64,
    default: i64,
    identity: Option<i64>,
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        unit,
        kind: ParamKind::Int { min, max },
        default: DefaultValue::Num(default as f64),
        identity: match identity {
            Some(x) => Some(DefaultValue::Num(x as f64)),
            None => None,
        },
    }
}

/// `const` constructor for a choice parameter declaration (no identity value).
pub(crate) const fn choice(
    name: &'static str,
    doc: &'static str,
    names: &'static [&'static str],
    default: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        unit: "",
        kind: ParamKind::Choice(names),
        default: DefaultValue::Text(default),
        identity: None,
    }
}

/// Builds a parameter set from numeric pairs.
pub(crate) fn nums(pairs: &[(&str, f64)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), ParamValue::Num(*v)))
        .collect()
}

/// Five presets of a single numeric parameter.
pub(crate) fn presets1(name: &str, levels: [f64; 5]) -> [Params; 5] {
    levels.map(|v| nums(&[(name, v)]))
}

/// Error for a kernel that cannot process an input.
pub(crate) fn unsupported(kernel: &str, message: impl Into<String>) -> PerturbError {
    PerturbError::Unsupported {
        perturbation: kernel.to_string(),
        message: message.into(),
    }
}

/// Implements the descriptive methods of [`crate::Perturbation`].
macro_rules! meta {
    ($name:literal, $version:literal, $family:ident, random = $random:literal, $desc:literal, $params:expr) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn version(&self) -> u32 {
            $version
        }
        fn family(&self) -> crate::Family {
            crate::Family::$family
        }
        fn description(&self) -> &'static str {
            $desc
        }
        fn params(&self) -> &'static [crate::ParamSpec] {
            &$params
        }
        fn is_random(&self) -> bool {
            $random
        }
    };
}
pub(crate) use meta;
