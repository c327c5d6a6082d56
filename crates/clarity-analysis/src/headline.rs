//! The cohort verdict and the headline lines built on it (`docs/analysis.md`, "Verdicts"):
//! computed once by the analysis, written into metrics.json, and rendered as they are by the
//! CLI, `--json` and the report.

use crate::analysis::Analysis;
use crate::verdicts::{
    Condition, Op, Outcome, Refined, Verdicts, baseline, describe, judge, more_cases,
};

/// The cohort verdict of the headline: `esi < cliff_threshold` on every axis, weighed with the
/// baseline accuracy (wholly below the threshold: breaks before any perturbation; straddling it:
/// at best inconclusive).
pub fn cohort(a: &Analysis, refined: &[Refined]) -> Verdicts {
    let cond = Condition {
        axis: None,
        metric: "esi".into(),
        op: Op::Lt,
        threshold: a.settings.cliff_threshold,
    };
    let mut v = judge(a, &cond, refined).expect("no axis is named");
    let th = clarity_core::json::format_num(cond.threshold);
    if let Some(e) = v.baseline_accuracy {
        let o = &mut v.overall;
        if e.hi.is_some_and(|hi| hi < cond.threshold) && o.outcome != Outcome::Breaks {
            o.outcome = Outcome::Breaks;
            o.summary = format!(
                "breaks — accuracy at the baseline {} is below {th} before any perturbation (ESI, agreement with the baseline answer, then measures how stably the model stays wrong).",
                describe(&e)
            );
        } else if o.outcome == Outcome::Holds && e.lo.is_some_and(|lo| lo < cond.threshold) {
            let cases = baseline(a).cases;
            o.outcome = Outcome::Inconclusive;
            o.more_cases = more_cases(&e, cases, &cond, true);
            o.summary = format!(
                "inconclusive — ESI holds along every axis, but accuracy at the baseline {} straddles {th}{}.",
                describe(&e),
                o.more_cases
                    .map(|m| format!("; about {m} more cases would decide it"))
                    .unwrap_or_default()
            );
        }
    }
    v
}

/// The headline lines (the same in metrics.json, on stdout, in `--json` and in the report): the
/// verdict, one line per walk, baseline accuracy, baseline self-agreement, failed runs and
/// (R2L) manifest mismatches.
pub fn headline(a: &Analysis, v: &Verdicts, manifest_mismatches: usize) -> Vec<String> {
    let mut h = vec![format!("Verdict: {}", v.overall.summary)];
    h.extend(v.walks.iter().map(|w| w.summary.clone()));
    let th = clarity_core::json::format_num(v.condition.threshold);
    let base = baseline(a);
    h.push(match &v.baseline_accuracy {
        Some(e) if v.baseline_accuracy_below => format!(
            "Baseline accuracy {}: below the threshold {th} — the model is mostly wrong before any perturbation, so a stable ESI means it stays wrong.",
            describe(e)
        ),
        Some(e) => format!("Baseline accuracy {}.", describe(e)),
        None if base.ok == 0 => {
            "Baseline accuracy: not measured (every baseline run failed).".to_string()
        }
        None => "Baseline accuracy: not measured (no labelled case).".to_string(),
    });
    let sa = &a.self_agreement;
    h.push(match &sa.all_seeds {
        Some(e) => format!(
            "Baseline self-agreement over {} seeds: {}{}.",
            sa.seeds,
            describe(e),
            if sa.flagged {
                format!(
                    " — below {}: the model disagrees with itself unperturbed",
                    clarity_core::json::format_num(sa.threshold)
                )
            } else {
                String::new()
            }
        ),
        None if sa.seeds < 2 => "Baseline self-agreement: not measured (one seed).".to_string(),
        None => format!(
            "Baseline self-agreement: not measured — no case has two successful baseline runs ({} of {} baseline runs failed).",
            base.failures, base.n
        ),
    });
    let r = &a.runs;
    if r.failed > 0 {
        h.push(format!(
            "{} of {} runs failed ({:.0}%) and are left out of the metrics.",
            r.failed,
            r.records,
            100.0 * v.overall.failure_share
        ));
    }
    if manifest_mismatches > 0 {
        h.push(format!(
            "{manifest_mismatches} R2L manifest hash mismatch(es)."
        ));
    }
    h
}
