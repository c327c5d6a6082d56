use clarity_report::{ReportOptions, write_report};
use roxmltree::{Document, Node, ParsingOptions};
use sha2::Digest as _;

use crate::fixture;

fn generate(thumbs: bool) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    fixture::write(dir.path());
    let src = fixture::Synthetic;
    let opts = ReportOptions {
        thumbnails: thumbs.then_some(&src as &dyn clarity_report::ThumbnailSource),
        ..ReportOptions::default()
    };
    write_report(dir.path(), &opts).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    (dir, html)
}

fn parse(html: &str) -> Document<'_> {
    Document::parse_with_options(
        html,
        ParsingOptions {
            allow_dtd: true,
            ..ParsingOptions::default()
        },
    )
    .expect("report.html is well-formed")
}

fn text(n: Node) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .map(|d| d.text().unwrap_or(""))
        .collect()
}

fn by_id<'a>(doc: &'a Document, id: &str) -> Node<'a, 'a> {
    doc.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no element with id {id}"))
}

fn named<'a>(n: Node<'a, 'a>, tag: &str) -> Vec<Node<'a, 'a>> {
    n.descendants()
        .filter(|d| d.is_element() && d.tag_name().name() == tag)
        .collect()
}

/// Rows of the first table whose caption starts with `caption`, as cell texts.
fn table(n: Node, caption: &str) -> Vec<Vec<String>> {
    let t = named(n, "table")
        .into_iter()
        .find(|t| {
            named(*t, "caption")
                .first()
                .is_some_and(|c| text(*c).starts_with(caption))
        })
        .unwrap_or_else(|| panic!("no table {caption}"));
    named(t, "tr")
        .into_iter()
        .map(|tr| tr.children().filter(|c| c.is_element()).map(text).collect())
        .collect()
}

#[test]
fn deterministic_bytes_and_golden_hash() {
    let (_a, first) = generate(true);
    let (_b, second) = generate(true);
    assert_eq!(first, second, "two generations differ");
    let (_c, plain1) = generate(false);
    let (_d, plain2) = generate(false);
    assert_eq!(plain1, plain2);
    crate::golden::check("report.html", first.as_bytes());
}

#[test]
fn every_section_with_the_right_numbers() {
    let (_dir, html) = generate(true);
    let doc = parse(&html);
    for id in clarity_report::doc::SECTION_IDS {
        by_id(&doc, id);
    }

    let summary = by_id(&doc, "summary");
    let s = text(summary);
    assert!(s.contains("builtin/clarity-builtin-cnn@w1"), "{s}");
    assert!(s.contains("3 cases, 3 labelled (phantoms-3)"), "{s}");
    assert!(
        s.contains("12 cells (gaussian_blur.sigma × 4, jpeg.quality × 3)"),
        "{s}"
    );
    assert!(s.contains("72 planned, 71 ok, 1 failed"), "{s}");
    assert!(s.contains("1.000 [1.000, 1.000]"), "{s}");
    let headline = text(named(summary, "ul")[0]);
    assert!(
        headline.starts_with(
            "gaussian_blur.sigma breaks the model first: ESI falls below 0.900 at 1 px (ESI 0.833, the other axes at identity)."
        ),
        "{headline}"
    );
    assert!(
        headline.contains("Then jpeg.quality: below 0.900 at 10"),
        "{headline}"
    );

    // Curves: one figure per axis, the table carries the numbers with CIs.
    let curves = by_id(&doc, "curves");
    assert_eq!(named(curves, "figure").len(), 2);
    let blur = table(curves, "gaussian_blur.sigma: values");
    assert_eq!(blur[0][0], "gaussian_blur.sigma (px)");
    assert_eq!(blur[3][1], "0.556 [0.333, 0.778]");
    assert_eq!(blur[4][4], "–", "undefined drift stays undefined");
    let cliffs = table(curves, "Cliffs");
    assert_eq!(
        cliffs.len(),
        3,
        "two cohort cliffs, the per-case one left out"
    );
    assert_eq!(cliffs[1][4], "1 px");
    assert_eq!(cliffs[1][5], "0.333 at 2 px");
    // The cliff marker is drawn.
    assert!(text(curves).contains("cliff: 1"));

    let surfaces = by_id(&doc, "surfaces");
    let svgs = named(surfaces, "svg");
    assert_eq!(svgs.len(), 1);
    // 12 cells, one undefined (grey): 11 values printed in cells.
    let labels: Vec<String> = named(svgs[0], "text").into_iter().map(text).collect();
    assert_eq!(
        labels.iter().filter(|l| *l == "0.67").count(),
        6,
        "{labels:?}"
    );
    assert_eq!(
        labels.iter().filter(|l| *l == "1.00").count(),
        4 + 1,
        "{labels:?}"
    );

    let gradients = by_id(&doc, "gradients");
    assert_eq!(named(gradients, "figure").len(), 2);
    let g = table(gradients, "Gradient of ESI along jpeg.quality");
    assert_eq!(g[1], vec!["10", "0.008", "0.333"]);

    let mc = by_id(&doc, "montecarlo");
    assert!(text(mc).contains("Monte Carlo (K = 2)"));
    let rows = table(mc, "Answers over");
    // Lowest seed agreement first: cell 9 (0.917) before cell 2 (an older montecarlo.json row,
    // whose answer_entropy is read as the within-case seed entropy).
    assert_eq!(
        rows[1],
        vec![
            "gaussian_blur.sigma=4, jpeg.quality=10",
            "normal ×3, nodule ×2, <none> ×1",
            "1.011",
            "0.917",
            "0.116",
            "0.800 of 5",
            "1",
            "0.700",
            "0.020"
        ]
    );

    let classes = table(by_id(&doc, "classes"), "Accuracy and stability");
    assert_eq!(
        classes[1],
        vec![
            "nodule",
            "2",
            "1.000",
            "0.500",
            "0.500",
            "gaussian_blur.sigma=2 (ESI)"
        ]
    );
    assert_eq!(
        classes[2],
        vec!["normal", "1", "1.000", "0.000", "–", "none"]
    );

    let worst = by_id(&doc, "worst");
    let cases: Vec<String> = named(worst, "h3").into_iter().map(text).collect();
    assert_eq!(
        cases,
        vec![
            "c1, label nodule, case ESI 0.455",
            "c2, label normal, case ESI 0.636"
        ]
    );
    assert_eq!(named(worst, "img").len(), 4, "before/after thumbnails");
    let w = text(worst);
    assert!(w.contains("gaussian_blur.sigma=2, seed 0"), "{w}");
    assert!(
        w.contains("answer: Nodule.") && w.contains("answer: normal"),
        "{w}"
    );
    assert!(
        w.contains("Round opacity in the right upper lobe.")
            && w.contains("Lungs clear; no focal opacity.")
    );
    for img in named(worst, "img") {
        let src = img.attribute("src").unwrap();
        assert!(
            src.starts_with("data:image/png;base64,") || src.starts_with("data:image/jpeg;base64,")
        );
    }
    assert_eq!(
        named(worst, "img")
            .iter()
            .filter(|i| i.attribute("alt") == Some("image with saliency overlay"))
            .count(),
        2,
        "c1 carries saliency"
    );

    let per_case = table(by_id(&doc, "cases"), "Every case");
    assert_eq!(per_case.len(), 4);
    assert_eq!(
        per_case[1],
        vec![
            "c1",
            "nodule",
            "Nodule.",
            "0.455",
            "24",
            "12",
            "0",
            "gaussian_blur.sigma=2"
        ]
    );
    assert_eq!(
        per_case[2],
        vec![
            "c2",
            "normal",
            "normal",
            "0.636",
            "24",
            "8",
            "0",
            "jpeg.quality=10"
        ]
    );
    assert_eq!(
        per_case[3],
        vec!["c3", "nodule", "nodule", "1.000", "24", "0", "1", "–"]
    );

    let prov = text(by_id(&doc, "provenance"));
    assert!(prov.contains("0123456789abcdef0123456789abcdef"));
    assert!(prov.contains("clarity 0.1.0"));
    // SHA-256 of the fixture's bundle.json bytes.
    let bundle = hex::encode(sha2::Sha256::digest(b"{\"files\": {}}\n"));
    assert!(prov.contains(&bundle), "{prov}");
}

#[test]
fn self_contained() {
    let (_dir, html) = generate(true);
    let doc = parse(&html);
    for n in doc.descendants().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        assert!(
            !matches!(tag, "script" | "link" | "iframe" | "object"),
            "external-capable <{tag}>"
        );
        for a in ["src", "href"] {
            if let Some(v) = n.attribute(a) {
                assert!(
                    v.starts_with('#') || v.starts_with("data:"),
                    "{tag} {a}={v}"
                );
            }
        }
    }
    assert!(!html.contains("url("), "no CSS resources");
}

#[test]
fn without_thumbnails_the_report_says_so() {
    let (_dir, html) = generate(false);
    let doc = parse(&html);
    let worst = by_id(&doc, "worst");
    assert!(named(worst, "img").is_empty());
    assert!(text(worst).contains("No thumbnails"));
}

#[test]
fn a_closure_is_a_thumbnail_source_and_missing_images_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    fixture::write(dir.path());
    let none = |_: &str, _: &clarity_core::Cell, _: u64| None::<clarity_image::Image>;
    let opts = ReportOptions {
        thumbnails: Some(&none),
        ..ReportOptions::default()
    };
    let s = write_report(dir.path(), &opts).unwrap();
    assert_eq!(s.thumbnails, 0);
    let html = std::fs::read_to_string(&s.html).unwrap();
    assert!(html.contains("No thumbnails: the cohort images could not be loaded."));
}
