//! The perturbed image a run hands to its adapter.
//!
//! Perturbation runs on the blocking pool under one of the `jobs` CPU permits; when the
//! adapter reads a file ([`Adapter::needs_image_file`](clarity_adapters::Adapter)), the image
//! is also encoded there as PNG ([`clarity_image::encode_png`]: fast deflate, one fixed
//! filter), so the file write itself is a plain copy of ready bytes.
//!
//! A recipe whose steps draw nothing from the RNG ([`Recipe::uses_seed`]) gives every seed of
//! a (case, cell) the same image, so it is prepared once and shared by those seeds: the first
//! run computes it, concurrent ones wait for it. Entries are dropped once every seed of the
//! cell took its copy, and the memo never holds more than `cap` entries (runs are admitted in
//! plan order — case, cell, seed — so the oldest entry is the smallest key).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clarity_image::Image;
use clarity_perturb::{Recipe, Step};
use tokio::sync::{OnceCell, Semaphore};

use crate::cohort::CohortCase;
use crate::plan::{Plan, Run};

/// A run's input image, and the PNG bytes of its image file when the adapter reads one.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub image: Arc<Image>,
    pub png: Option<Arc<Vec<u8>>>,
}

/// Time spent preparing: waiting for a CPU permit, and busy holding it.
#[derive(Default)]
pub(crate) struct Spent {
    pub wait: Duration,
    pub busy: Duration,
}

type Slot = Arc<OnceCell<Result<Prepared, String>>>;

struct Entry {
    slot: Slot,
    /// Seeds that have not taken their copy yet.
    left: usize,
}

pub(crate) struct Handoff {
    needs_file: bool,
    /// Per cell: whether its seeds share one prepared image.
    shared: Vec<bool>,
    seeds: usize,
    memo: Mutex<BTreeMap<(usize, usize), Entry>>,
    cap: usize,
}

impl Handoff {
    pub fn new(plan: &Plan, needs_file: bool, cap: usize) -> Self {
        let seeds = plan.seeds.len();
        let shared = (0..plan.n_cells())
            .map(|cell| {
                let recipe = Recipe {
                    steps: plan.steps(cell),
                };
                // An unknown step fails in `apply`, run by run, with the same message.
                seeds > 1 && matches!(recipe.uses_seed(), Ok(false))
            })
            .collect();
        Self {
            needs_file,
            shared,
            seeds,
            memo: Mutex::new(BTreeMap::new()),
            cap: cap.max(1),
        }
    }

    /// The image for `run` (perturbed now, or shared with another seed of its cell).
    pub async fn prepare(
        &self,
        cpu: &Semaphore,
        case: &CohortCase,
        steps: Vec<Step>,
        run: &Run,
        spent: &mut Spent,
    ) -> Result<Prepared, String> {
        if !self.shared.get(run.cell).copied().unwrap_or(false) {
            return self.compute(cpu, case, steps, run.seed, spent).await;
        }
        let slot = self.slot(run.case, run.cell);
        slot.get_or_init(|| self.compute(cpu, case, steps, run.seed, spent))
            .await
            .clone()
    }

    /// The memo slot of (case, cell), counting this seed's use.
    fn slot(&self, case: usize, cell: usize) -> Slot {
        let mut memo = self.memo.lock().expect("hand-off memo lock");
        let key = (case, cell);
        let entry = memo.entry(key).or_insert_with(|| Entry {
            slot: Arc::default(),
            left: self.seeds,
        });
        let slot = Arc::clone(&entry.slot);
        entry.left = entry.left.saturating_sub(1);
        if entry.left == 0 {
            memo.remove(&key);
        }
        while memo.len() > self.cap {
            memo.pop_first();
        }
        slot
    }

    async fn compute(
        &self,
        cpu: &Semaphore,
        case: &CohortCase,
        steps: Vec<Step>,
        seed: u64,
        spent: &mut Spent,
    ) -> Result<Prepared, String> {
        let t0 = Instant::now();
        let Ok(_permit) = cpu.acquire().await else {
            return Err("cancelled".into());
        };
        spent.wait += t0.elapsed();
        let t1 = Instant::now();
        let src = case.image.clone();
        let id = case.id.clone();
        let needs_file = self.needs_file;
        let r = tokio::task::spawn_blocking(move || {
            let image = Recipe { steps }
                .apply(&src, seed, &id)
                .map_err(|e| format!("perturbation failed: {e}"))?;
            let png = needs_file.then(|| Arc::new(clarity_image::encode_png(&image)));
            Ok(Prepared {
                image: Arc::new(image),
                png,
            })
        })
        .await;
        spent.busy += t1.elapsed();
        r.unwrap_or_else(|e| Err(format!("perturbation panicked: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use clarity_adapters::Adapter;

    use super::*;
    use crate::testing::MeanAdapter;

    fn prepared(seeds: &str) -> crate::Prepared {
        let text = format!(
            r#"
seeds = {seeds}
[cohort]
kind = "builtin"
n = 2
size = 64
[adapter]
kind = "builtin"
[axes]
"brightness.factor" = [0.5]
"gaussian_noise.sigma" = [0.1]
"#
        );
        let config = crate::parse_config(&text, Path::new("h.toml")).unwrap();
        let adapter = Arc::new(MeanAdapter::new(0.5)) as Arc<dyn Adapter>;
        crate::prepare_with_adapter(config, adapter).unwrap()
    }

    /// A cell whose recipe changes the image without the RNG (brightness alone), and one
    /// that draws noise.
    fn cells(p: &crate::Prepared) -> (usize, usize) {
        let recipe = |c: usize| Recipe {
            steps: p.plan.steps(c),
        };
        let src = &p.cohort[0].image;
        let bright = (0..p.plan.n_cells())
            .find(|&c| {
                !recipe(c).uses_seed().unwrap() && recipe(c).apply(src, 0, "x").unwrap() != **src
            })
            .unwrap();
        let noisy = (0..p.plan.n_cells())
            .find(|&c| recipe(c).uses_seed().unwrap())
            .unwrap();
        (bright, noisy)
    }

    #[tokio::test]
    async fn seeds_share_a_seed_free_image_and_not_a_noisy_one() {
        let p = prepared("[0, 1, 2]");
        let h = Handoff::new(&p.plan, true, 8);
        let cpu = Semaphore::new(1);
        let (bright, noisy) = cells(&p);
        assert!(h.shared[bright] && !h.shared[noisy]);
        let get = |cell: usize, seed: u64| {
            let run = Run {
                index: 0,
                case: 0,
                cell,
                seed,
                key: String::new(),
            };
            let case = &p.cohort[0];
            let steps = p.plan.steps(cell);
            let h = &h;
            let cpu = &cpu;
            async move {
                h.prepare(cpu, case, steps, &run, &mut Spent::default())
                    .await
                    .unwrap()
            }
        };
        let a = get(bright, 0).await;
        let b = get(bright, 1).await;
        assert!(Arc::ptr_eq(&a.image, &b.image), "computed twice");
        assert!(Arc::ptr_eq(
            a.png.as_ref().unwrap(),
            b.png.as_ref().unwrap()
        ));
        assert_eq!(h.memo.lock().unwrap().len(), 1);
        let c = get(bright, 2).await;
        assert!(Arc::ptr_eq(&a.image, &c.image));
        // Every seed took its copy: the entry is gone.
        assert_eq!(h.memo.lock().unwrap().len(), 0);
        // Noise draws from the seed: each seed its own image.
        let (x, y) = (get(noisy, 0).await, get(noisy, 1).await);
        assert_ne!(x.image, y.image);
        // The PNG decodes to the image.
        let d =
            clarity_image::decode_bytes(a.png.as_ref().unwrap(), "a", &Default::default()).unwrap();
        assert_eq!(d.image, *a.image);
    }

    #[test]
    fn one_seed_shares_nothing_and_the_memo_is_bounded() {
        let p = prepared("[0]");
        let h = Handoff::new(&p.plan, false, 8);
        assert!(h.shared.iter().all(|s| !s));
        let p = prepared("[0, 1]");
        let h = Handoff::new(&p.plan, false, 2);
        for case in 0..2 {
            for cell in 0..p.plan.n_cells() {
                h.slot(case, cell);
            }
        }
        assert!(h.memo.lock().unwrap().len() <= 2);
    }
}
