//! Connection-level limits over real sockets: header- and body-read timeouts, the connection
//! limit (idle connections evicted, busy ones answered 503), the completion limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarity_serve_model::{ServeOptions, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::fake::Fake;

/// Within this a closed connection must have been seen (the limits under test are ≤ 300 ms).
const PATIENCE: Duration = Duration::from_secs(5);

async fn start(options: ServeOptions) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_with(listener, Arc::new(Fake), options));
    addr
}

async fn send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Reads until the server closes the connection; panics when it stays open past `PATIENCE`.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&buf).into_owned()
}

/// Whether the server has closed `stream` (EOF or reset within `wait`, nothing else read).
async fn is_closed(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut chunk = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut chunk)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

fn stalled_post(content_length: u64) -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\n\r\n{{\"model\""
    )
    .into_bytes()
}

#[tokio::test]
async fn headers_must_arrive_within_the_header_read_timeout() {
    let addr = start(ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    // Half a request head, then nothing (slowloris).
    let started = Instant::now();
    let mut slow = send(addr, b"GET /health HTTP/1.1\r\nhost: x\r\n").await;
    until_closed(&mut slow).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A connection that sends nothing at all.
    let mut silent = send(addr, b"").await;
    until_closed(&mut silent).await;
    // A keep-alive connection idle after its request.
    let mut idle = send(addr, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let response = until_closed(&mut idle).await;
    assert_eq!(status(&response), "200", "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
}

#[tokio::test]
async fn a_huge_content_length_is_refused_at_once_and_a_stalled_body_times_out() {
    let addr = start(ServeOptions {
        body_read_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let started = Instant::now();
    let mut huge = send(addr, &stalled_post(999_999_999_999)).await;
    let response = until_closed(&mut huge).await;
    assert_eq!(status(&response), "413", "{response}");
    assert!(
        response.contains("the limit is 20971520 bytes"),
        "{response}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "413 before any timeout"
    );

    let started = Instant::now();
    let mut stalled = send(addr, &stalled_post(1000)).await;
    let response = until_closed(&mut stalled).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(status(&response), "408", "{response}");
    assert!(response.contains("limit body_read_timeout"), "{response}");
}

#[tokio::test]
async fn health_answers_while_more_idle_connections_than_the_limit_are_open() {
    let addr = start(ServeOptions {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(60),
        ..ServeOptions::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(send(addr, b"GET /heal").await);
    }
    let started = Instant::now();
    let mut health = send(addr, HEALTH).await;
    let response = until_closed(&mut health).await;
    assert_eq!(status(&response), "200", "{response}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The oldest idle ones were closed to make room (11 connections, limit 4: at least 7).
    let mut closed = 0;
    for stream in &mut idle {
        closed += usize::from(is_closed(stream, Duration::from_millis(200)).await);
    }
    assert!(closed >= 7, "only {closed} idle connections closed");
}

#[tokio::test]
async fn at_the_connection_limit_with_every_request_in_progress_a_new_one_gets_503() {
    let addr = start(ServeOptions {
        max_connections: 2,
        body_read_timeout: Duration::from_secs(60),
        ..ServeOptions::default()
    })
    .await;
    let _busy: Vec<TcpStream> = vec![
        send(addr, &stalled_post(100)).await,
        send(addr, &stalled_post(100)).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = send(addr, HEALTH).await;
    let response = until_closed(&mut refused).await;
    assert_eq!(status(&response), "503", "{response}");
    assert!(
        response.contains("\"code\":\"too_many_connections\""),
        "{response}"
    );
    assert!(response.contains("limit max_connections"), "{response}");
}

#[tokio::test]
async fn completions_over_the_concurrency_limit_get_503_and_health_still_answers() {
    let addr = start(ServeOptions {
        max_concurrent_requests: 1,
        body_read_timeout: Duration::from_secs(60),
        ..ServeOptions::default()
    })
    .await;
    let _busy = send(addr, &stalled_post(100)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = br#"{"model":"fake-model","messages":[]}"#;
    let mut request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let mut second = send(addr, &request).await;
    let response = until_closed(&mut second).await;
    assert_eq!(status(&response), "503", "{response}");
    assert!(
        response.contains("limit max_concurrent_requests"),
        "{response}"
    );
    let mut health = send(addr, HEALTH).await;
    assert_eq!(status(&until_closed(&mut health).await), "200");
}
