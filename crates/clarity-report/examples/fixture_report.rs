//! Writes the test fixture's report into a directory:
//! `cargo run --example fixture_report DIR [--analyze]` (`--analyze`: run the real analysis
//! instead of using the fixture's hand-written artifacts).
#[path = "../tests/it/fixture.rs"]
mod fixture;

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: fixture_report DIR [--analyze]"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    fixture::write(&dir);
    if std::env::args().any(|a| a == "--analyze") {
        clarity_analysis::analyze_dir(&dir, &clarity_analysis::AnalyzeOptions::default()).unwrap();
    }
    let src = fixture::Synthetic;
    let opts = clarity_report::ReportOptions {
        thumbnails: Some(&src),
        ..Default::default()
    };
    let s = clarity_report::write_report(&dir, &opts).unwrap();
    println!("{s:?}");
}
