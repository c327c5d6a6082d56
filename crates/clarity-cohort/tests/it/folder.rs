use clarity_cohort::{CohortError, load, load_folder};
use clarity_image::{DecodeOptions, Samples, SourceFormat};

use crate::util::{dicom_ct, dicomdir, png_gray8, tiff_gray16, write};

fn opts() -> DecodeOptions {
    DecodeOptions::default()
}

#[test]
fn loads_supported_files_recursively_in_byte_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    png_gray8(&root.join("b.png"), 2, 1, &[1, 2]);
    png_gray8(&root.join("Z.PNG"), 1, 1, &[9]);
    tiff_gray16(&root.join("a/c.tif"), 1, 2, &[300, 65535]);
    dicom_ct(&root.join("series/IM0001"), [990, 1020]);
    write(&root.join("notes.txt"), b"not an image");
    write(&root.join("series/README"), b"short");
    png_gray8(&root.join(".hidden.png"), 1, 1, &[0]);
    png_gray8(&root.join(".cache/x.png"), 1, 1, &[0]);

    let cases = load_folder(root, &opts()).unwrap();
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    // Byte order: 'Z' (0x5a) < 'a' < 'b' < 's'.
    assert_eq!(ids, ["Z", "a/c", "b", "series/IM0001"]);
    let sources: Vec<&str> = cases.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(sources, ["Z.PNG", "a/c.tif", "b.png", "series/IM0001"]);

    assert_eq!(cases[2].image.samples(), &Samples::U8(vec![1, 2]));
    assert_eq!(cases[1].image.samples(), &Samples::U16(vec![300, 65535]));
    assert_eq!(cases[1].decode.as_ref().unwrap().format, SourceFormat::Tiff);
    // DICOM: HU = stored - 1000 → -10 and 20; window c=0 w=100 (c-0.5=-0.5, w-1=99):
    // -10 → ((-10+0.5)/99+0.5)*65535 = 26478.8 → 26479; 20 → 46337.9 → 46338.
    assert_eq!(cases[3].image.samples(), &Samples::U16(vec![26479, 46338]));
    let rec = cases[3].decode.as_ref().unwrap();
    assert_eq!(rec.format, SourceFormat::Dicom);
    assert_eq!(rec.dicom.as_ref().unwrap().rescale_intercept, -1000.0);
    for c in &cases {
        assert!(c.prompt.is_none() && c.label.is_none() && c.metadata.is_empty());
    }
    // Deterministic: a second load is identical; `load` dispatches on a folder.
    assert_eq!(load(root, &opts()).unwrap(), cases);
}

#[test]
fn duplicate_ids_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    png_gray8(&dir.path().join("scans/a.png"), 1, 1, &[1]);
    tiff_gray16(&dir.path().join("scans/a.tif"), 1, 1, &[1]);
    let err = load_folder(dir.path(), &opts()).unwrap_err();
    assert!(matches!(err, CohortError::DuplicateFileId { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: duplicate case id 'scans/a' from 'scans/a.png' and 'scans/a.tif'; ids are paths without extension, rename one",
            dir.path().display()
        )
    );
}

#[test]
fn empty_folder_and_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("readme.md"), b"# nothing");
    let err = load_folder(dir.path(), &opts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no image files found (looked for .png .jpg .jpeg .tif .tiff .dcm and extensionless DICOM)",
            dir.path().display()
        )
    );
    let missing = dir.path().join("nope");
    let msg = load_folder(&missing, &opts()).unwrap_err().to_string();
    assert!(msg.starts_with("cannot read cohort folder: "), "{msg}");
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
}

#[test]
fn a_corrupt_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    png_gray8(&dir.path().join("good.png"), 1, 1, &[1]);
    write(&dir.path().join("bad.png"), b"\x89PNG\r\n\x1a\n garbage");
    let msg = load_folder(dir.path(), &opts()).unwrap_err().to_string();
    let bad = dir.path().join("bad.png");
    assert!(
        msg.starts_with(&format!("{}: corrupt or truncated png file", bad.display())),
        "{msg}"
    );
}

#[test]
fn reference_chest_xray_folder_when_present() {
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/chest_xray_pa_cc0.png");
    if !reference.exists() {
        println!(
            "SKIPPED: reference image {} not present",
            reference.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&reference, dir.path().join("chest.png")).unwrap();
    let cases = load_folder(dir.path(), &opts()).unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].id, "chest");
    let direct = clarity_image::decode_file(&reference, &opts()).unwrap();
    assert_eq!(cases[0].image.content_hash(), direct.image.content_hash());
}

#[test]
fn same_result_on_one_and_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..12u8 {
        png_gray8(
            &dir.path().join(format!("d{}/img{i:02}.png", i % 3)),
            2,
            2,
            &[i, i + 1, i + 2, i + 3],
        );
    }
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| load_folder(dir.path(), &opts()).unwrap())
    };
    let one = run(1);
    assert_eq!(one.len(), 12);
    assert_eq!(one[0].id, "d0/img00");
    assert_eq!(one[11].id, "d2/img11");
    assert_eq!(run(4), one);
}

#[test]
fn a_pacs_export_loads_every_image_and_lists_non_images() {
    // What a media export looks like: a DICOMDIR, UID-named files, Siemens .IMA, a PNG, and a
    // text file that is not an image at all.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dicomdir(&root.join("DICOMDIR"));
    dicom_ct(
        &root.join("DICOM/1.2.826.0.1.3680043.2.1125.1"),
        [1000, 1010],
    );
    dicom_ct(
        &root.join("DICOM/1.2.826.0.1.3680043.2.1125.2"),
        [1020, 1030],
    );
    dicom_ct(
        &root.join("DICOM/ST000001/SE000001/IM000001.IMA"),
        [990, 1000],
    );
    png_gray8(&root.join("key_image.png"), 1, 1, &[7]);
    write(&root.join("README.TXT"), b"exported by a PACS");
    let loaded = clarity_cohort::load_folder_cohort(root, &opts()).unwrap();
    let ids: Vec<&str> = loaded.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "DICOM/1.2.826.0.1.3680043.2.1125.1",
            "DICOM/1.2.826.0.1.3680043.2.1125.2",
            "DICOM/ST000001/SE000001/IM000001",
            "key_image",
        ]
    );
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].source, "DICOMDIR");
    assert!(
        loaded.skipped[0]
            .reason
            .contains("Media Storage Directory Storage"),
        "{}",
        loaded.skipped[0].reason
    );
}

#[test]
fn every_decoding_error_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    png_gray8(&dir.path().join("good.png"), 1, 1, &[1]);
    write(&dir.path().join("bad1.png"), b"\x89PNG\r\n\x1a\n garbage");
    write(
        &dir.path().join("bad2.png"),
        b"\x89PNG\r\n\x1a\n more garbage",
    );
    let msg = load_folder(dir.path(), &opts()).unwrap_err().to_string();
    assert!(msg.contains("2 of 3 files could not be decoded"), "{msg}");
    assert!(msg.contains("bad1.png: corrupt"), "{msg}");
    assert!(msg.contains("bad2.png: corrupt"), "{msg}");
}
