//! CSV cells safe to open in a spreadsheet.

use std::borrow::Cow;

/// Escapes a CSV cell against formula injection (OWASP "CSV Injection"): a cell that starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`, so a spreadsheet
/// shows it as text instead of evaluating it (a cohort file named `=HYPERLINK(…).png`).
/// Numbers (`-0.5`, `+3`, `-inf`) are left as they are: a spreadsheet reads them as numbers,
/// never as formulas, and tables stay numeric.
pub fn formula_safe(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::formula_safe;

    #[test]
    fn formulas_are_prefixed_and_numbers_are_not() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://x\",\"a\").png",
                "'=HYPERLINK(\"http://x\",\"a\").png",
            ),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("case1", "case1"),
            ("a=b", "a=b"),
            ("-0.5", "-0.5"),
            ("+3", "+3"),
            ("1e-3", "1e-3"),
            ("", ""),
        ] {
            assert_eq!(formula_safe(cell), want, "{cell:?}");
        }
    }
}
