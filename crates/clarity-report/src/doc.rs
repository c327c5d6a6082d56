//! The report's content as a list of sections and blocks, built once from [`ReportData`] and
//! laid out twice (HTML, PDF), so both outputs always say the same thing.

use crate::model::{AnswerView, Cliff, Estimate, McRow, Metric, ReportData, Thumb, WorstCase};

/// Heatmaps drawn at most (the rest stay in surface.json).
pub const MAX_SLICES: usize = 12;

/// Rows of the Monte Carlo table (lowest majority agreement first).
pub const MAX_MC_ROWS: usize = 20;
use crate::plots::{self, axis_title, f3};
use crate::scene::Scene;

/// One side of a before/after pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub heading: String,
    pub answer: String,
    pub justification: String,
    pub confidence: Option<f64>,
    pub thumb: Option<Thumb>,
    pub has_saliency: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Para(String),
    /// Muted explanatory text.
    Note(String),
    /// The headline findings (emphasised list).
    Headline(Vec<String>),
    KeyValues(Vec<(String, String)>),
    Table {
        caption: String,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        /// Right-aligned (numeric) columns.
        numeric: Vec<bool>,
    },
    Figure {
        scene: Scene,
        caption: String,
    },
    Case {
        title: String,
        before: Box<Side>,
        after: Box<Side>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Stable anchor id (`summary`, `curves`, …).
    pub id: &'static str,
    pub title: String,
    pub blocks: Vec<Block>,
}

/// Ids of every section, in order (the HTML and PDF always carry all of them).
pub const SECTION_IDS: [&str; 10] = [
    "summary",
    "curves",
    "surfaces",
    "gradients",
    "montecarlo",
    "classes",
    "worst",
    "cases",
    "glossary",
    "provenance",
];

pub fn est(e: &Estimate) -> String {
    match (e.lo, e.hi) {
        (Some(lo), Some(hi)) => format!("{} [{}, {}]", f3(e.value), f3(lo), f3(hi)),
        _ => f3(e.value),
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(f3).unwrap_or_else(|| "–".into())
}

fn value_with_unit(d: &ReportData, axis: usize, level: usize) -> String {
    let a = &d.axes[axis];
    let v = a.values.get(level).map(|v| v.label()).unwrap_or_default();
    if a.unit.is_empty() {
        v
    } else {
        format!("{v} {}", a.unit)
    }
}

/// A cliff's crossing with its interval: `1.27 [1.1, 1.8]`, `beyond` for an open far end, the
/// count of resamples that never cross when there are some.
fn crossing_cell(c: &Cliff) -> String {
    let Some(i) = &c.interval else {
        return c.crossing.map_or_else(|| "–".into(), f3);
    };
    let end = |x: Option<f64>| x.map_or_else(|| "beyond".into(), f3);
    let never = if i.never_cross > 0 {
        format!("; {} of {} never cross", i.never_cross, i.resamples)
    } else {
        String::new()
    };
    let at = c.crossing.map_or_else(|| "none".into(), f3);
    format!("{at} [{}, {}]{never}", end(i.near), end(i.far))
}

/// `axis` or `axis (decreasing)` when the axis is walked both ways from its identity.
fn cliff_name(axis: &clarity_core::Axis, c: &Cliff, walks: usize) -> String {
    match &c.direction {
        Some(dir) if walks > 1 => format!("{} ({dir})", axis.name),
        _ => axis.name.clone(),
    }
}

/// The headline: the analysis's own lines (metrics.json `headline`, the verdicts the CLI prints
/// too); for a sweep analysed before verdicts existed, which axes break the model first (ranked
/// by cliffs.json's ranking: the ESI crossing's position on the kernels' severity presets,
/// independent of the grid; without a shared scale the axes are listed unranked), and which hold.
pub fn headline(d: &ReportData) -> Vec<String> {
    if let Some(h) = &d.headline {
        return h.clone();
    }
    let esi_cliffs: Vec<&Cliff> = d
        .cliffs
        .iter()
        .filter(|c| c.metric == Metric::Esi && c.axis < d.axes.len())
        .collect();
    let mut broken: Vec<(f64, usize, usize, Option<f64>, String)> = Vec::new();
    let mut holds: Vec<String> = Vec::new();
    for (i, axis) in d.axes.iter().enumerate() {
        let mine: Vec<&&Cliff> = esi_cliffs.iter().filter(|c| c.axis == i).collect();
        if mine.is_empty() {
            continue;
        }
        for c in &mine {
            if let Some(level) = c.level {
                // The rank on the severity presets (cliffs.json's ranking), never the position
                // along the grid; unranked crossings sort after, in axis order.
                broken.push((
                    c.rank.map_or(f64::INFINITY, |r| r as f64),
                    i,
                    level,
                    c.metric_value,
                    cliff_name(axis, c, mine.len()),
                ));
            }
        }
        if mine.iter().all(|c| c.level.is_none()) {
            holds.push(axis.name.clone());
        }
    }
    broken.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out = Vec::new();
    let others = if d.axes.len() > 1 {
        ", the other axes at identity"
    } else {
        ""
    };
    let ranked = broken.len() <= 1 || broken.iter().all(|b| b.0.is_finite());
    for (rank, (_, axis, level, value, name)) in broken.iter().enumerate() {
        let (axis, level) = (*axis, *level);
        let at = value_with_unit(d, axis, level);
        let esi = value
            .map(|v| format!(" (ESI {}{others})", f3(v)))
            .unwrap_or_default();
        if !ranked {
            out.push(format!(
                "{name}: ESI falls below {} at {at}{esi} (not ranked against the other axes: no shared severity scale).",
                f3(d.esi_threshold)
            ));
        } else if rank == 0 {
            out.push(format!(
                "{name} breaks the model first: ESI falls below {} at {at}{esi}.",
                f3(d.esi_threshold)
            ));
        } else {
            out.push(format!(
                "Then {name}: below {} at {at}{esi}.",
                f3(d.esi_threshold)
            ));
        }
    }
    if !holds.is_empty() {
        out.push(format!(
            "Holds over the tested range (ESI ≥ {}): {}.",
            f3(d.esi_threshold),
            holds.join(", ")
        ));
    }
    if out.is_empty() {
        out.push("No cliff analysis in this sweep.".into());
    }
    let flagged = match (d.baseline_flag, d.baseline_agreement) {
        (Some((flag, _)), _) => flag,
        (None, Some(b)) => b.value < 0.9,
        (None, None) => false,
    };
    if let Some(b) = d.baseline_agreement
        && flagged
    {
        out.push(format!(
            "Warning: the model disagrees with itself on the unperturbed baseline (self-agreement {}); part of the flips are not caused by the perturbations.",
            f3(b.value)
        ));
    }
    if d.runs.failed > 0 {
        out.push(format!(
            "{} of {} runs failed (see the per-case table).",
            d.runs.failed, d.runs.planned
        ));
    }
    out
}

fn side(heading: String, v: &AnswerView) -> Side {
    Side {
        heading,
        answer: v.answer.clone(),
        justification: v.justification.clone(),
        confidence: v.confidence,
        thumb: v.thumb.clone(),
        has_saliency: v.saliency.is_some(),
    }
}

fn case_block(w: &WorstCase) -> Block {
    let label = w
        .label
        .as_deref()
        .map(|l| format!(", label {l}"))
        .unwrap_or_default();
    let esi = w
        .esi
        .map(|e| format!(", case ESI {}", f3(e)))
        .unwrap_or_default();
    Block::Case {
        title: format!("{}{label}{esi}", w.case_id),
        before: Box::new(side(format!("baseline, seed {}", w.seed), &w.baseline)),
        after: Box::new(side(format!("{}, seed {}", w.cell, w.seed), &w.perturbed)),
    }
}

/// Builds every section.
pub fn build(d: &ReportData) -> Vec<Section> {
    let mut out = Vec::new();

    // Summary.
    let grid = if d.axes.is_empty() {
        format!("{} cells", d.cells)
    } else {
        let dims: Vec<String> = d
            .axes
            .iter()
            .map(|a| format!("{} × {}", a.name, a.values.len()))
            .collect();
        format!("{} cells ({})", d.cells, dims.join(", "))
    };
    let mut kv = vec![
        ("Model".to_string(), d.provenance.adapter_identity.clone()),
        (
            "Cohort".to_string(),
            format!(
                "{} cases{}{}",
                d.cohort.cases,
                if d.cohort.labelled > 0 {
                    format!(", {} labelled", d.cohort.labelled)
                } else {
                    String::new()
                },
                if d.cohort.name.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", d.cohort.name)
                }
            ),
        ),
        ("Grid".to_string(), grid),
        (
            "Seeds".to_string(),
            format!(
                "{} ({})",
                d.seeds.len(),
                d.seeds
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "Runs".to_string(),
            format!(
                "{} planned, {} ok, {} failed",
                d.runs.planned, d.runs.ok, d.runs.failed
            ),
        ),
        (
            "Baseline self-agreement".to_string(),
            d.baseline_agreement.map(|e| est(&e)).unwrap_or_else(|| {
                if d.seeds.len() < 2 {
                    "not measured (one seed)".into()
                } else {
                    "not measured (no case has two successful baseline runs)".into()
                }
            }),
        ),
    ];
    if !d.model.settings.is_empty() && d.model.settings != "{}" && d.model.settings != "null" {
        kv.push(("Adapter settings".to_string(), d.model.settings.clone()));
    }
    out.push(Section {
        id: "summary",
        title: "Summary".into(),
        blocks: {
            let mut b = vec![Block::Headline(headline(d))];
            if !d.refined.is_empty() {
                b.push(Block::Para(
                    "Refined cliffs (clarity run --refine, refine.json):".into(),
                ));
                b.push(Block::Headline(
                    d.refined.iter().map(|r| r.summary.clone()).collect(),
                ));
            }
            b.push(Block::KeyValues(kv));
            b
        },
    });

    // Curves.
    let mut blocks = vec![Block::Note(
        "Each axis's curves are its line through the baseline: every other axis at its identity, i.e. this perturbation alone; the cliffs are read from this line. Bands are bootstrap 95% confidence intervals over cases; accuracy is dashed with hollow squares, drawn over ESI so both show where they coincide. With several axes, the light dashed line is ESI pooled over every level of the other axes (the marginal in surface.json): secondary, it mixes in the other perturbations. Levels are equally spaced (the gradient section uses the real parameter spacing). The dashed vertical line marks the ESI cliff, the dashed horizontal line the threshold, and a grey band the interval a refined cliff is located in (refine.json)."
            .into(),
    )];
    for c in &d.curves {
        let Some(axis) = d.axes.get(c.axis) else {
            continue;
        };
        let cliffs: Vec<&Cliff> = d
            .cliffs
            .iter()
            .filter(|x| x.axis == c.axis && x.metric == Metric::Esi)
            .collect();
        let refined = d
            .refined
            .iter()
            .find(|r| r.axis == c.axis && r.metric == Metric::Esi)
            .map(|r| r.located.unwrap_or(r.bracket));
        let on_line = if c.line.is_empty() {
            ""
        } else {
            ", other axes at identity"
        };
        blocks.push(Block::Figure {
            scene: plots::stability_chart(axis, c, &cliffs, d.esi_threshold, refined),
            caption: format!(
                "Stability along {}{on_line}; bands: 95% CI",
                axis_title(axis)
            ),
        });
        let main = if c.line.is_empty() {
            &c.metrics
        } else {
            &c.line
        };
        let pooled = (!c.line.is_empty())
            .then(|| c.metrics.get(&Metric::Esi))
            .flatten();
        // CSI stays in metrics.json (it measures spread across cases, see the glossary); the
        // table keeps to what fits a PDF page next to the pooled column.
        let metrics: Vec<Metric> = [
            Metric::Esi,
            Metric::Accuracy,
            Metric::Confidence,
            Metric::Drift,
            Metric::Edm,
        ]
        .into_iter()
        .filter(|m| main.contains_key(m))
        .collect();
        let mut header = vec![axis_title(axis)];
        header.extend(metrics.iter().map(|m| m.label().to_string()));
        if pooled.is_some() {
            header.push("ESI pooled".into());
        }
        let rows = axis
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut row = vec![v.label()];
                for m in &metrics {
                    row.push(
                        main[m]
                            .get(i)
                            .copied()
                            .flatten()
                            .map(|e| est(&e))
                            .unwrap_or_else(|| "–".into()),
                    );
                }
                if let Some(p) = pooled {
                    row.push(
                        p.get(i)
                            .copied()
                            .flatten()
                            .map(|e| est(&e))
                            .unwrap_or_else(|| "–".into()),
                    );
                }
                row
            })
            .collect();
        let mut numeric = vec![false];
        numeric.extend(metrics.iter().map(|_| true));
        if pooled.is_some() {
            numeric.push(true);
        }
        blocks.push(Block::Table {
            caption: if pooled.is_some() {
                format!(
                    "{}: values [95% CI] on the line through the baseline; last column: ESI pooled over the other axes",
                    axis.name
                )
            } else {
                format!("{}: values [95% CI]", axis.name)
            },
            header,
            rows,
            numeric,
        });
    }
    let cliff_rows: Vec<Vec<String>> = d
        .cliffs
        .iter()
        .filter_map(|c| {
            let axis = d.axes.get(c.axis)?;
            Some(vec![
                axis.name.clone(),
                c.direction.clone().unwrap_or_else(|| "–".into()),
                c.metric.label().to_string(),
                f3(c.threshold),
                c.level
                    .map(|l| value_with_unit(d, c.axis, l))
                    .unwrap_or_else(|| "none".into()),
                c.steepest
                    .map(|(l, drop)| format!("{} at {}", f3(drop), value_with_unit(d, c.axis, l)))
                    .unwrap_or_else(|| "–".into()),
                crossing_cell(c),
                match (c.case_flips, c.recovers_at) {
                    (Some((n, cross, back)), _) => {
                        format!("{cross} of {n} fall below, {back} come back")
                    }
                    (None, Some(l)) => format!("back above at {}", value_with_unit(d, c.axis, l)),
                    (None, None) => "–".into(),
                },
            ])
        })
        .collect();
    if !cliff_rows.is_empty() {
        blocks.push(Block::Table {
            caption: "Cliffs: first level below the threshold, the steepest drop, the crossing interpolated between the levels around it with its 95% interval over case resamples (\"beyond\": more than 2.5% of resamples never cross in the tested range), and how many cases fall below along the line and come back above it further along (non-monotone)".into(),
            header: vec![
                "axis".into(),
                "direction".into(),
                "metric".into(),
                "threshold".into(),
                "first below".into(),
                "steepest drop".into(),
                "crossing [95% interval]".into(),
                "cases".into(),
            ],
            rows: cliff_rows,
            numeric: vec![false, false, false, true, false, false, false, false],
        });
    }
    if !d.refined.is_empty() {
        blocks.push(refined_table(d));
    }
    if d.curves.is_empty() {
        blocks.push(Block::Note("No per-axis curves in this sweep.".into()));
    }
    out.push(Section {
        id: "curves",
        title: "Stability per axis".into(),
        blocks,
    });

    // Surfaces: at most MAX_SLICES heatmaps on a fixed [0, 1] colour scale.
    let mut blocks = Vec::new();
    // ESI and accuracy (the cliff metrics); the other metrics' slices stay in surface.json.
    let shown = |m: Metric| matches!(m, Metric::Esi | Metric::Accuracy);
    let drawable: Vec<_> = d
        .slices
        .iter()
        .filter(|sl| shown(sl.metric) && sl.x_axis < d.axes.len() && sl.y_axis < d.axes.len())
        .collect();
    // An accuracy slice identical to the ESI slice of the same axes (every baseline answer
    // correct) is not drawn twice.
    let same_as_esi = |sl: &crate::model::Slice| {
        sl.metric == Metric::Accuracy
            && drawable.iter().any(|e| {
                e.metric == Metric::Esi
                    && e.x_axis == sl.x_axis
                    && e.y_axis == sl.y_axis
                    && e.values == sl.values
            })
    };
    let duplicates = drawable.iter().filter(|sl| same_as_esi(sl)).count();
    let drawable: Vec<_> = drawable
        .iter()
        .filter(|sl| !same_as_esi(sl))
        .copied()
        .collect();
    if duplicates > 0 {
        blocks.push(Block::Note(format!(
            "Accuracy equals ESI on every cell of {duplicates} slice(s) (every baseline answer is correct), so only the ESI heatmap is drawn there."
        )));
    }
    for sl in drawable.iter().take(MAX_SLICES) {
        let (xa, ya) = (&d.axes[sl.x_axis], &d.axes[sl.y_axis]);
        let contour = matches!(sl.metric, Metric::Esi | Metric::Accuracy);
        let pooled = if d.axes.len() > 2 {
            ", pooled over the other axes"
        } else {
            ""
        };
        let caption = if contour {
            format!(
                "{} over {} × {}{pooled}; the black line is the {} = {} contour",
                sl.metric.label(),
                xa.name,
                ya.name,
                sl.metric.label(),
                f3(d.esi_threshold)
            )
        } else {
            format!("{} over {} × {}", sl.metric.label(), xa.name, ya.name)
        };
        blocks.push(Block::Figure {
            scene: plots::heatmap(xa, ya, sl, contour.then_some(d.esi_threshold)),
            caption,
        });
    }
    if drawable.len() > MAX_SLICES {
        blocks.push(Block::Note(format!(
            "{} more 2-D slices are in surface.json.",
            drawable.len() - MAX_SLICES
        )));
    }
    if blocks.is_empty() {
        blocks.push(Block::Note(
            "No 2-D surfaces: the sweep has fewer than two axes.".into(),
        ));
    }
    out.push(Section {
        id: "surfaces",
        title: "2-D surfaces".into(),
        blocks,
    });

    // Gradients.
    let mut blocks = Vec::new();
    // ESI and accuracy; every metric's gradients are in gradients.json.
    let same_as_esi = |g: &crate::model::Gradient| {
        g.metric == Metric::Accuracy
            && d.gradients.iter().any(|e| {
                e.metric == Metric::Esi
                    && e.axis == g.axis
                    && e.per_unit == g.per_unit
                    && e.per_step == g.per_step
            })
    };
    for g in d
        .gradients
        .iter()
        .filter(|g| matches!(g.metric, Metric::Esi | Metric::Accuracy) && !same_as_esi(g))
    {
        let Some(axis) = d.axes.get(g.axis) else {
            continue;
        };
        if g.metric == Metric::Esi {
            blocks.push(Block::Figure {
                scene: plots::gradient_chart(axis, g),
                caption: format!(
                    "Change of ESI per level step along {} (towards larger values, pooled over the other axes); vermillion: ESI falls moving away from the identity level, blue: it rises or holds{}",
                    axis_title(axis),
                    if d.gradients.iter().any(|x| x.axis == g.axis && same_as_esi(x)) {
                        "; accuracy's gradient is the same here"
                    } else {
                        ""
                    }
                ),
            });
        }
        let unit = if axis.unit.is_empty() {
            "unit".to_string()
        } else {
            axis.unit.clone()
        };
        blocks.push(Block::Table {
            caption: format!(
                "Gradient of {} along {}: per parameter unit (real spacing) and per step",
                g.metric.label(),
                axis.name
            ),
            header: vec![axis_title(axis), format!("per {unit}"), "per step".into()],
            rows: axis
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    vec![
                        v.label(),
                        opt(g.per_unit.get(i).copied().flatten()),
                        opt(g.per_step.get(i).copied().flatten()),
                    ]
                })
                .collect(),
            numeric: vec![false, true, true],
        });
    }
    if blocks.is_empty() {
        blocks.push(Block::Note("No gradients in this sweep.".into()));
    }
    out.push(Section {
        id: "gradients",
        title: "Gradients".into(),
        blocks,
    });

    // Monte Carlo.
    let (title, blocks) = match &d.montecarlo {
        Some(mc) if mc.k > 1 => {
            // The least self-consistent cells first (seeds agreeing least with their case's
            // most frequent answer); the full table is montecarlo.json.
            let mut order: Vec<&McRow> = mc.rows.iter().collect();
            let key = |r: &McRow| r.seed_agreement.or(r.majority_agreement).unwrap_or(2.0);
            order.sort_by(|a, b| key(a).total_cmp(&key(b)));
            let shown = order.len().min(MAX_MC_ROWS);
            let what = "answers pools every case and seed; entropy is that distribution's (nats); seed agreement is the mean over cases of the share of a case's seeds giving its most frequent answer, seed entropy the mean over cases of the entropy across its seeds (0: the seeds agree); same majority as baseline is over the cases where both answers have a strict majority (ties are counted, never broken)";
            let caption = if shown < order.len() {
                format!(
                    "Answers over the {} seeds: the {shown} of {} cells with the lowest seed agreement (all in montecarlo.json). {what}",
                    mc.k,
                    order.len()
                )
            } else {
                format!("Answers over the {} seeds, per cell. {what}", mc.k)
            };
            let count = |n: Option<usize>| n.map_or_else(|| "–".into(), |n| n.to_string());
            (
                format!("Monte Carlo (K = {})", mc.k),
                vec![Block::Table {
                    caption,
                    header: vec![
                        "cell".into(),
                        "answers".into(),
                        "entropy of answers".into(),
                        "seed agreement".into(),
                        "seed entropy".into(),
                        "same majority as baseline".into(),
                        "ties".into(),
                        "confidence mean".into(),
                        "confidence variance".into(),
                    ],
                    rows: order[..shown]
                        .iter()
                        .map(|r| {
                            let mut answers: Vec<String> = r
                                .answers
                                .iter()
                                .take(3)
                                .map(|(a, n)| format!("{a} ×{n}"))
                                .collect();
                            if r.answers.len() > 3 {
                                let rest: usize = r.answers[3..].iter().map(|(_, n)| n).sum();
                                answers.push(format!("{rest} other"));
                            }
                            vec![
                                r.cell.clone(),
                                answers.join(", "),
                                opt(r.answer_entropy),
                                opt(r.seed_agreement),
                                opt(r.seed_entropy),
                                match (r.majority_agreement, r.majority_cases) {
                                    (Some(m), Some(n)) => format!("{} of {n}", f3(m)),
                                    (m, _) => opt(m),
                                },
                                count(r.ties),
                                opt(r.confidence_mean),
                                opt(r.confidence_var),
                            ]
                        })
                        .collect(),
                    numeric: vec![false, false, true, true, true, true, true, true, true],
                }],
            )
        }
        _ => (
            "Monte Carlo".into(),
            vec![Block::Note(
                "One seed per cell (K = 1): no Monte Carlo panel.".into(),
            )],
        ),
    };
    out.push(Section {
        id: "montecarlo",
        title,
        blocks,
    });

    // Per class.
    let blocks = if d.per_class.is_empty() {
        vec![Block::Note(
            "No ground-truth labels: no per-class breakdown.".into(),
        )]
    } else {
        vec![Block::Table {
            caption: "Accuracy and stability per ground-truth class (from the analysis)".into(),
            header: vec![
                "class".into(),
                "cases".into(),
                "baseline accuracy".into(),
                "worst accuracy".into(),
                "worst ESI".into(),
                "first break".into(),
            ],
            rows: d
                .per_class
                .iter()
                .map(|r| {
                    vec![
                        r.label.clone(),
                        r.cases.to_string(),
                        opt(r.baseline_accuracy),
                        opt(r.worst_accuracy),
                        opt(r.worst_esi),
                        r.first_break.clone().unwrap_or_else(|| "none".into()),
                    ]
                })
                .collect(),
            numeric: vec![false, true, true, true, true, false],
        }]
    };
    out.push(Section {
        id: "classes",
        title: "Per class".into(),
        blocks,
    });

    // Worst cases.
    let mut blocks = Vec::new();
    if let Some(note) = &d.thumbnails_note {
        blocks.push(Block::Note(note.clone()));
    }
    if d.worst.is_empty() {
        blocks.push(Block::Note("No answer flipped in this sweep.".into()));
    } else {
        blocks.push(Block::Note(
            "Cases with the lowest ESI: the baseline against the mildest cell where the answer flipped (same seed). Saliency, where the adapter gave it, is blended over the image."
                .into(),
        ));
    }
    blocks.extend(d.worst.iter().map(case_block));
    out.push(Section {
        id: "worst",
        title: "Worst cases".into(),
        blocks,
    });

    // Per case.
    let blocks = vec![Block::Table {
        caption: "Every case: baseline answer, ESI over all cells, flips and failures".into(),
        header: vec![
            "case".into(),
            "label".into(),
            "baseline answer".into(),
            "ESI".into(),
            "runs".into(),
            "flips".into(),
            "failures".into(),
            "first flip".into(),
        ],
        rows: d
            .cases
            .iter()
            .map(|c| {
                vec![
                    c.case_id.clone(),
                    c.label.clone().unwrap_or_else(|| "–".into()),
                    c.baseline_answer.clone(),
                    opt(c.esi),
                    c.runs.to_string(),
                    c.flips.to_string(),
                    c.failures.to_string(),
                    c.first_flip.clone().unwrap_or_else(|| "–".into()),
                ]
            })
            .collect(),
        numeric: vec![false, false, false, true, true, true, true, false],
    }];
    out.push(Section {
        id: "cases",
        title: "Per case".into(),
        blocks,
    });

    out.push(Section {
        id: "glossary",
        title: "Glossary".into(),
        blocks: vec![Block::KeyValues(
            GLOSSARY
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )],
    });

    // Provenance.
    let p = &d.provenance;
    out.push(Section {
        id: "provenance",
        title: "Provenance".into(),
        blocks: vec![Block::KeyValues(vec![
            ("Plan hash".into(), p.plan_hash.clone()),
            ("Tool version".into(), p.tool_version.clone()),
            ("Adapter identity".into(), p.adapter_identity.clone()),
            (
                "Bundle hash (SHA-256 of bundle.json)".into(),
                p.bundle_hash
                    .clone()
                    .unwrap_or_else(|| "no bundle.json".into()),
            ),
            ("Source".into(), p.source.clone()),
        ])],
    });
    out
}

/// The refined cliffs as a table (bracket, crossing interval, what the data support).
fn refined_table(d: &ReportData) -> Block {
    let num = |x: f64| crate::plots::short(x);
    let end = |x: Option<f64>| x.map(num).unwrap_or_else(|| "not bounded".into());
    Block::Table {
        caption: "Refined cliffs (refine.json): bisection on the line through the baseline; the crossing's 95% interval is over case resamples, and bisection stops once the bracket is narrower than it".into(),
        header: vec![
            "axis".into(),
            "metric".into(),
            "sweep bracket".into(),
            "refined bracket".into(),
            "rounds".into(),
            "crossing [95% CI]".into(),
            "data support".into(),
            "stopped".into(),
            "non-monotone cases".into(),
        ],
        rows: d
            .refined
            .iter()
            .filter_map(|r| {
                let axis = d.axes.get(r.axis)?;
                Some(vec![
                    axis.name.clone(),
                    r.metric.label().to_string(),
                    format!("[{}, {}]", num(r.initial.0), num(r.initial.1)),
                    format!("[{}, {}]", num(r.bracket.0), num(r.bracket.1)),
                    r.rounds.to_string(),
                    format!(
                        "{} [{}, {}]",
                        r.crossing.map(num).unwrap_or_else(|| "–".into()),
                        end(r.crossing_lo),
                        end(r.crossing_hi)
                    ),
                    r.located
                        .map(|(a, b)| format!("[{}, {}]", num(a), num(b)))
                        .unwrap_or_else(|| "not bounded: more cases needed".into()),
                    r.stopped.replace('_', " "),
                    if r.cohort_recrossings > 0 {
                        format!(
                            "{} (cohort re-crosses {}×)",
                            r.non_monotone_cases, r.cohort_recrossings
                        )
                    } else {
                        r.non_monotone_cases.to_string()
                    },
                ])
            })
            .collect(),
        numeric: vec![false, false, false, false, true, false, false, false, false],
    }
}

/// Every metric and verdict word the report uses, in plain words (also in docs/report.md).
pub const GLOSSARY: [(&str, &str); 12] = [
    (
        "ESI (evidence stability index)",
        "Fraction of a cell's (case, seed) runs whose normalised answer equals the same case's and seed's answer on the unperturbed baseline. 1 = the answer never changes. It compares with the baseline answer, not with the label: a model that is always wrong can be perfectly stable.",
    ),
    (
        "Flip rate",
        "1 − ESI: the fraction of runs whose answer changed.",
    ),
    (
        "Accuracy",
        "Fraction of successful runs whose normalised answer equals the case's ground-truth label (only where labels exist).",
    ),
    (
        "CSI (confidence stability index)",
        "Per cell, 1 − min(var(confidence) / 0.25, 1), the variance taken over every case and seed of the cell. It measures how much confidences spread across cases, not how stable one case's confidence is under perturbation; kept under this name for compatibility with earlier CLARITY sweeps.",
    ),
    (
        "Confidence shift (mean |Δconfidence|)",
        "Mean over runs of |confidence − the same case's and seed's baseline confidence|: the paired, per-case change of confidence caused by the perturbation.",
    ),
    (
        "EDM (entropy drift)",
        "Mean over runs of |answer entropy − the same case's baseline entropy|, in nats (where the adapter reports an entropy).",
    ),
    (
        "Justification drift",
        "Normalised Levenshtein distance between the run's justification and the baseline's (distance / longer length; 0 = identical, 1 = nothing in common).",
    ),
    (
        "n_eff (effective sample size)",
        "The number of independent cases behind an estimate: distinct cases, with duplicate seeds (identical answers at temperature 0) counted once. Intervals are over cases, so they narrow with n_eff, not with the run count.",
    ),
    (
        "Cliff",
        "Along one axis, on its line through the baseline (every other axis at its identity), the first level whose ESI or accuracy is below the threshold. The crossing is interpolated between the levels around it, with a 95% interval over case resamples; lines that fall below and come back are marked, per case too. Axes are ranked by the crossing's position on the kernels' severity presets (not by position along the grid), or not ranked when they share no such scale; refined cliffs add a bisected bracket.",
    ),
    (
        "breaks / holds",
        "breaks: the whole 95% interval is below the threshold; holds: the whole interval is at or above it.",
    ),
    (
        "inconclusive",
        "The 95% interval straddles the threshold: the data do not decide; more cases would.",
    ),
    (
        "not measured",
        "Too few successful runs to estimate anything (the failure share is given).",
    ),
];
