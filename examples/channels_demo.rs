//! A broadcast server publishing a timestamped `bench` topic and a `heartbeat`, for manual
//! checks and for `ebbflow-loadgen`.
//!
//! ```text
//! cargo run --release --example channels_demo -- --addr 127.0.0.1:4000 --rate 20
//! ```
//!
//! Topics: `bench` (`{"seq":n,"ts_ns":unix_ns}` `rate` times a second), `heartbeat`
//! (latest-wins, every second), `room:lobby` (commands `ack`, presence). Try
//! `curl -N 'http://127.0.0.1:4000/events?topics=heartbeat'` or `curl http://127.0.0.1:4000/metrics`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ebbflow::channels::{bus, Server, ServerConfig, TopicConfig};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn main() {
    let addr = arg("--addr", "127.0.0.1:4000")
        .parse()
        .expect("--addr host:port");
    let rate: u64 = arg("--rate", "20").parse().expect("--rate messages/s");
    let secs: u64 = arg("--secs", "0").parse().expect("--secs (0: forever)");
    let mut cfg = ServerConfig::new(
        Some(addr),
        vec![
            TopicConfig::new("bench", 4096),
            TopicConfig::new("heartbeat", 16).coalescing(),
            TopicConfig::new("room:lobby", 256)
                .with_commands(["ack"])
                .with_presence(),
        ],
    );
    cfg.limits.max_connections = 20_000;
    let (mut writer, reader) = bus(4 << 20);
    let mut server = Server::start(cfg, reader).expect("server starts");
    writer.set_waker(server.waker());
    server.track_bus_drops(&writer);
    let (mut commands, mut replier) = server.take_commands().expect("command ends");
    println!(
        "channels_demo listening on {} (epoch {}), bench at {rate}/s, pid {}",
        server.local_addr().expect("bound"),
        server.epoch(),
        std::process::id()
    );
    let start = Instant::now();
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = Instant::now();
    let mut next_heartbeat = Instant::now();
    let mut seq = 0u64;
    let mut payload = Vec::with_capacity(64);
    while secs == 0 || start.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        if now >= next {
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            payload.clear();
            use std::io::Write as _;
            let _ = write!(payload, "{{\"seq\":{seq},\"ts_ns\":{ts}}}");
            let _ = writer.try_publish("bench", "tick", &payload);
            writer.flush();
            seq += 1;
            next += period;
        }
        if now >= next_heartbeat {
            payload.clear();
            use std::io::Write as _;
            let _ = write!(payload, "{{\"uptime_s\":{}}}", start.elapsed().as_secs());
            let _ = writer.try_publish("heartbeat", "beat", &payload);
            writer.flush();
            next_heartbeat += Duration::from_secs(1);
        }
        while let Some(cmd) = commands.try_recv() {
            let _ = replier.reply(cmd.origin, Ok(cmd.payload.clone()));
            let _ = writer.try_publish("room:lobby", "acked", &cmd.payload);
            writer.flush();
        }
        let wait = next
            .min(next_heartbeat)
            .saturating_duration_since(Instant::now());
        std::thread::sleep(wait.min(Duration::from_millis(5)));
    }
    server.shutdown().expect("clean shutdown");
}
