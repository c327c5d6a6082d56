use super::*;

fn rec(i: usize) -> RunRecord {
    let outcome = if i % 5 == 3 {
        Outcome::Failed {
            error: format!("boom {i}"),
            attempts: 2,
        }
    } else {
        let mut probabilities = BTreeMap::new();
        probabilities.insert("a".to_string(), 0.25);
        probabilities.insert("b".to_string(), 0.75);
        let mut metadata = BTreeMap::new();
        if i.is_multiple_of(2) {
            metadata.insert("tokens".to_string(), serde_json::json!(i));
        }
        Outcome::Ok {
            observation: Observation {
                answer: Some(if i.is_multiple_of(3) { "yes" } else { "no" }.into()),
                justification: i.is_multiple_of(4).then(|| format!("because {i}")),
                confidence: Some(0.5 + i as f64 / 1e4),
                entropy: (i % 2 == 1).then_some(0.125),
                probabilities: if i.is_multiple_of(7) {
                    BTreeMap::new()
                } else {
                    probabilities
                },
                saliency: (i % 3 != 2).then(|| Saliency {
                    width: 2,
                    height: 3,
                    values: vec![0.0, 0.1, 0.2, 0.3, 0.4, i as f32 / 1e3],
                }),
                metadata,
            },
        }
    };
    RunRecord {
        key: format!("{i:064x}"),
        case_id: format!("case-{:03}", i / 10),
        cell: i % 10,
        seed: u64::MAX - 5 + (i % 3) as u64,
        outcome,
    }
}

fn write(records: &[RunRecord]) -> Vec<u8> {
    let mut w = TableWriter::new(Vec::new()).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    let (bytes, rows) = w.finish().unwrap();
    assert_eq!(rows, records.len() as u64);
    bytes
}

#[test]
fn round_trip_and_same_bytes() {
    let records: Vec<RunRecord> = (0..ROWS_PER_GROUP + 100).map(rec).collect();
    let a = write(&records);
    let b = write(&records);
    assert_eq!(a, b, "same records, same bytes");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(OBSERVATIONS_FILE);
    std::fs::write(&p, &a).unwrap();
    assert!(is_table(&p));
    assert_eq!(row_count(&p).unwrap(), records.len() as u64);
    let mut back = Vec::new();
    read(&p, |r| {
        back.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(back.len(), records.len());
    // The table holds what the journal holds: the canonical JSON of each record.
    let line = |r: &RunRecord| clarity_core::json::to_canonical_line(r).unwrap();
    for (x, y) in back.iter().zip(&records) {
        assert_eq!(line(x), line(y));
    }
    // Two row groups, split by row count.
    let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
    assert_eq!(r.num_row_groups(), 2);
    assert_eq!(r.metadata().file_metadata().created_by(), Some(CREATED_BY));
}

#[test]
fn empty_table_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    std::fs::write(&p, write(&[])).unwrap();
    let mut n = 0;
    read(&p, |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 0);
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, b"PAR1 not really").unwrap();
    let e = read(&bad, |_| Ok(())).unwrap_err().to_string();
    assert!(
        e.contains("bad.parquet") && e.contains("not a readable Parquet file"),
        "{e}"
    );
    assert!(!is_table(&bad));
    // A callback error names the row.
    std::fs::write(&p, write(&[rec(0), rec(1)])).unwrap();
    let e = read(&p, |r| {
        if r.cell == 1 {
            Err("nope".into())
        } else {
            Ok(())
        }
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("t.parquet") && e.contains("row 2: nope"), "{e}");
}
