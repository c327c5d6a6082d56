//! Console pages render from the same data as the API.

use axum::http::StatusCode;

use crate::util::{app, get, shared_root};

#[tokio::test]
async fn pages_render() {
    let app = app(shared_root());
    let index = get(&app, "/").await;
    assert_eq!(index.status, StatusCode::OK);
    let html = index.text();
    assert!(html.contains(r#"href="/sweeps/sweeps%2Fa""#), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no remote resources"
    );
    assert!(
        index.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );

    let sweep = get(&app, "/sweeps/sweeps%2Fa").await.text();
    assert!(sweep.contains(r#"id="headline""#));
    assert!(sweep.contains("<svg"), "the report's curves are inline");
    assert!(sweep.contains(r#"id="flips""#) && sweep.contains(r#"id="cliffs""#));

    let runs = get(&app, "/sweeps/sweeps%2Fa/runs?flipped=true")
        .await
        .text();
    let total = get(&app, "/api/v1/sweeps/sweeps%2Fa/runs?flipped=true")
        .await
        .json()["total"]
        .as_u64()
        .unwrap();
    assert!(runs.contains(&format!(r#"data-total="{total}""#)), "{runs}");
    assert_eq!(
        runs.matches(r#"<tr class="run flipped">"#).count() as u64,
        total.min(50)
    );

    let run = get(
        &app,
        "/sweeps/sweeps%2Fa/run?case=phantom-0000&cell=5&seed=0",
    )
    .await;
    assert_eq!(run.status, StatusCode::OK);
    let run = run.text();
    assert!(run.contains(r#"id="img-baseline""#) && run.contains(r#"id="img-perturbed""#));
    assert!(run.contains(r#"id="answer-baseline""#) && run.contains(r#"id="answer-perturbed""#));
    assert!(run.contains("overlay=saliency"));

    for p in [
        "/launch",
        "/compare",
        "/compare?a=sweeps%2Fa&b=sweeps%2Fnested%2Fb",
    ] {
        let r = get(&app, p).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
    }
    assert!(
        get(&app, "/compare?a=sweeps%2Fa&b=sweeps%2Fnested%2Fb")
            .await
            .text()
            .contains(r#"id="compare-cells""#)
    );
    let js = get(&app, "/assets/console.js").await;
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert!(get(&app, "/assets/console.css").await.status.is_success());
    assert_eq!(
        get(&app, "/assets/other.js").await.status,
        StatusCode::NOT_FOUND
    );
    let missing = get(&app, "/sweeps/sweeps%2Fa/run?case=x&cell=0&seed=0").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text().contains("no run of case"));
    assert_eq!(get(&app, "/jobs/7").await.status, StatusCode::NOT_FOUND);
}

/// Bad query input to a page is an error page naming the parameter (HTML, the API's status),
/// not axum's plain-text rejection.
#[tokio::test]
async fn pages_answer_bad_query_input_with_an_error_page() {
    let app = app(shared_root());
    for (uri, needle) in [
        (
            "/sweeps/sweeps%2Fa/run?case=phantom-0000&cell=abc&seed=0",
            "cell",
        ),
        ("/sweeps/sweeps%2Fa/run?case=phantom-0000&cell=0", "seed"),
        ("/sweeps/sweeps%2Fa/runs?limit=-3", "limit"),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        let ct = r.headers["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/html"), "{uri}: {ct}");
        let html = r.text();
        assert!(
            html.contains(r#"id="error""#) && html.contains(needle),
            "{uri}: {html}"
        );
    }
}
