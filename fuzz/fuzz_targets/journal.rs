//! The journal reader: `journal.jsonl` bytes → run records (a torn last line dropped, a bad
//! line elsewhere an error naming it). Every scanned record must read back at its offset, and
//! `Journal::open` must cut the file to the good prefix.
#![no_main]

use std::io::BufReader;
use std::sync::OnceLock;

use clarity_engine::journal::{Journal, read_at, scan};
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let path = dir.path().join("journal.jsonl");
    std::fs::write(&path, data).expect("write the journal");
    let mut records = Vec::new();
    let scanned = scan(&path, |offset, record| {
        records.push((offset, record));
        Ok(())
    });
    let good = match scanned {
        Ok(good) => good,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(good <= data.len() as u64, "good prefix {good} past the end");
    let mut reader = BufReader::new(std::fs::File::open(&path).expect("reopen"));
    for (offset, record) in &records {
        assert!(*offset < good);
        let again = read_at(&mut reader, &path, *offset).expect("a scanned record reads back");
        assert_eq!(&again, record, "record at {offset} reads back differently");
    }
    drop(reader);
    let mut reopened = 0usize;
    let journal = Journal::open(&path, |_, _| {
        reopened += 1;
        Ok(())
    })
    .expect("a journal that scans opens");
    drop(journal);
    assert_eq!(reopened, records.len());
    let len = std::fs::metadata(&path).expect("stat").len();
    assert_eq!(len, good, "open did not cut the journal to its good prefix");
});
