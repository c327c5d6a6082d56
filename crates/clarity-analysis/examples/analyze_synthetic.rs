//! Writes a synthetic sweep (default 100k runs) into DIR and analyses it, for timing and peak
//! memory: `/usr/bin/time -v cargo run --release -p clarity-analysis --example
//! analyze_synthetic DIR [CASES] [SEEDS]`.

#[path = "../benches/synth/mod.rs"]
mod synth;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: analyze_synthetic DIR [CASES] [SEEDS]")?,
    );
    let cases: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let seeds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    std::fs::create_dir_all(&dir)?;
    if !dir.join("observations.jsonl").exists() {
        let n = synth::write(&dir, cases, seeds);
        eprintln!("wrote {n} runs into {}", dir.display());
    }
    let t = std::time::Instant::now();
    let s = clarity_analysis::analyze_dir(&dir, &clarity_analysis::AnalyzeOptions::default())?;
    eprintln!("analysed {} runs in {:.2?}", s.runs.records, t.elapsed());
    println!("{}", s.headline);
    Ok(())
}
