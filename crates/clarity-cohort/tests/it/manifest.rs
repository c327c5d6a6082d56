use std::path::Path;

use clarity_cohort::{CohortError, load, load_manifest};
use clarity_image::{DecodeOptions, Samples};
use serde_json::json;

use crate::util::{dicom_ct, png_gray8, tiff_gray16, write};

fn opts() -> DecodeOptions {
    DecodeOptions::default()
}

/// images/one.png, images/two.tif, images/ct.dcm beside a `lists/` folder.
fn images(root: &Path) {
    png_gray8(&root.join("images/one.png"), 1, 1, &[11]);
    tiff_gray16(&root.join("images/two.tif"), 1, 1, &[2222]);
    dicom_ct(&root.join("images/ct.dcm"), [1000, 1000]);
}

fn err_of(root: &Path, name: &str, text: &str) -> String {
    let path = root.join(name);
    write(&path, text.as_bytes());
    let e = load_manifest(&path, &opts()).unwrap_err();
    e.to_string().replace(&root.display().to_string(), "ROOT")
}

#[test]
fn csv_manifest_in_manifest_order_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    images(root);
    let manifest = root.join("lists/cases.csv");
    write(
        &manifest,
        b"id,path,prompt,label,site,age\n\
          z-last,../images/two.tif,\"Is there a nodule, yes or no?\",nodule,Lyon,61\n\
          a-first,../images/one.png,,,Oslo,\n\
          ct,../images/ct.dcm,Where?,normal,Oslo,40\n",
    );
    let cases = load_manifest(&manifest, &opts()).unwrap();
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["z-last", "a-first", "ct"]);
    assert_eq!(
        cases[0].prompt.as_deref(),
        Some("Is there a nodule, yes or no?")
    );
    assert_eq!(cases[0].label.as_deref(), Some("nodule"));
    assert_eq!(cases[0].source, "../images/two.tif");
    assert_eq!(cases[0].image.samples(), &Samples::U16(vec![2222]));
    assert_eq!(
        serde_json::to_value(&cases[0].metadata).unwrap(),
        json!({"age": "61", "site": "Lyon"})
    );
    assert!(cases[1].prompt.is_none() && cases[1].label.is_none());
    assert_eq!(
        serde_json::to_value(&cases[1].metadata).unwrap(),
        json!({"age": "", "site": "Oslo"})
    );
    assert_eq!(cases[1].image.samples(), &Samples::U8(vec![11]));
    // HU 0 in window c=0 w=100 → ((0+0.5)/99+0.5)*65535 = 33098.5 → 33098.
    assert_eq!(cases[2].image.samples(), &Samples::U16(vec![33098, 33098]));
    assert_eq!(load(&manifest, &opts()).unwrap(), cases);
}

#[test]
fn jsonl_manifest_keeps_json_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    images(root);
    let manifest = root.join("cases.ndjson");
    write(
        &manifest,
        br#"{"id": "b", "path": "images/one.png", "label": 1, "extra": {"k": [1, 2.5]}, "flag": true}

{"id": "a", "path": "images/two.tif", "prompt": "Nodule?", "label": null}
"#,
    );
    let cases = load_manifest(&manifest, &opts()).unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!((cases[0].id.as_str(), cases[1].id.as_str()), ("b", "a"));
    assert_eq!(cases[0].label.as_deref(), Some("1"));
    assert_eq!(
        serde_json::to_value(&cases[0].metadata).unwrap(),
        json!({"extra": {"k": [1, 2.5]}, "flag": true})
    );
    assert_eq!(cases[1].prompt.as_deref(), Some("Nodule?"));
    assert!(cases[1].label.is_none());
    assert_eq!(cases[1].source, "images/two.tif");
}

#[test]
fn csv_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    images(root);
    assert_eq!(
        err_of(root, "m1.csv", "id,image\na,images/one.png\n"),
        "ROOT/m1.csv:1: missing required column 'path' (header has: id, image)"
    );
    assert_eq!(
        err_of(root, "m2.csv", "name,path\na,images/one.png\n"),
        "ROOT/m2.csv:1: missing required column 'id' (header has: name, path)"
    );
    assert_eq!(
        err_of(
            root,
            "m3.csv",
            "id,path\na,images/one.png\nb,images/missing.png\n"
        ),
        "ROOT/m3.csv:3: image file 'images/missing.png' not found (resolved to ROOT/images/missing.png)"
    );
    assert_eq!(
        err_of(
            root,
            "m4.csv",
            "id,path\na,images/one.png\nb,images/two.tif\na,images/ct.dcm\n"
        ),
        "ROOT/m4.csv:4: duplicate id 'a' (first on line 2)"
    );
    assert_eq!(
        err_of(
            root,
            "m5.csv",
            "id,path\na,images/one.png\n ,images/two.tif\n"
        ),
        "ROOT/m5.csv:3: empty id"
    );
    assert_eq!(
        err_of(root, "m6.csv", "id,path\na,images/one.png,extra\n"),
        "ROOT/m6.csv:2: row has 3 fields but the header has 2"
    );
    assert_eq!(
        err_of(root, "m7.csv", "id,path\n"),
        "ROOT/m7.csv: manifest lists no cases"
    );
    assert_eq!(
        err_of(root, "m8.csv", "id,path,id\na,images/one.png,b\n"),
        "ROOT/m8.csv:1: column 'id' appears twice (columns 1 and 3)"
    );
}

#[test]
fn jsonl_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    images(root);
    let msg = err_of(
        root,
        "j1.jsonl",
        "{\"id\": \"a\", \"path\": \"images/one.png\"}\n{\"id\": \"b\", \"path\": \n",
    );
    assert!(
        msg.starts_with("ROOT/j1.jsonl:2: malformed JSON: "),
        "{msg}"
    );
    assert_eq!(
        err_of(root, "j2.jsonl", "{\"id\": \"a\"}\n"),
        "ROOT/j2.jsonl:1: missing required key 'path' for id 'a'"
    );
    assert_eq!(
        err_of(root, "j3.jsonl", "{\"path\": \"images/one.png\"}\n"),
        "ROOT/j3.jsonl:1: missing required key 'id'"
    );
    assert_eq!(
        err_of(
            root,
            "j4.jsonl",
            "{\"id\": \"a\", \"path\": \"images/one.png\"}\n\n{\"id\": \"a\", \"path\": \"images/two.tif\"}\n"
        ),
        "ROOT/j4.jsonl:3: duplicate id 'a' (first on line 1)"
    );
    assert_eq!(
        err_of(root, "j5.jsonl", "[1, 2]\n"),
        "ROOT/j5.jsonl:1: expected a JSON object with 'id' and 'path'"
    );
    assert_eq!(
        err_of(
            root,
            "j6.jsonl",
            "{\"id\": \"\", \"path\": \"images/one.png\"}\n"
        ),
        "ROOT/j6.jsonl:1: empty id"
    );
    assert_eq!(
        err_of(
            root,
            "j7.jsonl",
            "{\"id\": \"a\", \"path\": \"nope/x.dcm\"}\n"
        ),
        "ROOT/j7.jsonl:1: image file 'nope/x.dcm' not found (resolved to ROOT/nope/x.dcm)"
    );
}

#[test]
fn undecodable_image_names_manifest_line_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    images(root);
    write(&root.join("images/bad.png"), b"definitely not a png");
    let msg = err_of(
        root,
        "m.csv",
        "id,path\nok,images/one.png\nbad,images/bad.png\n",
    );
    assert_eq!(
        msg,
        "ROOT/m.csv:3: ROOT/images/bad.png: not a PNG, JPEG, TIFF or DICOM file (starts with bytes 64 65 66 69 6e 69 74 65)"
    );
}

#[test]
fn unknown_manifest_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.txt");
    write(&path, b"id,path\n");
    let err = load_manifest(&path, &opts()).unwrap_err();
    assert!(matches!(err, CohortError::ManifestKind { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: unknown manifest type; expected a .csv, .jsonl or .ndjson file",
            path.display()
        )
    );
    let missing = dir.path().join("missing.csv");
    let msg = load_manifest(&missing, &opts()).unwrap_err().to_string();
    assert!(msg.starts_with("cannot read manifest: "), "{msg}");
    assert!(msg.contains("missing.csv"), "{msg}");
}
