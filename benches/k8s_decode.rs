//! Kubernetes watch-stream decoding: ebbflow's scanner vs
//! `serde_json::from_slice::<serde_json::Value>` on the same lines, in the
//! same run.
//!
//! Run: `cargo bench --bench k8s_decode -- --warm-up-time 1 --measurement-time 3`
//! (on a 2-vCPU VM, prefix `taskset -c 1`: see docs/sources.md, "Benchmark").
//!
//! Each group decodes one whole stream per iteration; throughput is in
//! events (lines) per second. `split_lines` is the harness baseline: it
//! only finds the line boundaries.

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use ebbflow::sources::k8s::WatchDecoder;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/k8s/");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
}

/// The apiserver's NDJSON watch body from a k8s-openapi replay file.
fn replay_body(name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&fixture(name)).unwrap();
    v[0]["response_body"].as_str().unwrap().to_owned()
}

/// 1000 pods × ADDED/MODIFIED/DELETED from the kubeclient watch lines with
/// varied names, resource versions and restart counts; every 25th pod is a
/// full apiserver line (7–10 KB) instead.
fn generated() -> String {
    let small = fixture("kubeclient__watch_stream.json");
    let small: Vec<&str> = small.lines().collect();
    let big = replay_body("k8s-openapi__v1-36__watch_event-watch_pods_without_initial_events.json");
    let big: Vec<&str> = big.lines().take(8).collect();
    let mut out = String::new();
    for p in 0..1000 {
        for (v, template) in small.iter().enumerate() {
            let line = if p % 25 == 0 {
                big[p / 25 % 8].replacen("\"name\":\"", &format!("\"name\":\"g{p}-"), 1)
            } else {
                template.replace("\"php\"", &format!("\"php-{p}\"")).replace(
                    "\"status\":{\"phase\":\"Pending\"",
                    &format!(
                        "\"status\":{{\"phase\":\"Running\",\"containerStatuses\":[{{\"name\":\"nginx\",\"restartCount\":{},\"state\":{{\"running\":{{}}}}}}]",
                        p % 7 + v
                    ),
                )
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn lines(body: &str) -> u64 {
    body.lines().filter(|l| !l.trim().is_empty()).count() as u64
}

fn bench(c: &mut Criterion) {
    let streams = [
        (
            "apiserver_initial_events",
            replay_body("k8s-openapi__v1-36__watch_event-watch_pods_without_initial_events.json"),
        ),
        (
            "apiserver_watch",
            replay_body("k8s-openapi__v1-36__watch_event-watch_pods.json"),
        ),
        ("kubeclient_watch", fixture("kubeclient__watch_stream.json")),
        ("generated_3000", generated()),
    ];
    for (name, body) in &streams {
        let bytes = body.as_bytes();
        let n = lines(body);
        let mut group = c.benchmark_group(format!("k8s_decode/{name}"));
        group.throughput(Throughput::Elements(n));

        let mut decoder = WatchDecoder::default();
        let mut ok = 0u64;
        decoder.decode_lines(bytes, |_, r| ok += u64::from(r.is_ok()));
        assert_eq!(ok, n, "{name}: every line decodes");
        group.bench_function(BenchmarkId::new("ebbflow", n), |b| {
            b.iter(|| {
                decoder.decode_lines(black_box(bytes), |_, r| {
                    black_box(r.ok());
                })
            })
        });

        group.bench_function(BenchmarkId::new("serde_json_value", n), |b| {
            b.iter(|| {
                for line in black_box(bytes).split(|&b| b == b'\n') {
                    if !line.is_empty() {
                        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                        black_box(v);
                    }
                }
            })
        });

        group.bench_function(BenchmarkId::new("split_lines", n), |b| {
            b.iter(|| {
                black_box(bytes)
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count()
            })
        });
        group.finish();
    }
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without the
    // undocumented public function they generate.
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
