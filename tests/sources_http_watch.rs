//! The HTTP watch client against a scripted local server (127.0.0.1:0)
//! that replays fixture lines in chunks, drops a connection mid-line,
//! answers 410 Gone both as a watch ERROR event and as an HTTP status,
//! stalls, and fails — checking every request the client makes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ebbflow::sources::http_watch::{Failure, Origin, WatchClient, WatchConfig, WatchError};
use ebbflow::sources::k8s::{DecodeError, Decoded, WatchDecoder, DEFAULT_MAX_OBJECT_BYTES};
use ebbflow::sources::record::{Kind, Op};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/k8s/");

type Responder = Box<dyn FnOnce(&mut TcpStream) + Send>;

/// Serves one scripted response per connection, in order, recording each
/// request target. Every wait is bounded.
fn serve(
    script: Vec<Responder>,
) -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<String>>>,
    thread::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    let h = thread::spawn(move || {
        for respond in script {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut s = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("client never connected: {e}"),
                }
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(s.read(&mut b).unwrap(), 1, "request head cut short");
                head.push(b[0]);
            }
            let head = String::from_utf8(head).unwrap();
            assert!(head.starts_with("GET "), "{head}");
            assert!(head.contains("\r\nHost: 127.0.0.1:"), "{head}");
            let target = head.split(' ').nth(1).unwrap().to_string();
            log2.lock().unwrap().push(target);
            respond(&mut s);
        }
    });
    (addr, log, h)
}

fn chunk(s: &mut TcpStream, bytes: &[u8]) {
    write!(s, "{:x}\r\n", bytes.len()).unwrap();
    s.write_all(bytes).unwrap();
    s.write_all(b"\r\n").unwrap();
    s.flush().unwrap();
}

const CHUNKED_200: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

fn pod_line(name: &str, rv: u64, ty: &str) -> String {
    format!(
        r#"{{"type":"{ty}","object":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"default","resourceVersion":"{rv}"}}}}}}"#
    ) + "\n"
}

fn list_body(rv: u64, names: &[(&str, u64)]) -> String {
    let items: Vec<String> = names
        .iter()
        .map(|(n, v)| {
            format!(
                r#"{{"metadata":{{"name":"{n}","namespace":"default","resourceVersion":"{v}"}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}"}},"items":[{}]}}"#,
        items.join(",")
    )
}

const GONE_EVENT: &str = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1500 (2900)","reason":"Expired","code":410}}
"#;

#[test]
fn resumes_after_drops_and_relists_on_gone() {
    let fixture = std::fs::read(format!("{FIXTURES}kubeclient__watch_stream.json")).unwrap();
    let mut lines: Vec<u8> = fixture.clone();
    if !lines.ends_with(b"\n") {
        lines.push(b'\n');
    }
    let script: Vec<Responder> = vec![
        // 1: three fixture lines in odd-sized chunks (boundaries inside
        // lines), then half a line in a chunk that promises more: dropped.
        Box::new(move |s| {
            s.write_all(CHUNKED_200).unwrap();
            let mut rest = &lines[..];
            for n in [100usize, 1, 777, 2] {
                chunk(s, &rest[..n]);
                rest = &rest[n..];
            }
            chunk(s, rest);
            let next = pod_line("lost", 1399, "ADDED");
            write!(s, "{:x}\r\n", next.len()).unwrap();
            s.write_all(&next.as_bytes()[..next.len() / 2]).unwrap();
        }),
        // 2: a bookmark, then 410 as a watch ERROR event.
        Box::new(|s| {
            s.write_all(CHUNKED_200).unwrap();
            chunk(
                s,
                br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"1500"}}}
"#,
            );
            chunk(s, GONE_EVENT.as_bytes());
            s.write_all(b"0\r\n\r\n").unwrap();
        }),
        // 3: the re-list, Content-Length framed.
        Box::new(|s| {
            let body = list_body(3000, &[("l1", 2990), ("l2", 2995)]);
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }),
        // 4: 410 as the HTTP status.
        Box::new(|s| {
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410}"#;
            write!(
                s,
                "HTTP/1.1 410 Gone\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }),
        // 5: the second re-list, chunked.
        Box::new(|s| {
            s.write_all(CHUNKED_200).unwrap();
            let body = list_body(3100, &[("l3", 3050)]);
            let (a, b) = body.as_bytes().split_at(40);
            chunk(s, a);
            chunk(s, b);
            s.write_all(b"0\r\n\r\n").unwrap();
        }),
        // 6: two events and a clean end of the body (server-side timeout).
        Box::new(|s| {
            s.write_all(CHUNKED_200).unwrap();
            chunk(
                s,
                (pod_line("w1", 3101, "ADDED") + &pod_line("w1", 3102, "MODIFIED")).as_bytes(),
            );
            s.write_all(b"0\r\n\r\n").unwrap();
        }),
        // 7: headers, then silence past the client's read timeout.
        Box::new(|s| {
            s.write_all(CHUNKED_200).unwrap();
            thread::sleep(Duration::from_millis(400));
        }),
        // 8: a server error.
        Box::new(|s| {
            s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        }),
        // 9: one more event; the caller stops there.
        Box::new(|s| {
            s.write_all(CHUNKED_200).unwrap();
            chunk(s, pod_line("w2", 3103, "DELETED").as_bytes());
            thread::sleep(Duration::from_millis(200));
        }),
    ];
    let (addr, log, server) = serve(script);
    let cfg = WatchConfig {
        addr,
        resource_version: Some("1000".into()),
        read_timeout: Duration::from_millis(150),
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(4),
        max_failures: 5,
        ..WatchConfig::default()
    };
    let mut client = WatchClient::new(cfg, DEFAULT_MAX_OBJECT_BYTES);
    let mut d = WatchDecoder::default();
    let mut seen = Vec::new();
    let stats = client
        .run(&mut d, |origin, r| {
            let r = r.expect("every line decodes");
            let rec = *r.record();
            let name = d_name(&r);
            seen.push((
                origin,
                variant(&r),
                rec.kind,
                rec.op,
                rec.resource_version,
                name,
            ));
            if rec.resource_version == 3103 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    server.join().unwrap();
    let log = log.lock().unwrap().clone();
    let w =
        |rv: &str| format!("/api/v1/pods?watch=1&resourceVersion={rv}&allowWatchBookmarks=true");
    assert_eq!(
        log,
        [
            w("1000"),
            w("1398"),
            "/api/v1/pods".to_string(),
            w("3000"),
            "/api/v1/pods".to_string(),
            w("3100"),
            w("3102"),
            w("3102"),
            w("3102"),
        ]
    );
    use Origin::{List, Watch};
    let names: Vec<_> = seen.iter().map(|s| (s.0, s.1, s.2, s.3, s.4)).collect();
    assert_eq!(
        names,
        [
            (Watch, "change", Kind::Pod, Op::Added, 1389),
            (Watch, "change", Kind::Pod, Op::Modified, 1390),
            (Watch, "change", Kind::Pod, Op::Deleted, 1398),
            (Watch, "bookmark", Kind::Pod, Op::Bookmark, 1500),
            (Watch, "relist", Kind::Status, Op::Error, 0),
            (List, "change", Kind::Pod, Op::Added, 2990),
            (List, "change", Kind::Pod, Op::Added, 2995),
            (List, "change", Kind::Pod, Op::Added, 3050),
            (Watch, "change", Kind::Pod, Op::Added, 3101),
            (Watch, "change", Kind::Pod, Op::Modified, 3102),
            (Watch, "change", Kind::Pod, Op::Deleted, 3103),
        ]
    );
    // Items without `kind` took the list's kind; names came through.
    assert_eq!(seen[5].5, "l1");
    assert_eq!(seen[10].5, "w2");
    assert_eq!(stats.watches, 7);
    assert_eq!(stats.lists, 2);
    assert_eq!(stats.gone, 2);
    assert_eq!(stats.failures, 2, "the stall and the 500");
    assert_eq!(stats.list_items, 3);
    assert_eq!(stats.watch_events, 8);
    assert_eq!(client.last_request(), w("3102"));
}

fn variant(d: &Decoded) -> &'static str {
    match d {
        Decoded::Change(_) => "change",
        Decoded::Bookmark(_) => "bookmark",
        Decoded::Relist(_) => "relist",
        Decoded::Status(_) => "status",
    }
}

/// The record's name, recognised by its key (`key_of("Pod", "default", name)`).
fn d_name(d: &Decoded) -> String {
    use ebbflow::sources::hash::key_of;
    let r = d.record();
    for n in ["l1", "l2", "l3", "w1", "w2", "php", "lost"] {
        if r.key == key_of(b"Pod", b"default", n.as_bytes()) {
            return n.to_string();
        }
    }
    String::new()
}

#[test]
fn gives_up_after_bounded_failures_with_backoff() {
    // A port nothing listens on: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = WatchConfig {
        addr: port,
        resource_version: Some("5".into()),
        backoff_initial: Duration::from_millis(2),
        backoff_max: Duration::from_millis(8),
        max_failures: 4,
        connect_timeout: Duration::from_millis(200),
        ..WatchConfig::default()
    };
    let mut client = WatchClient::new(cfg, 1024);
    let mut d = WatchDecoder::default();
    let t = Instant::now();
    let err = client
        .run(&mut d, |_, _| ControlFlow::Continue(()))
        .unwrap_err();
    let WatchError::GaveUp { failures, last } = err;
    assert_eq!(failures, 4);
    assert!(matches!(last, Failure::Io(_)), "{last}");
    // Three sleeps between four attempts: 2 + 4 + 8 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(14),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(client.stats().failures, 4);
    assert_eq!(client.stats().watches, 4);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let client = WatchClient::new(
        WatchConfig {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..WatchConfig::default()
        },
        1024,
    );
    let ms: Vec<u128> = (1..=7).map(|f| client.backoff(f).as_millis()).collect();
    assert_eq!(ms, [100, 200, 400, 800, 1000, 1000, 1000]);
    assert_eq!(client.backoff(u32::MAX).as_millis(), 1000);
}

#[test]
fn lists_first_without_a_resource_version_and_reports_bad_lines() {
    let script: Vec<Responder> = vec![
        Box::new(|s| {
            let body = list_body(42, &[("a", 40)]);
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }),
        Box::new(|s| {
            s.write_all(CHUNKED_200).unwrap();
            chunk(s, b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\n");
            chunk(s, pod_line("b", 43, "ADDED").as_bytes());
            thread::sleep(Duration::from_millis(200));
        }),
    ];
    let (addr, log, server) = serve(script);
    let mut client = WatchClient::new(
        WatchConfig {
            addr,
            ..WatchConfig::default()
        },
        DEFAULT_MAX_OBJECT_BYTES,
    );
    let mut d = WatchDecoder::default();
    let mut out = Vec::new();
    client
        .run(&mut d, |o, r| {
            out.push((
                o,
                r.as_ref()
                    .map(|d| d.record().resource_version)
                    .map_err(|e| *e),
            ));
            if matches!(r, Ok(ref d) if d.record().resource_version == 43) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    server.join().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "/api/v1/pods",
            "/api/v1/pods?watch=1&resourceVersion=42&allowWatchBookmarks=true"
        ]
    );
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], (Origin::List, Ok(40)));
    assert!(
        matches!(out[1], (Origin::Watch, Err(DecodeError::Truncated { .. }))),
        "{out:?}"
    );
    assert_eq!(out[2], (Origin::Watch, Ok(43)));
}
