//! Plan invariants over random grids.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use clarity_adapters::Adapter;
use clarity_core::AxisValue;
use clarity_engine::testing::MeanAdapter;
use clarity_engine::{parse_config, prepare_with_adapter};
use proptest::prelude::*;

fn list(xs: &[u32]) -> String {
    // Values on a 0.25 grid in [0, 4] (brightness/contrast factor range).
    let v: Vec<String> = xs.iter().map(|x| format!("{}", *x as f64 / 4.0)).collect();
    format!("[{}]", v.join(", "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn grid_invariants(
        b in prop::collection::vec(0u32..=16, 1..5),
        c in prop::collection::vec(0u32..=16, 1..4),
        seeds in prop::collection::btree_set(0u64..1000, 1..4),
    ) {
        let seeds: Vec<u64> = seeds.into_iter().collect();
        let text = format!(
            "seeds = {seeds:?}\n[cohort]\nkind = \"builtin\"\nn = 2\nsize = 64\n[adapter]\nkind = \"builtin\"\n[axes]\n\"brightness.factor\" = {}\n\"contrast.factor\" = {}\n",
            list(&b),
            list(&c)
        );
        let config = parse_config(&text, Path::new("p.toml")).unwrap();
        let p = prepare_with_adapter(config, Arc::new(MeanAdapter::new(0.5)) as Arc<dyn Adapter>)
            .unwrap();
        let plan = &p.plan;
        for (axis, raw) in plan.axes.iter().zip([&b, &c]) {
            let xs: Vec<f64> = axis.values.iter().filter_map(AxisValue::as_f64).collect();
            // Sorted, deduplicated, identity included, nothing else added.
            prop_assert!(xs.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(xs.contains(&1.0));
            let mut want: BTreeSet<u32> = raw.iter().copied().collect();
            want.insert(4);
            prop_assert_eq!(xs.len(), want.len());
        }
        let n_cells: usize = plan.axes.iter().map(|a| a.values.len()).product();
        let cells: Vec<_> = plan.cells().collect();
        prop_assert_eq!(cells.len(), n_cells);
        prop_assert_eq!(cells.iter().filter(|c| c.is_baseline).count(), 1);
        prop_assert!(plan.recipe(plan.baseline).is_empty());
        // Only the baseline has an empty recipe (every other cell moves some axis).
        prop_assert_eq!((0..n_cells).filter(|&i| plan.recipe(i).is_empty()).count(), 1);
        let runs: Vec<_> = plan.runs().collect();
        prop_assert_eq!(runs.len(), 2 * n_cells * seeds.len());
        let keys: BTreeSet<&str> = runs.iter().map(|r| r.key.as_str()).collect();
        prop_assert_eq!(keys.len(), runs.len());
        // Plan order: case, then cell, then seed (in the order listed).
        for (i, r) in runs.iter().enumerate() {
            let s = seeds.len();
            prop_assert_eq!(r.case, i / (n_cells * s));
            prop_assert_eq!(r.cell, (i / s) % n_cells);
            prop_assert_eq!(r.seed, seeds[i % s]);
        }
    }
}
