use clarity_core::Normalization;
use regex::Regex;

use crate::AnalysisError;

/// What an answer normalises to when no choice / regex matches.
pub const NONE: &str = "<none>";

/// A compiled [`Normalization`].
#[derive(Debug, Clone)]
pub struct Normalizer {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    Exact,
    Folded,
    Choices(Vec<(String, Vec<String>)>),
    Regex(Regex),
}

/// Lower-case, trim, collapse whitespace runs, strip trailing ASCII punctuation.
pub fn fold(s: &str) -> String {
    let lower = s.to_lowercase();
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .trim_end_matches(|c: char| c.is_ascii_punctuation())
        .trim_end()
        .to_string()
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

impl Normalizer {
    pub fn new(n: &Normalization) -> Result<Self, AnalysisError> {
        let mode = match n {
            Normalization::Exact => Mode::Exact,
            Normalization::Folded => Mode::Folded,
            Normalization::Choices { choices } => Mode::Choices(
                choices
                    .iter()
                    .map(|c| (c.clone(), words(&fold(c))))
                    .collect(),
            ),
            Normalization::Regex { pattern } => {
                Mode::Regex(Regex::new(pattern).map_err(|e| AnalysisError::Regex {
                    pattern: pattern.clone(),
                    message: e.to_string(),
                })?)
            }
        };
        Ok(Self { mode })
    }

    /// The normalised form of `answer`.
    ///
    /// - exact: unchanged;
    /// - folded: [`fold`];
    /// - choices: the first listed choice whose words occur consecutively as whole words in the
    ///   folded answer (returned as listed), else `"<none>"`;
    /// - regex: the first capture group (or the whole match when the pattern has no group), else
    ///   `"<none>"`.
    pub fn normalize(&self, answer: &str) -> String {
        match &self.mode {
            Mode::Exact => answer.to_string(),
            Mode::Folded => fold(answer),
            Mode::Choices(choices) => {
                let w = words(&fold(answer));
                for (c, cw) in choices {
                    if !cw.is_empty() && w.windows(cw.len()).any(|x| x == cw.as_slice()) {
                        return c.clone();
                    }
                }
                NONE.to_string()
            }
            Mode::Regex(re) => match re.captures(answer) {
                Some(caps) => caps
                    .get(1)
                    .or_else(|| caps.get(0))
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_else(|| NONE.to_string()),
                None => NONE.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(m: Normalization) -> Normalizer {
        Normalizer::new(&m).unwrap()
    }

    #[test]
    fn modes() {
        assert_eq!(n(Normalization::Exact).normalize(" Yes. "), " Yes. ");
        assert_eq!(
            n(Normalization::Folded).normalize("  Yes,   NODULE!. "),
            "yes, nodule"
        );
        let c = n(Normalization::Choices {
            choices: vec!["normal".into(), "nodule".into(), "pleural effusion".into()],
        });
        assert_eq!(c.normalize("I see a Nodule in the left lung."), "nodule");
        assert_eq!(c.normalize("abnormal"), NONE);
        assert_eq!(c.normalize("Pleural   effusion, small"), "pleural effusion");
        let r = n(Normalization::Regex {
            pattern: r"answer:\s*(\w+)".into(),
        });
        assert_eq!(r.normalize("Answer: x; answer: yes"), "yes");
        assert_eq!(r.normalize("nothing"), NONE);
        let whole = n(Normalization::Regex {
            pattern: r"\d+".into(),
        });
        assert_eq!(whole.normalize("size 12 mm"), "12");
    }

    #[test]
    fn bad_regex_is_an_error() {
        let e = Normalizer::new(&Normalization::Regex {
            pattern: "(".into(),
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid regex normalisation `(`"),
            "{e}"
        );
    }
}
