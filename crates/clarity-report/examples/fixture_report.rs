//! Writes the test fixture's report into a directory: `cargo run --example fixture_report DIR`.
#[path = "../tests/it/fixture.rs"]
mod fixture;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: fixture_report DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    fixture::write(&dir);
    let src = fixture::Synthetic;
    let opts = clarity_report::ReportOptions {
        thumbnails: Some(&src),
        ..Default::default()
    };
    let s = clarity_report::write_report(&dir, &opts).unwrap();
    println!("{s:?}");
}
