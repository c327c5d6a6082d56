//! `batch = B`: concurrent runs are gathered into model calls of up to B images. Which images
//! share a call, and how many there are, depends on timing, so an image's result must not: it
//! is checked here, bit for bit, at every position, beside different neighbours and in calls
//! of every size, through the gathering path (`run`, many at once) and through `run_batch`. The builtin export with its
//! final Softmax fails that (tract's Softmax rounds differently beside other images) and is
//! refused; its logits export (`output = "logits"`, softmax per image in the adapter) passes.

use std::path::Path;
use std::sync::Arc;

use clarity_adapters::onnx::{OnnxAdapter, OutputKind};
use clarity_adapters::{Adapter, RunInput, Workload};
use clarity_core::Observation;
use clarity_image::{BitDepth, Image};
use clarity_perturb::{ParamValue, Params, Recipe, Step};
use tract_onnx::pb::tensor_proto::DataType;

use crate::common::{build, builtin_config, committed_model, write_logits_model, write_relu_model};

/// The builtin model exported without its Softmax, `output = "logits"`, `batch = b`.
fn batched(b: usize) -> OnnxAdapter {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        write_logits_model(dir.path());
        dir
    });
    let mut c = builtin_config(dir.path().join("builtin-logits.onnx"));
    c.output = Some(OutputKind::Logits);
    c.batch = b;
    build(&c, dir.path()).unwrap()
}

/// Clean and noisy phantoms: 8 distinct images.
fn images() -> Vec<Image> {
    let noise = Recipe {
        steps: vec![Step {
            name: "gaussian_noise".into(),
            params: Params::from([("sigma".to_string(), ParamValue::Num(0.1))]),
        }],
    };
    let mut out = Vec::new();
    for case in clarity_phantom::cohort(4, 64, BitDepth::Eight, 21).unwrap() {
        out.push(noise.apply(&case.image, 3, &case.id).unwrap());
        out.push(case.image);
    }
    out
}

/// The observation as bytes: equal strings mean equal bits (floats print round-trip).
fn bits(o: &Observation) -> String {
    serde_json::to_string(o).unwrap()
}

fn input(i: usize, image: &Image) -> RunInput {
    RunInput {
        key: format!("k{i}"),
        case_id: format!("case-{i}"),
        image: Arc::new(image.clone()),
        image_path: None,
        prompt: None,
        seed: 0,
        perturbations: Vec::new(),
        work_dir: std::env::temp_dir(),
    }
}

#[test]
fn an_image_gives_the_same_bits_at_any_position_and_beside_any_neighbours() {
    let imgs = images();
    let a = batched(4);
    assert_eq!(a.batch(), 4);
    // Alone (padded with three zero images).
    let alone: Vec<String> = imgs
        .iter()
        .map(|im| bits(&a.predict(im).unwrap()))
        .collect();
    // In order (two full calls), reversed, rotated by one (a partial last call).
    let refs: Vec<&Image> = imgs.iter().collect();
    let in_order: Vec<String> = a
        .predict_batch(&refs)
        .iter()
        .map(|r| bits(r.as_ref().unwrap()))
        .collect();
    assert_eq!(in_order, alone);
    let reversed: Vec<&Image> = imgs.iter().rev().collect();
    let mut rev: Vec<String> = a
        .predict_batch(&reversed)
        .iter()
        .map(|r| bits(r.as_ref().unwrap()))
        .collect();
    rev.reverse();
    assert_eq!(rev, alone);
    let rotated: Vec<&Image> = imgs.iter().cycle().skip(1).take(7).collect();
    let rot: Vec<String> = a
        .predict_batch(&rotated)
        .iter()
        .map(|r| bits(r.as_ref().unwrap()))
        .collect();
    assert_eq!(rot[..], alone[1..]);
    // Calls of every size from 1 (padded to 2) to 8, starting at every image.
    let a8 = batched(8);
    for n in 1..=8 {
        for start in 0..8 {
            let call: Vec<&Image> = imgs.iter().cycle().skip(start).take(n).collect();
            let got = a8.predict_batch(&call);
            for (j, r) in got.iter().enumerate() {
                assert_eq!(
                    bits(r.as_ref().unwrap()),
                    alone[(start + j) % 8],
                    "call of {n} from {start}, row {j}"
                );
            }
        }
    }
    // Every combination of neighbours for the last position (8³ batches).
    for p in 0..8 {
        for q in 0..8 {
            for r in 0..8 {
                let batch = [&imgs[p], &imgs[q], &imgs[r], &imgs[5]];
                let got = a.predict_batch(&batch);
                for (j, i) in [p, q, r, 5].into_iter().enumerate() {
                    assert_eq!(
                        bits(got[j].as_ref().unwrap()),
                        alone[i],
                        "[{p} {q} {r} 5] at {j}"
                    );
                }
            }
        }
    }
    // Different answers across the set, so the check is not vacuous.
    let answers: std::collections::BTreeSet<_> = imgs
        .iter()
        .map(|im| a.predict(im).unwrap().answer)
        .collect();
    assert!(answers.len() >= 2, "{answers:?}");
}

#[test]
fn batch_one_and_batch_eight_agree_with_each_other() {
    // Not required for determinism (`batch` is in the identity, so their cache entries are
    // apart), but the builtin export gives the same answers and probabilities within 1e-6.
    let one = batched(1);
    let eight = batched(8);
    for im in images() {
        let (p, q) = (one.predict(&im).unwrap(), eight.predict(&im).unwrap());
        assert_eq!(p.answer, q.answer);
        for (label, x) in &p.probabilities {
            let y = q.probabilities[label];
            assert!((x - y).abs() < 1e-6, "{label}: {x} vs {y}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_runs_are_gathered_and_each_gets_its_own_result() {
    let imgs = images();
    let a = Arc::new(batched(4));
    let expected: Vec<String> = imgs
        .iter()
        .map(|im| bits(&a.predict(im).unwrap()))
        .collect();
    let Workload::Io { max_in_flight } = a.workload() else {
        panic!("a batching adapter keeps several runs in flight");
    };
    assert!(max_in_flight >= 8, "{max_in_flight}");
    // 40 runs at once: batches form by timing; every result must still be its image's.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let a = Arc::clone(&a);
        let inp = input(i, &imgs[i % imgs.len()]);
        tasks.push(tokio::spawn(async move { a.run(inp).await }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let got = t.await.unwrap().unwrap();
        assert_eq!(bits(&got), expected[i % imgs.len()], "run {i}");
    }
    // run_batch: the same bits.
    let inputs: Vec<RunInput> = imgs
        .iter()
        .enumerate()
        .map(|(i, im)| input(i, im))
        .collect();
    let got: Vec<String> = a
        .run_batch(inputs)
        .await
        .iter()
        .map(|r| bits(r.as_ref().unwrap()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn batch_is_in_the_identity_only_when_batching() {
    let one = batched(1).identity();
    assert!(one.settings.get("batch").is_none(), "{}", one.settings);
    let four = batched(4).identity();
    assert_eq!(four.settings["batch"], 4);
    assert_eq!(four.version, one.version);
    assert_eq!(batched(1).workload(), Workload::Cpu);
}

#[test]
fn bad_batch_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (b, want) in [(0, "batch must be from 1 to 256"), (257, "got 257")] {
        let mut c = builtin_config(committed_model());
        c.batch = b;
        let e = build(&c, Path::new(".")).unwrap_err();
        assert!(e.contains(want), "batch = {b}: {e}");
    }
    // The export with its final Softmax: tract's Softmax is not the same bits beside other
    // images, so batching it would make results depend on timing.
    let mut c = builtin_config(committed_model());
    c.batch = 4;
    let e = build(&c, Path::new(".")).unwrap_err();
    assert!(
        e.contains("depending on the other images in its batch")
            && e.contains("output = \"logits\""),
        "{e}"
    );
    // A model exported for exactly one image cannot take four.
    let fixed = dir.path().join("fixed.onnx");
    write_relu_model(&fixed, DataType::Float, &[1, 1, 4, 4]);
    let mut c = builtin_config(&fixed);
    c.labels = (0..16).map(|i| format!("l{i}")).collect();
    c.batch = 4;
    let e = build(&c, dir.path()).unwrap_err();
    assert!(
        e.contains("batch = 4") && e.contains("fixed batch dimension of 1"),
        "{e}"
    );
    // … but one at a time still works.
    c.batch = 1;
    build(&c, dir.path()).unwrap();
}
