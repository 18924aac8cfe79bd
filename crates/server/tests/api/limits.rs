//! What one client may cost the server (docs/architecture.md, the serving loop): body limits
//! per route, answered in each protocol's format; header limits; the header and body read
//! timeouts; the connection cap; slow clients that cannot starve the others.

#![allow(
    clippy::disallowed_methods,
    reason = "these tests measure the real server's timeouts in monotonic time"
)]

use std::time::{Duration, Instant};

use grantry_server::Limits;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both;
use crate::harness::TestApp;

/// A raw HTTP exchange: status, headers (lower-cased names) and body of the one answer.
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Writes `request` as it is and reads the answer until the server closes the connection.
pub async fn raw(app: &TestApp, request: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    s.write_all(request).await.unwrap();
    read_answer(&mut s).await
}

/// Reads one answer: up to the end of its `Content-Length` body, or until the server closes.
async fn read_answer(s: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(done) = complete(&buf) {
                buf.truncate(done);
                return;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answers within 10 s");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The length of a complete answer in `buf`, when it carries a `Content-Length`.
fn complete(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    (buf.len() >= end + len).then_some(end + len)
}

fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

both!(
    each_api_refuses_an_oversize_body_with_413_in_its_own_format,
    |app: TestApp| async move {
        // Token endpoint family: RFC 6749 §5.2 invalid_request.
        for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
            let form = format!("grant_type=refresh_token&x={}", "a".repeat(17 * 1024));
            let r = raw(
                &app,
                &post(path, "application/x-www-form-urlencoded", form.as_bytes()),
            )
            .await;
            assert_eq!(r.status, 413, "{path}: {}", r.body);
            assert_eq!(r.json()["error"], "invalid_request", "{path}");
            assert!(r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains("16 KiB"));
            assert_eq!(r.header("cache-control"), Some("no-store"));
        }
        // Just under the limit is read and answered as a token request (no client named).
        let form = format!("grant_type=nonsense&x={}", "a".repeat(15 * 1024));
        let r = raw(
            &app,
            &post(
                "/oauth/token",
                "application/x-www-form-urlencoded",
                form.as_bytes(),
            ),
        )
        .await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (401, Some("invalid_client"))
        );

        // XML API: a Fault 51.
        let big = format!(
            "<Envelope><Body><GetLists>{}</GetLists></Body></Envelope>",
            " ".repeat(1024 * 1024)
        );
        let r = raw(&app, &post("/XMLAPI", "text/xml", big.as_bytes())).await;
        assert_eq!(r.status, 413, "{}", r.body);
        assert!(
            r.body.contains("<errorid>51</errorid>") && r.body.contains("1024 KiB"),
            "{}",
            r.body
        );
        assert!(r.header("content-type").unwrap().contains("xml"));

        // REST API: meta.generalErrors.
        let big = format!("{{\"name\": \"{}\"}}", "n".repeat(257 * 1024));
        let r = raw(
            &app,
            &post("/rest/databases", "application/json", big.as_bytes()),
        )
        .await;
        assert_eq!(r.status, 413, "{}", r.body);
        let v = r.json();
        assert!(
            v["meta"]["generalErrors"][0]
                .as_str()
                .unwrap()
                .contains("256 KiB"),
            "{v}"
        );
        assert_eq!(v["data"], Value::Null);

        // Event API: code 1004, before the credential is looked up.
        let big = vec![b' '; 257 * 1024];
        let r = raw(
            &app,
            &post("/campaignapi/resources/v3/events", "application/json", &big),
        )
        .await;
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (413, Some(1004)),
            "{}",
            r.body
        );

        // Sign-in form: the error page.
        let form = format!("username=a&password={}", "p".repeat(17 * 1024));
        let r = raw(
            &app,
            &post(
                "/oauth/authorize/login",
                "application/x-www-form-urlencoded",
                form.as_bytes(),
            ),
        )
        .await;
        assert_eq!(r.status, 413);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
);

type Check = fn(&Raw) -> bool;

fn quick_timeouts() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(800),
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

both!(
    a_body_that_stalls_is_refused_with_408_in_the_protocols_format,
    limits = quick_timeouts(),
    |app: TestApp| async move {
        let cases: [(&str, &str, Check); 4] = [
            ("/oauth/token", "application/x-www-form-urlencoded", |r| {
                r.json()["error"] == "invalid_request"
            }),
            ("/XMLAPI", "text/xml", |r| {
                r.body.contains("<errorid>51</errorid>")
            }),
            ("/rest/databases", "application/json", |r| {
                r.json()["meta"]["generalErrors"][0]
                    .as_str()
                    .unwrap()
                    .contains("did not arrive in time")
            }),
            (
                "/campaignapi/resources/v3/events",
                "application/json",
                |r| r.json()["code"] == 1006,
            ),
        ];
        for (path, ct, body_ok) in cases {
            let started = Instant::now();
            let mut s = TcpStream::connect(addr(&app)).await.unwrap();
            let head = format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {ct}\r\nContent-Length: 100\r\n\r\n0123456789");
            s.write_all(head.as_bytes()).await.unwrap();
            let r = read_answer(&mut s).await;
            assert_eq!(r.status, 408, "{path}: {}", r.body);
            assert!(body_ok(&r), "{path}: {}", r.body);
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(450) && took < Duration::from_secs(5),
                "{path}: {took:?}"
            );
        }
    }
);

both!(
    too_many_or_too_large_headers_are_answered_431,
    limits = Limits {
        max_headers: 20,
        max_header_bytes: 4096,
        ..Limits::default()
    },
    |app: TestApp| async move {
        let many: String = (0..25).map(|i| format!("X-H{i}: v\r\n")).collect();
        let r = raw(
            &app,
            format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 431);
        let big = format!(
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "b".repeat(5000)
        );
        let r = raw(&app, big.as_bytes()).await;
        assert_eq!(r.status, 431);
        let fine: String = (0..10).map(|i| format!("X-H{i}: v\r\n")).collect();
        let r = raw(
            &app,
            format!("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{fine}\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    }
);

both!(
    slow_header_senders_are_cut_off_and_do_not_delay_others,
    limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    },
    |app: TestApp| async move {
        const SLOW: usize = 300;
        let target = addr(&app);
        // Each connection's time runs from its own connect: the server's timer starts at
        // its accept, which comes after it, however long the 300 connects take in all.
        let mut slow = Vec::with_capacity(SLOW);
        for _ in 0..SLOW {
            let mut s = TcpStream::connect(&target).await.unwrap();
            let started = Instant::now();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
                .await
                .unwrap();
            slow.push((s, started));
        }
        // Each slow client keeps trickling header bytes, never finishing its headers.
        let tricklers: Vec<_> = slow
            .into_iter()
            .map(|(mut s, started)| {
                tokio::spawn(async move {
                    let mut buf = [0u8; 512];
                    loop {
                        tokio::select! {
                            n = s.read(&mut buf) => match n {
                                Ok(0) | Err(_) => return started.elapsed(),
                                Ok(_) => {}
                            },
                            () = tokio::time::sleep(Duration::from_millis(100)) => {
                                if s.write_all(b"X").await.is_err() {
                                    return started.elapsed();
                                }
                            }
                        }
                    }
                })
            })
            .collect();

        // A normal client is answered at once, keep-alive included.
        let client = reqwest::Client::new();
        for _ in 0..3 {
            let t = Instant::now();
            let r = client.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.text().await.unwrap(), "ok\n");
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
        }

        // Every slow connection is closed by the header read timeout, not before it.
        for t in tricklers {
            let closed_after = tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("the server closes a slow connection")
                .unwrap();
            assert!(
                closed_after >= Duration::from_millis(800),
                "{closed_after:?}"
            );
            assert!(closed_after < Duration::from_secs(4), "{closed_after:?}");
        }
    }
);

both!(
    over_the_connection_cap_new_connections_wait_for_a_free_slot,
    limits = Limits {
        max_connections: 3,
        header_read_timeout: Duration::from_secs(20),
        ..Limits::default()
    },
    |app: TestApp| async move {
        let target = addr(&app);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(&target).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting = reqwest::Client::builder()
            .timeout(Duration::from_millis(700))
            .build()
            .unwrap();
        let err = waiting.get(app.url("/healthz")).send().await.unwrap_err();
        assert!(err.is_timeout(), "{err}");

        // One connection closes; the next client is served.
        drop(held.pop());
        let t = Instant::now();
        let r = reqwest::Client::new()
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
);

both!(
    keep_alive_serves_many_requests_on_one_connection,
    |app: TestApp| async move {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        let mut buf = vec![0u8; 4096];
        for _ in 0..5 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .unwrap();
            let n = s.read(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(
                text.starts_with("HTTP/1.1 200") && text.ends_with("ok\n"),
                "{text}"
            );
        }
    }
);

both!(
    shutdown_stops_accepting_and_closes_idle_connections,
    |app: TestApp| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let state = grantry_server::AppState::new(
            app.store.clone(),
            app.clock.clone(),
            app.settings.clone(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(grantry_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        // A keep-alive connection that has been served and is now idle.
        let mut idle = TcpStream::connect(target).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let r = read_answer(&mut idle).await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

        stop.send(()).unwrap();
        let served = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns once idle connections are closed")
            .unwrap();
        assert!(served.is_ok(), "{served:?}");
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "the idle connection is closed");
        assert!(
            TcpStream::connect(target).await.is_err(),
            "nothing listens any more"
        );
    }
);
