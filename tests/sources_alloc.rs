//! Zero allocations per event in steady state: a counting global allocator
//! around 1,000,000 decoded watch events.
//!
//! Run: `cargo test --release --test sources_alloc` (also passes in debug,
//! more slowly).

use ebbflow::sources::intern::{known, Symbol};
use ebbflow::sources::k8s::{DecodeError, Decoded, DecoderConfig, WatchDecoder};
use ebbflow::sources::record::{FieldId, FieldValue, Kind};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/k8s/");
const EVENTS: u64 = 1_000_000;
const PODS: usize = 2000;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
}

/// Removes whitespace outside strings.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_str, mut esc) = (false, false);
    for c in json.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if !c.is_ascii_whitespace() {
            out.push(c);
            in_str = c == '"';
        }
    }
    out
}

/// A realistic stream built from real fixtures: `PODS` pods (from the
/// kubeclient and apiserver watch lines) each in 4 variants (restart
/// counts, phases, CrashLoopBackOff), nodes, events, deployments, a
/// bookmark, an ERROR/410 and a few bad lines. `offset` shifts the names
/// so that a second stream holds strings the first never interned.
fn stream(offset: usize) -> String {
    let small = fixture("kubeclient__watch_stream.json");
    let small: Vec<&str> = small.lines().collect();
    let replay: serde_json::Value = serde_json::from_str(&fixture(
        "k8s-openapi__v1-36__watch_event-watch_pods_without_initial_events.json",
    ))
    .unwrap();
    let big: Vec<String> = replay[0]["response_body"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let node = minify(&fixture("kubeclient__node_notice.json"));
    let event = minify(&fixture("k8s__core.v1.Event.json"));
    let deployment = minify(&fixture("kubeclient__deployment.json"));
    let status = minify(&fixture("kubeclient__pods_410.json"));

    let mut out = String::new();
    for p in 0..PODS {
        let id = p + offset;
        for v in 0..4 {
            let rv = 1000 + id * 4 + v;
            let line = if p % 50 == 0 {
                // One in 50 pods is a full 7-10 KB apiserver line.
                big[p / 50 % 8]
                    .replacen("\"name\":\"", &format!("\"name\":\"v{id}-"), 1)
                    .replacen("\"restartCount\":0", &format!("\"restartCount\":{v}"), 1)
            } else {
                let template = small[v % 3];
                let mut l = template
                    .replace("\"php\"", &format!("\"php-{id}\""))
                    .replace(
                        "\"resourceVersion\":\"13",
                        &format!("\"resourceVersion\":\"{rv}13"),
                    )
                    // Label sets: one per 10 pods, keys out of order (the
                    // decoder sorts them), new ones in the fresh stream.
                    .replace(
                        "\"labels\":{\"name\":\"foo\"}",
                        &format!(
                            "\"labels\":{{\"pod-template-hash\":\"h{}\",\"name\":\"foo\"}}",
                            id / 10
                        ),
                    );
                let state = if v == 3 {
                    r#"{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s restarting failed container"}}"#
                } else {
                    r#"{"running":{"startedAt":"2015-02-09T10:40:00Z"}}"#
                };
                l = l.replace(
                    "\"status\":{\"phase\":\"Pending\"",
                    &format!(
                        "\"status\":{{\"phase\":\"{}\",\"conditions\":[{{\"type\":\"Ready\",\"status\":\"{}\"}}],\"containerStatuses\":[{{\"name\":\"nginx\",\"restartCount\":{},\"state\":{state}}}]",
                        if v == 0 { "Pending" } else { "Running" },
                        if v == 3 { "False" } else { "True" },
                        v * 3 + p % 5,
                    ),
                );
                l
            };
            out.push_str(&line);
            out.push('\n');
        }
        if p % 20 == 0 {
            let n = node.replace("openshift.local", &format!("node-{}", id % 50));
            out.push_str(&format!(
                "{{\"type\":\"MODIFIED\",\"object\":{}",
                &n[n.find("\"object\":").unwrap() + 9..]
            ));
            out.push('\n');
            out.push_str(&format!(
                "{{\"type\":\"ADDED\",\"object\":{}}}\n",
                event.replace("nameValue", &format!("ev-{id}"))
            ));
            out.push_str(&format!(
                "{{\"type\":\"MODIFIED\",\"object\":{}}}\n",
                deployment.replace("nginx-deployment", &format!("web-{}", id % 80))
            ));
        }
        if p % 500 == 0 {
            out.push_str(&big[8]); // BOOKMARK
            out.push_str("\n\r\n");
            out.push_str(&format!("{{\"type\":\"ERROR\",\"object\":{status}}}\n"));
            out.push_str(
                "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"trunc\n",
            );
            out.push_str("not json at all\n");
        }
    }
    out
}

/// What the measured run saw (plain integers: updating them allocates nothing).
#[derive(Default)]
struct Tally {
    outcomes: u64,
    crash_loops: u64,
    relists: u64,
    restart_sum: i64,
    labelled: u64,
    kinds: [u64; Kind::COUNT],
}

impl Tally {
    fn add(&mut self, r: Result<Decoded, DecodeError>) {
        self.outcomes += 1;
        if let Ok(d) = r {
            let rec = d.record();
            self.kinds[rec.kind as usize] += 1;
            if let Some(FieldValue::Sym(s)) = rec.get(FieldId::WaitingReason) {
                self.crash_loops += u64::from(s == known::CRASH_LOOP_BACK_OFF);
            }
            self.restart_sum += rec
                .get(FieldId::RestartsTotal)
                .and_then(FieldValue::as_i64)
                .unwrap_or(0);
            self.relists += u64::from(matches!(d, Decoded::Relist(_)));
            if let Some(FieldValue::Sym(s)) = rec.get(FieldId::Labels) {
                self.labelled += u64::from(s != Symbol::EMPTY);
            }
        }
    }
}

#[test]
fn one_million_events_without_allocating() {
    // Everything that allocates happens here, before measuring.
    let warm = stream(0);
    let fresh = stream(PODS); // names the decoder has not seen yet
    let mut decoder = WatchDecoder::new(DecoderConfig::default());
    let (mut records, mut errors) = (0u64, 0u64);
    decoder.decode_lines(warm.as_bytes(), |_, r| match r {
        Ok(_) => records += 1,
        Err(_) => errors += 1,
    });
    assert!(records > 4 * PODS as u64);
    let per_pass = records + errors;
    let interned_after_warmup = decoder.interner().len();
    assert!(decoder
        .interner()
        .get("name=foo,pod-template-hash=h399")
        .is_none());

    // The counter works: an allocation on this thread while counting is seen.
    let (probe, probe_allocations) =
        counting_alloc::on_this_thread(|| std::hint::black_box(Vec::<u8>::with_capacity(16)));
    drop(probe);
    assert_eq!(probe_allocations, 1);

    // Measure.
    let mut t = Tally::default();
    let ((), allocations) = counting_alloc::on_this_thread(|| {
        decoder.decode_lines(fresh.as_bytes(), |_, r| t.add(r));
        while t.outcomes < EVENTS {
            decoder.decode_lines(warm.as_bytes(), |_, r| {
                if t.outcomes < EVENTS {
                    t.add(r)
                }
            });
        }
    });
    let Tally {
        outcomes,
        crash_loops,
        relists,
        restart_sum,
        labelled,
        kinds,
    } = t;

    assert_eq!(outcomes, EVENTS);
    assert_eq!(allocations, 0, "allocations while decoding {EVENTS} events");
    // The measured run did real work: new strings were interned, every
    // kind was decoded, CrashLoopBackOff and 410 were seen.
    assert!(decoder.interner().len() > interned_after_warmup + PODS / 2);
    assert!(kinds[Kind::Pod as usize] > EVENTS / 2);
    assert!(kinds[Kind::Node as usize] > 0 && kinds[Kind::Event as usize] > 0);
    assert!(kinds[Kind::Deployment as usize] > 0 && kinds[Kind::Status as usize] > 0);
    assert!(crash_loops > EVENTS / 5);
    assert!(relists > 0 && restart_sum > 0);
    // Label sets were interned during the measured run (the fresh stream's
    // `h200`…`h399` sets), and nearly every pod carried one.
    assert!(labelled > EVENTS / 2);
    assert_eq!(decoder.stats().labels_hashed, 0);
    let (warm_set, fresh_set) = (
        "name=foo,pod-template-hash=h0",
        "name=foo,pod-template-hash=h399",
    );
    assert!(decoder.interner().get(warm_set).is_some());
    assert!(decoder.interner().get(fresh_set).is_some());
    let st = decoder.stats();
    assert_eq!(st.errors.truncated, st.errors.not_json);
    assert!(st.errors.truncated > 0);
    eprintln!(
        "decoded {EVENTS} outcomes ({per_pass} per pass) with 0 allocations; interner {} strings, {} bytes",
        decoder.interner().len(),
        decoder.interner().bytes_used()
    );
}
