//! 16-bit sources: the image route's `window=LO,HI` and the run page's window controls.

use axum::http::StatusCode;

use crate::util::{app, config, get, run_config};

#[tokio::test]
async fn sixteen_bit_images_are_windowed_into_8_bit() {
    let root = tempfile::tempdir().unwrap();
    run_config(
        root.path(),
        "w",
        &config("out/w", 0).replace("depth = 8", "depth = 16"),
    );
    let app = app(root.path());
    let uri = "/api/v1/sweeps/out%2Fw/image?case=phantom-0001&cell=0&seed=0&which=baseline";
    // Without a window: the source's own 16-bit samples.
    let raw = get(&app, uri).await;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.text());
    let raw = image::load_from_memory(&raw.body).unwrap().into_luma16();
    let (lo, hi) = raw
        .pixels()
        .fold((u16::MAX, 0), |(a, b), p| (a.min(p.0[0]), b.max(p.0[0])));
    assert!(
        hi > 255,
        "a 16-bit phantom uses the 16-bit range (max {hi})"
    );
    // With one: 8-bit, LO → 0, HI → 255, linear between, clamped outside.
    let mid = lo + (hi - lo) / 2;
    let w = get(&app, &format!("{uri}&window={mid},{hi}")).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.text());
    let img = image::load_from_memory(&w.body).unwrap();
    assert_eq!(img.color(), image::ColorType::L8);
    let img = img.into_luma8();
    for (p, r) in img.pixels().zip(raw.pixels()) {
        let v = r.0[0].clamp(mid, hi);
        let want = (f64::from(v - mid) / f64::from(hi - mid) * 255.0).round() as u8;
        assert_eq!(p.0[0], want);
    }
    assert!(img.pixels().any(|p| p.0[0] == 0) && img.pixels().any(|p| p.0[0] == 255));
    for bad in ["5,5", "9,2", "0,70000", "x", "1,"] {
        get(&app, &format!("{uri}&window={bad}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "`window`");
    }
    // The run page offers the window, starting at the baseline's sample range, on both images.
    let page = get(&app, "/sweeps/out%2Fw/run?case=phantom-0001&cell=1&seed=0")
        .await
        .text();
    assert!(page.contains(r#"id="window-form""#), "{page}");
    assert!(page.contains(&format!(r#"id="win-lo" min="0" max="65535" value="{lo}""#)));
    assert!(page.contains(&format!("&amp;window={lo},{hi}")));
    let page = get(
        &app,
        &format!("/sweeps/out%2Fw/run?case=phantom-0001&cell=1&seed=0&lo={mid}&hi={hi}"),
    )
    .await
    .text();
    assert_eq!(page.matches(&format!("&amp;window={mid},{hi}")).count(), 2);
    // An 8-bit sweep has no window controls.
    let d8 = tempfile::tempdir().unwrap();
    run_config(d8.path(), "e", &config("out/e", 0));
    let page = get(
        &crate::util::app(d8.path()),
        "/sweeps/out%2Fe/run?case=phantom-0001&cell=1&seed=0",
    )
    .await
    .text();
    assert!(!page.contains(r#"id="window-form""#));
}
