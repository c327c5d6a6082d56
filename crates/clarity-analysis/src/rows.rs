//! Turns run records into compact per-run rows compared with their baseline run.

use std::collections::{BTreeMap, BTreeSet};

use clarity_core::{Case, Cell, RunRecord};

use crate::Normalizer;

/// Normalised Levenshtein distance between two justifications over Unicode scalar values:
/// `distance / max(len_a, len_b)`, 0 for two empty strings.
///
/// The distance is exact: Hyyrö's block-based bit-parallel algorithm within Ukkonen's band
/// (`crate::lev`); tests check it against a plain DP. Two ASCII strings are compared as bytes
/// (one byte per scalar value, the same distance) without UTF-8 decoding.
pub fn justification_drift(a: &str, b: &str) -> f64 {
    if a.is_ascii() && b.is_ascii() {
        let m = a.len().max(b.len());
        if m == 0 {
            return 0.0;
        }
        return crate::lev::distance_bytes(a.as_bytes(), b.as_bytes()) as f64 / m as f64;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let m = a.len().max(b.len());
    if m == 0 {
        return 0.0;
    }
    crate::lev::distance_chars(&a, &b) as f64 / m as f64
}

/// The comparison of an ok run with its baseline run (same case and seed, baseline cell).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cmp {
    pub agree: bool,
    pub drift: Option<f64>,
    pub dconf: Option<f64>,
    pub dent: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OkRow {
    /// Interned normalised answer (see [`Rows::answers`]).
    pub answer: u32,
    pub confidence: Option<f64>,
    pub entropy: Option<f64>,
    /// Normalised answer equals the normalised label (cases with a label only).
    pub correct: Option<bool>,
    /// `None` when the baseline run failed or is missing: excluded from the comparisons.
    pub cmp: Option<Cmp>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    pub cell: u32,
    pub case: u32,
    pub seed: u32,
    pub ok: Option<OkRow>,
}

/// A run record reduced to what the analysis keeps, before answer interning.
pub(crate) struct Prepared {
    cell: u32,
    case: u32,
    seed: u32,
    case_id: String,
    ok: Option<PreparedOk>,
}

struct PreparedOk {
    answer: String,
    confidence: Option<f64>,
    entropy: Option<f64>,
    correct: Option<bool>,
    /// Baseline answer id and the comparison (its `agree` is set at commit).
    base: Option<(u32, Cmp)>,
}

/// All rows of a sweep, sorted by (cell, case, seed), with the interned answers.
pub(crate) struct Rows {
    pub rows: Vec<Row>,
    pub answers: Vec<String>,
}

struct Base {
    answer: u32,
    confidence: Option<f64>,
    entropy: Option<f64>,
    justification: Option<String>,
}

/// Two passes over the records: [`RowBuilder::add_baseline`] for every record (only baseline
/// ones are kept), then [`RowBuilder::prepare`] + [`RowBuilder::commit`] for every record. Works on a stream, so a journal
/// never has to be held in memory.
pub(crate) struct RowBuilder<'a> {
    cells: usize,
    baseline: usize,
    case_index: BTreeMap<&'a str, u32>,
    seed_index: BTreeMap<u64, u32>,
    seeds: Vec<u64>,
    labels: Vec<Option<String>>,
    norm: &'a Normalizer,
    bases: BTreeMap<(u32, u32), Base>,
    intern: BTreeMap<String, u32>,
    answers: Vec<String>,
    seen: BTreeSet<(u32, u32, u32)>,
    rows: Vec<Row>,
}

impl<'a> RowBuilder<'a> {
    pub fn new(
        cells: &[Cell],
        baseline: usize,
        cases: &'a [Case],
        seeds: &[u64],
        norm: &'a Normalizer,
    ) -> Self {
        Self {
            cells: cells.len(),
            baseline,
            case_index: cases
                .iter()
                .enumerate()
                .map(|(i, c)| (c.id.as_str(), i as u32))
                .collect(),
            seed_index: seeds
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, i as u32))
                .collect(),
            seeds: seeds.to_vec(),
            labels: cases
                .iter()
                .map(|c| c.label.as_deref().map(|l| norm.normalize(l)))
                .collect(),
            norm,
            bases: BTreeMap::new(),
            intern: BTreeMap::new(),
            answers: Vec::new(),
            seen: BTreeSet::new(),
            rows: Vec::new(),
        }
    }

    fn locate(&self, r: &RunRecord) -> Result<(u32, u32, u32), String> {
        let case = *self
            .case_index
            .get(r.case_id.as_str())
            .ok_or_else(|| format!("case `{}` is not in the plan's cases", r.case_id))?;
        let seed = *self
            .seed_index
            .get(&r.seed)
            .ok_or_else(|| format!("seed {} is not in the plan's seeds", r.seed))?;
        if r.cell >= self.cells {
            return Err(format!(
                "cell {} is out of range (the plan has {} cells)",
                r.cell, self.cells
            ));
        }
        Ok((r.cell as u32, case, seed))
    }

    fn answer_id(&mut self, raw: Option<&str>) -> u32 {
        let a = self.norm.normalize(raw.unwrap_or(""));
        self.intern(a)
    }

    fn intern(&mut self, a: String) -> u32 {
        if let Some(id) = self.intern.get(&a) {
            return *id;
        }
        let id = self.answers.len() as u32;
        self.answers.push(a.clone());
        self.intern.insert(a, id);
        id
    }

    /// First pass: remembers successful baseline runs.
    pub fn add_baseline(&mut self, r: &RunRecord) -> Result<(), String> {
        let (cell, case, seed) = self.locate(r)?;
        if cell as usize != self.baseline {
            return Ok(());
        }
        let Some(o) = r.observation() else {
            return Ok(());
        };
        let answer = self.answer_id(o.answer.as_deref());
        let justification = o.justification.as_deref().map(str::to_string);
        if self.bases.contains_key(&(case, seed)) {
            return Err(format!(
                "duplicate baseline run for case `{}`, seed {}",
                r.case_id, r.seed
            ));
        }
        self.bases.insert(
            (case, seed),
            Base {
                answer,
                confidence: o.confidence.filter(|c| c.is_finite()),
                entropy: o.entropy.filter(|e| e.is_finite()),
                justification,
            },
        );
        Ok(())
    }

    /// Second pass, the read-only, costly part (normalisation, drift): safe to run on many
    /// records in parallel, then [`Self::commit`] them in order.
    pub fn prepare(&self, r: &RunRecord) -> Result<Prepared, String> {
        let (cell, case, seed) = self.locate(r)?;
        let ok = r.observation().map(|o| {
            let answer = self.norm.normalize(o.answer.as_deref().unwrap_or(""));
            let confidence = o.confidence.filter(|c| c.is_finite());
            let entropy = o.entropy.filter(|e| e.is_finite());
            let correct = self.labels[case as usize].as_ref().map(|l| &answer == l);
            let base = self.bases.get(&(case, seed)).map(|b| {
                let drift = match (&b.justification, o.justification.as_deref()) {
                    (Some(base), Some(j)) => Some(justification_drift(base, j)),
                    _ => None,
                };
                (
                    b.answer,
                    Cmp {
                        agree: false,
                        drift,
                        dconf: b.confidence.zip(confidence).map(|(x, y)| (x - y).abs()),
                        dent: b.entropy.zip(entropy).map(|(x, y)| (x - y).abs()),
                    },
                )
            });
            PreparedOk {
                answer,
                confidence,
                entropy,
                correct,
                base,
            }
        });
        Ok(Prepared {
            cell,
            case,
            seed,
            case_id: r.case_id.clone(),
            ok,
        })
    }

    /// Records a prepared row (duplicate check, answer interning).
    pub fn commit(&mut self, p: Prepared) -> Result<(), String> {
        if !self.seen.insert((p.cell, p.case, p.seed)) {
            return Err(format!(
                "duplicate run for case `{}`, cell {}, seed {}",
                p.case_id, p.cell, self.seeds[p.seed as usize]
            ));
        }
        let ok = p.ok.map(|o| {
            let answer = self.intern(o.answer);
            OkRow {
                answer,
                confidence: o.confidence,
                entropy: o.entropy,
                correct: o.correct,
                cmp: o.base.map(|(b, mut c)| {
                    c.agree = b == answer;
                    c
                }),
            }
        });
        self.rows.push(Row {
            cell: p.cell,
            case: p.case,
            seed: p.seed,
            ok,
        });
        Ok(())
    }

    pub fn finish(self) -> Rows {
        // Answer ids depend on record order; remap them to sorted order so nothing downstream
        // does.
        let mut order: Vec<u32> = (0..self.answers.len() as u32).collect();
        order.sort_by(|a, b| self.answers[*a as usize].cmp(&self.answers[*b as usize]));
        let mut remap = vec![0u32; order.len()];
        for (new, old) in order.iter().enumerate() {
            remap[*old as usize] = new as u32;
        }
        let answers = order
            .iter()
            .map(|o| self.answers[*o as usize].clone())
            .collect();
        let mut rows = self.rows;
        for r in &mut rows {
            if let Some(ok) = &mut r.ok {
                ok.answer = remap[ok.answer as usize];
            }
        }
        rows.sort_by_key(|r| (r.cell, r.case, r.seed));
        Rows { rows, answers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_examples() {
        assert_eq!(justification_drift("", ""), 0.0);
        assert_eq!(justification_drift("", "abc"), 1.0);
        assert_eq!(justification_drift("kitten", "sitting"), 3.0 / 7.0);
        // Unicode scalar values, not bytes: one substitution in two characters.
        assert_eq!(justification_drift("éa", "èa"), 0.5);
    }
}
