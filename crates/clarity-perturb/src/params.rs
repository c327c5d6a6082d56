use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A raw or resolved parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Num(f64),
    Text(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Num(x) => write!(f, "{x}"),
            ParamValue::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// Raw parameters by name (sorted, so serialisation is stable).
pub type Params = BTreeMap<String, ParamValue>;

/// What values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// A real number in `[min, max]`.
    Float { min: f64, max: f64 },
    /// An integer in `[min, max]` (given as a number without fractional part).
    Int { min: i64, max: i64 },
    /// One of a fixed set of names.
    Choice(&'static [&'static str]),
}

/// Declaration of one kernel parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    /// Meaning, one short phrase.
    pub doc: &'static str,
    /// Unit, e.g. `"px"`, `"degrees"`, `"fraction of range"`, `""`.
    pub unit: &'static str,
    pub kind: ParamKind,
    /// Value used when the parameter is not given.
    pub default: DefaultValue,
    /// The value at which this parameter leaves the image unchanged, if any. The kernel is at
    /// identity when any parameter that has an identity value is at it (e.g. blur sigma 0 makes
    /// every other blur parameter irrelevant).
    pub identity: Option<DefaultValue>,
}

/// A `const`-friendly parameter value for declarations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Num(f64),
    Text(&'static str),
}

impl DefaultValue {
    pub fn to_value(self) -> ParamValue {
        match self {
            DefaultValue::Num(x) => ParamValue::Num(x),
            DefaultValue::Text(s) => ParamValue::Text(s.to_string()),
        }
    }
}

/// Parameters after validation: every declared parameter present, in range.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedParams {
    values: BTreeMap<&'static str, ParamValue>,
}

impl ResolvedParams {
    /// Numeric parameter. Panics if `name` is not a declared numeric parameter (a kernel bug).
    pub fn num(&self, name: &str) -> f64 {
        match self.values.get(name) {
            Some(ParamValue::Num(x)) => *x,
            other => panic!("kernel asked for numeric parameter {name:?}, resolved as {other:?}"),
        }
    }
    /// Choice parameter. Panics if `name` is not a declared choice parameter (a kernel bug).
    pub fn text(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(ParamValue::Text(s)) => s,
            other => panic!("kernel asked for choice parameter {name:?}, resolved as {other:?}"),
        }
    }
    /// All values, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }
}

/// Errors from validating parameters or applying a kernel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PerturbError {
    #[error("unknown perturbation {name:?}; known perturbations: {known}")]
    UnknownPerturbation { name: String, known: String },
    #[error("{perturbation}: unknown parameter {param:?}; allowed: {allowed}")]
    UnknownParam {
        perturbation: String,
        param: String,
        allowed: String,
    },
    #[error("{perturbation}.{param}: expected {expected}, got {got}")]
    InvalidValue {
        perturbation: String,
        param: String,
        expected: String,
        got: String,
    },
    #[error("{perturbation}: {message}")]
    Unsupported {
        perturbation: String,
        message: String,
    },
}

pub(crate) fn describe(kind: ParamKind) -> String {
    match kind {
        ParamKind::Float { min, max } => format!("a number in [{min}, {max}]"),
        ParamKind::Int { min, max } => format!("an integer in [{min}, {max}]"),
        ParamKind::Choice(names) => format!("one of {}", names.join(", ")),
    }
}

pub(crate) fn resolve(
    perturbation: &str,
    specs: &'static [ParamSpec],
    raw: &Params,
) -> Result<ResolvedParams, PerturbError> {
    for name in raw.keys() {
        if !specs.iter().any(|s| s.name == name) {
            return Err(PerturbError::UnknownParam {
                perturbation: perturbation.to_string(),
                param: name.clone(),
                allowed: specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            });
        }
    }
    let mut values = BTreeMap::new();
    for spec in specs {
        let value = raw
            .get(spec.name)
            .cloned()
            .unwrap_or_else(|| spec.default.to_value());
        let bad = |got: String| PerturbError::InvalidValue {
            perturbation: perturbation.to_string(),
            param: spec.name.to_string(),
            expected: describe(spec.kind),
            got,
        };
        match (spec.kind, &value) {
            (ParamKind::Float { min, max }, ParamValue::Num(x)) => {
                if !(x.is_finite() && *x >= min && *x <= max) {
                    return Err(bad(x.to_string()));
                }
            }
            (ParamKind::Int { min, max }, ParamValue::Num(x)) => {
                if !(x.is_finite() && x.fract() == 0.0 && *x >= min as f64 && *x <= max as f64) {
                    return Err(bad(x.to_string()));
                }
            }
            (ParamKind::Choice(names), ParamValue::Text(s)) => {
                if !names.contains(&s.as_str()) {
                    return Err(bad(format!("{s:?}")));
                }
            }
            (_, v) => return Err(bad(v.to_string())),
        }
        values.insert(spec.name, value);
    }
    Ok(ResolvedParams { values })
}

pub(crate) fn is_identity(specs: &'static [ParamSpec], params: &ResolvedParams) -> bool {
    specs.iter().any(|s| match s.identity {
        Some(id) => params.values.get(s.name) == Some(&id.to_value()),
        None => false,
    })
}
