//! The kernel's floor under the broadcast thread: what one 100-byte `write` to a loopback
//! TCP socket costs on this machine, with nothing of ours in the way, next to a `write` of
//! the same bytes to `/dev/null` (the bare system call) in the same run.
//!
//! ```text
//! cargo bench --bench tcp_floor
//! ```
//!
//! 4,000 connected pairs (8,000 descriptors, under the 20,000-per-process limit); each
//! round writes once to every server-side socket, in order, with no reader waiting (the
//! bytes stay in the receive buffers), and the median over rounds is printed. One
//! broadcast thread cannot hand one message to N clients faster than N times this floor.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

const PAIRS: usize = 4_000;
const ROUNDS: usize = 9;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs every bench once as a test: keep that quick.
    let rounds = if std::env::args().any(|a| a == "--bench") {
        ROUNDS
    } else {
        1
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let mut clients = Vec::with_capacity(PAIRS);
    let mut servers = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        clients.push(TcpStream::connect(addr).expect("connect"));
        let (s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        servers.push(s);
    }
    let msg = [b'x'; 100];
    let mut tcp = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        for s in servers.iter_mut() {
            s.write_all(&msg).expect("loopback write");
        }
        tcp.push(t.elapsed().as_secs_f64() * 1e6 / PAIRS as f64);
    }
    let mut null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null");
    let mut bare = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..PAIRS {
            null.write_all(&msg).expect("write /dev/null");
        }
        bare.push(t.elapsed().as_secs_f64() * 1e6 / PAIRS as f64);
    }
    let (tcp, bare) = (median(tcp), median(bare));
    println!(
        "tcp_floor: loopback TCP write, 100 B: {tcp:.2} µs (median of {rounds} rounds over {PAIRS} sockets)"
    );
    println!("tcp_floor: write to /dev/null, 100 B: {bare:.3} µs (the system call alone)");
    println!(
        "tcp_floor: one message to 10,000 clients from one thread needs ≥ {:.1} ms",
        tcp * 10_000.0 / 1_000.0
    );
    drop(clients);
}
