//! Coverage of the ESI interval by simulation (the table in `docs/analysis.md`):
//!
//! ```sh
//! cargo run --release -p clarity-analysis --example coverage            # 1000 cells per row
//! cargo run --release -p clarity-analysis --example coverage -- 2000    # more cells
//! ```
//!
//! Every scenario at 8, 32 and 100 cases with 2 seeds per case; the analysis's interval (cluster
//! Wilson with design effect) beside the percentile bootstrap over cases (1000 resamples) that
//! earlier versions used. Seeded: the same command prints the same table.

use clarity_analysis::coverage::{Scenario, simulate};

fn main() {
    let cells: usize = std::env::args()
        .nth(1)
        .map(|a| {
            a.parse()
                .expect("the argument is the number of cells per row")
        })
        .unwrap_or(1000);
    println!(
        "| scenario | true ESI | cases | coverage | mean width | mean lower bound | percentile bootstrap: coverage | zero-width |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, sc) in Scenario::table() {
        for cases in [8, 32, 100] {
            let r = simulate(name, sc, cases, 2, cells, 1000, 2026);
            let w = r.wilson_deff;
            let p = r.percentile_bootstrap.expect("bootstrap requested");
            println!(
                "| {name} | {:.3} | {cases} | {:.1}% | {:.3} | {:.3} | {:.1}% | {:.1}% |",
                r.true_esi,
                100.0 * w.coverage,
                w.mean_width,
                w.mean_lo,
                100.0 * p.coverage,
                100.0 * p.zero_width,
            );
        }
    }
    println!("\n{cells} simulated cells per row, 2 seeds per case, nominal 95%.");
}
