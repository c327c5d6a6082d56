//! Canonical JSON for artifacts: sorted keys, two-space indentation, floats rounded to
//! [`DECIMALS`] places and printed in shortest round-trip form, NaN/∞ rejected.
//!
//! serde_json would silently turn NaN into `null`; [`to_canonical_string`] refuses instead, so
//! an undefined value has to be modelled explicitly (`Option`, absent key).

use serde::Serialize;
use serde_json::Value;

/// Decimal places kept for floats in artifacts.
pub const DECIMALS: i32 = 9;

/// Errors producing canonical JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("non-finite number at {path}")]
    NonFinite { path: String },
    #[error("cannot serialise: {0}")]
    Serde(#[from] serde_json::Error),
}

/// Rounds to [`DECIMALS`] places; `-0.0` becomes `0.0`.
pub fn round(x: f64) -> f64 {
    let p = 10f64.powi(DECIMALS);
    let r = (x * p).round() / p;
    if r == 0.0 { 0.0 } else { r }
}

/// Shortest round-trip text of a number; integral values without a fraction (`2`, not `2.0`).
pub fn format_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Serialises `value` canonically (pretty, sorted keys, rounded floats, trailing newline).
pub fn to_canonical_string<T: Serialize>(value: &T) -> Result<String, JsonError> {
    let v = to_canonical_value(value)?;
    let mut s = serde_json::to_string_pretty(&v)?;
    s.push('\n');
    Ok(s)
}

/// Serialises `value` canonically on one line (for JSONL), without a newline.
pub fn to_canonical_line<T: Serialize>(value: &T) -> Result<String, JsonError> {
    let v = to_canonical_value(value)?;
    Ok(serde_json::to_string(&v)?)
}

/// Converts to a [`Value`] with rounded floats, checking for non-finite numbers. Keys are sorted
/// because serde_json's map is a `BTreeMap` (the `preserve_order` feature must stay off).
pub fn to_canonical_value<T: Serialize>(value: &T) -> Result<Value, JsonError> {
    // serde_json maps NaN to `null` both in `to_value` and `to_string`, so a dedicated pass
    // finds non-finite floats first and names where they are.
    let mut checker = NanCheck::default();
    value
        .serialize(&mut checker)
        .map_err(|e| JsonError::NonFinite { path: e.0 })?;
    let mut v = serde_json::to_value(value)?;
    round_in_place(&mut v);
    Ok(v)
}

fn round_in_place(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().expect("f64");
            *n = serde_json::Number::from_f64(round(x)).expect("checked finite");
        }
        Value::Array(a) => a.iter_mut().for_each(round_in_place),
        Value::Object(o) => o.values_mut().for_each(round_in_place),
        _ => {}
    }
}

mod nan_check;
use nan_check::NanCheck;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn rejects_nan_anywhere() {
        let mut m = BTreeMap::new();
        m.insert("a", vec![1.0, f64::NAN]);
        let err = to_canonical_string(&m).unwrap_err();
        assert!(
            err.to_string().contains("non-finite number at a[1]"),
            "{err}"
        );
        assert!(to_canonical_string(&f64::INFINITY).is_err());
    }

    #[test]
    fn rounds_and_sorts() {
        let mut m = BTreeMap::new();
        m.insert("z", 0.1 + 0.2);
        m.insert("a", -0.0000000000001);
        assert_eq!(to_canonical_line(&m).unwrap(), r#"{"a":0.0,"z":0.3}"#);
    }

    #[test]
    fn format_num_is_short() {
        assert_eq!(format_num(2.0), "2");
        assert_eq!(format_num(0.5), "0.5");
        assert_eq!(format_num(-1.25), "-1.25");
    }
}
