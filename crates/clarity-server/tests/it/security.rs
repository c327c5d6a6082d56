//! SPEC §8 security: traversal, symlink escape, tokens off loopback, Host check, body limit,
//! no CORS.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clarity_server::{BODY_LIMIT, ServerConfig};

use crate::util::{app, get, post_json, send, shared_root};

#[tokio::test]
async fn dot_dot_and_absolute_paths_are_refused() {
    let app = app(shared_root());
    for uri in [
        "/api/v1/sweeps/..",
        "/api/v1/sweeps/..%2F..%2Fetc",
        "/api/v1/sweeps/sweeps%2F..%2F..",
        "/api/v1/sweeps/%2Fetc",
        "/api/v1/sweeps/sweeps%5C..%5C..",
        "/api/v1/sweeps/sweeps%2Fa/runs/../../../etc",
        "/api/v1/compare?a=..%2Fx&b=sweeps%2Fa",
    ] {
        let r = get(&app, uri).await;
        assert!(
            r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND,
            "{uri}: {}",
            r.status
        );
        assert!(r.json()["error"].is_string(), "{uri}");
    }
    get(&app, "/api/v1/sweeps/..%2F..%2Fetc")
        .await
        .assert_error(StatusCode::FORBIDDEN, "`..` is not allowed");
    get(&app, "/api/v1/sweeps/sweeps%2Fa/files/..%2Fb.toml")
        .await
        .assert_error(StatusCode::FORBIDDEN, "expected the name of a file");
    get(&app, "/api/v1/sweeps/sweeps%2Fa/files/.hidden")
        .await
        .assert_error(StatusCode::FORBIDDEN, "expected the name of a file");
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_cannot_escape_the_root() {
    let outside = tempfile::tempdir().unwrap();
    let secret_dir = crate::util::run_sweep(outside.path(), "s", "secret", 0);
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let root = tempfile::tempdir().unwrap();
    let inside = crate::util::run_sweep(root.path(), "in", "in", 0);
    std::os::unix::fs::symlink(&secret_dir, root.path().join("linked")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), inside.join("leak.txt")).unwrap();
    let app = app(root.path());
    // The walk does not follow the link: the outside sweep is not listed ...
    let list = get(&app, "/api/v1/sweeps").await.json();
    let ids: Vec<&str> = list["sweeps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["in"]);
    // ... and cannot be opened by name, nor can a file linked from inside a sweep be read.
    get(&app, "/api/v1/sweeps/linked")
        .await
        .assert_error(StatusCode::FORBIDDEN, "outside the served root");
    get(&app, "/api/v1/sweeps/linked/runs")
        .await
        .assert_error(StatusCode::FORBIDDEN, "outside");
    get(&app, "/api/v1/sweeps/in/files/leak.txt")
        .await
        .assert_error(StatusCode::FORBIDDEN, "outside");
    let page = get(&app, "/sweeps/linked").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.text().contains("secret"));
}

fn with_token(token: &str) -> axum::Router {
    clarity_server::router(ServerConfig {
        root: shared_root().to_path_buf(),
        token: Some(token.into()),
        launcher: None,
    })
    .unwrap()
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let app = with_token("s3cret-token");
    let req = |auth: Option<&str>, cookie: Option<&str>, uri: &str| {
        let mut b = Request::get(uri).header(header::HOST, "10.1.2.3:8090");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::empty()).unwrap()
    };
    for (auth, cookie, uri) in [
        (None, None, "/api/v1/sweeps"),
        (Some("Bearer wrong"), None, "/api/v1/sweeps"),
        (Some("Bearer s3cret-toke"), None, "/api/v1/sweeps"),
        (Some("Basic s3cret-token"), None, "/api/v1/sweeps"),
        (None, Some("clarity_token=nope"), "/"),
        (None, None, "/?token=nope"),
        (None, None, "/assets/console.js"),
        (None, None, "/api/v1/nothing"),
    ] {
        let r = send(&app, req(auth, cookie, uri)).await;
        r.assert_error(StatusCode::UNAUTHORIZED, "bearer token is required");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    let ok = send(
        &app,
        req(Some("Bearer s3cret-token"), None, "/api/v1/sweeps"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let ok = send(
        &app,
        req(None, Some("a=b; clarity_token=s3cret-token"), "/"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    // The printed URL carries the token once; the console then keeps it in a cookie.
    let first = send(&app, req(None, None, "/?token=s3cret-token")).await;
    assert_eq!(first.status, StatusCode::OK);
    let cookie = first.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("clarity_token=s3cret-token;") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn without_a_token_only_loopback_host_names_are_served() {
    let app = app(shared_root());
    for host in ["localhost:8090", "127.0.0.1:8090", "[::1]:8090"] {
        let r = send(
            &app,
            Request::get("/api/v1/sweeps")
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{host}");
    }
    // A DNS-rebinding page names its own host.
    let r = send(
        &app,
        Request::get("/api/v1/sweeps")
            .header(header::HOST, "attacker.example:8090")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    r.assert_error(StatusCode::FORBIDDEN, "loopback");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = app(shared_root());
    let big = format!(r#"{{"config":"{}"}}"#, "x".repeat(BODY_LIMIT + 1));
    let r = post_json(&app, "/api/v1/jobs", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.json()["error"].is_string());
    // Malformed or unexpected JSON is a JSON error too.
    let r = post_json(&app, "/api/v1/jobs", r#"{"config": 1}"#).await;
    assert!(r.status.is_client_error());
    assert!(r.json()["error"].is_string());
    let r = post_json(
        &app,
        "/api/v1/jobs",
        r#"{"config": "a.toml", "output": "/tmp"}"#,
    )
    .await;
    assert!(r.status.is_client_error());
    assert!(r.json()["error"].as_str().unwrap().contains("output"));
}

#[tokio::test]
async fn no_cors_headers_are_sent() {
    let app = app(shared_root());
    let pre = send(
        &app,
        Request::options("/api/v1/sweeps")
            .header(header::ORIGIN, "https://elsewhere.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(!pre.status.is_success(), "{}", pre.status);
    let r = send(
        &app,
        Request::get("/api/v1/sweeps")
            .header(header::ORIGIN, "https://elsewhere.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    for resp in [&pre, &r] {
        assert!(
            !resp
                .headers
                .keys()
                .any(|k| k.as_str().starts_with("access-control-")),
            "{:?}",
            resp.headers
        );
    }
}
