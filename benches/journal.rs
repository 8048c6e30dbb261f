//! Journal throughput: appending per durability policy, and replaying, next to writing and
//! reading the same bytes (the same 144-byte framed entries, CRC included) with plain
//! buffered `std::fs::File` I/O, in the same run.
//!
//! `CARGO_TARGET_DIR=/work/target-journal cargo bench --bench journal -- --warm-up-time 1 --measurement-time 3`
//!
//! Every iteration handles `N` entries in batches of `BATCH` (the engine's default most
//! events per batch); the journal commits once per batch. Criterion reports entries per
//! second; MB/s = entries/s × 144 bytes. Files live in a directory under
//! `std::env::temp_dir()`, removed at the end; the journal keeps at most 4 segments of
//! 64 MiB (retention), the file peer rotates files of the same size the same way.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ebbflow::journal::format::{entry_crc, frame_word, record_bytes, record_from_bytes, ENTRY_LEN};
use ebbflow::journal::{Durability, Journal, JournalConfig, JournalReader, ReplayFrom, Retention};
use ebbflow::sources::pace::Pace;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

/// Entries per measured iteration.
const N: u64 = 10_240;
/// Entries per batch (one commit each).
const BATCH: u64 = 256;
const SEGMENT_BYTES: u64 = 64 << 20;
const KEEP_SEGMENTS: u64 = 4;
/// Entries in the journal the replay benchmarks read.
const REPLAY_N: u64 = 200_000;

fn records() -> Vec<Record> {
    (0..BATCH)
        .map(|i| {
            let mut r = Record::new(Kind::Tick, Op::Added);
            r.key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            r.seq = i;
            r.ingest_ns = 1_700_000_000_000_000_000 + i as i64;
            r.push(FieldId::Price, FieldValue::F64(i as f64));
            r.push(FieldId::Quantity, FieldValue::F64(1.0));
            r
        })
        .collect()
}

/// A journal entry's bytes, as the journal frames it.
fn frame(seq: u64, r: &Record, out: &mut [u8; ENTRY_LEN]) {
    out[8..16].copy_from_slice(&seq.to_le_bytes());
    out[16..].copy_from_slice(record_bytes(r));
    let w = frame_word(entry_crc(&out[8..]));
    out[0..8].copy_from_slice(&w.to_le_bytes());
}

struct TmpDir(PathBuf);
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> TmpDir {
    let p = std::env::temp_dir().join(format!(
        "ebbflow-bench-journal-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    TmpDir(p)
}

/// The peer: buffered `std::fs::File` writes of the same framed entries, rotating to a
/// new file every `SEGMENT_BYTES` and deleting the oldest beyond `KEEP_SEGMENTS`.
struct FilePeer {
    dir: PathBuf,
    w: BufWriter<File>,
    written: u64,
    index: u64,
    seq: u64,
    sync_per_batch: bool,
}

impl FilePeer {
    fn new(dir: &Path, sync_per_batch: bool) -> FilePeer {
        let w = BufWriter::with_capacity(1 << 16, File::create(dir.join("f-0")).unwrap());
        FilePeer {
            dir: dir.to_path_buf(),
            w,
            written: 0,
            index: 0,
            seq: 1,
            sync_per_batch,
        }
    }

    fn batch(&mut self, recs: &[Record]) {
        let mut buf = [0u8; ENTRY_LEN];
        for r in recs {
            if self.written + ENTRY_LEN as u64 > SEGMENT_BYTES {
                self.w.flush().unwrap();
                self.index += 1;
                self.w = BufWriter::with_capacity(
                    1 << 16,
                    File::create(self.dir.join(format!("f-{}", self.index))).unwrap(),
                );
                self.written = 0;
                if self.index >= KEEP_SEGMENTS {
                    let _ = std::fs::remove_file(
                        self.dir.join(format!("f-{}", self.index - KEEP_SEGMENTS)),
                    );
                }
            }
            frame(self.seq, r, &mut buf);
            self.w.write_all(&buf).unwrap();
            self.seq += 1;
            self.written += ENTRY_LEN as u64;
        }
        if self.sync_per_batch {
            self.w.flush().unwrap();
            self.w.get_ref().sync_data().unwrap();
        }
    }
}

fn append(c: &mut Criterion) {
    let recs = records();
    let mut g = c.benchmark_group("journal_append");
    g.throughput(Throughput::Elements(N))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let policies = [
        ("journal_os", Durability::Os),
        (
            "journal_interval_10ms",
            Durability::Interval(Duration::from_millis(10)),
        ),
        ("journal_every_batch", Durability::EveryBatch),
    ];
    for (name, durability) in policies {
        let dir = tmp(name);
        let mut j = Journal::open(
            &dir.0,
            JournalConfig {
                segment_bytes: SEGMENT_BYTES,
                durability,
                retention: Retention {
                    max_bytes: Some(KEEP_SEGMENTS * SEGMENT_BYTES),
                    max_age: None,
                },
                ..JournalConfig::default()
            },
        )
        .unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..N / BATCH {
                    for r in &recs {
                        j.append(r).unwrap();
                    }
                    j.commit().unwrap();
                }
                j.drain_events(|e| {
                    black_box(e);
                });
                black_box(j.acked())
            })
        });
        drop(j);
    }
    for (name, sync) in [
        ("file_bufwriter", false),
        ("file_bufwriter_fdatasync_per_batch", true),
    ] {
        let dir = tmp(name);
        let mut peer = FilePeer::new(&dir.0, sync);
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..N / BATCH {
                    peer.batch(&recs);
                }
                black_box(peer.seq)
            })
        });
        drop(peer);
    }
    g.finish();
}

fn replay(c: &mut Criterion) {
    let recs = records();
    let dir = tmp("replay");
    let jdir = dir.0.join("journal");
    let mut j = Journal::open(
        &jdir,
        JournalConfig {
            segment_bytes: SEGMENT_BYTES,
            durability: Durability::Os,
            ..JournalConfig::default()
        },
    )
    .unwrap();
    let file = dir.0.join("plain");
    let mut w = BufWriter::new(File::create(&file).unwrap());
    let mut buf = [0u8; ENTRY_LEN];
    for i in 0..REPLAY_N {
        let r = &recs[(i % BATCH) as usize];
        let seq = j.append(r).unwrap();
        frame(seq, r, &mut buf);
        w.write_all(&buf).unwrap();
    }
    j.sync().unwrap();
    w.flush().unwrap();
    drop(w);
    drop(j);

    let mut g = c.benchmark_group("journal_replay");
    g.throughput(Throughput::Elements(REPLAY_N))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let reader = JournalReader::open(&jdir).unwrap();
    g.bench_function("journal_entries", |b| {
        b.iter(|| {
            let mut x = 0u64;
            for e in reader.entries(ReplayFrom::Start).unwrap() {
                x ^= e.unwrap().1.key;
            }
            black_box(x)
        })
    });
    g.bench_function("journal_replay_flat_out", |b| {
        b.iter(|| {
            let mut x = 0u64;
            reader
                .replay(ReplayFrom::Start, Pace::FlatOut, |_, r| {
                    x ^= r.key;
                    std::ops::ControlFlow::Continue(())
                })
                .unwrap();
            black_box(x)
        })
    });
    g.bench_function("file_bufreader", |b| {
        b.iter(|| {
            // The same checks as the journal: length, CRC, sequence, record validity.
            let mut rd = BufReader::with_capacity(1 << 16, File::open(&file).unwrap());
            let mut buf = [0u8; ENTRY_LEN];
            let mut x = 0u64;
            let mut seq = 1u64;
            while rd.read_exact(&mut buf).is_ok() {
                let word = u64::from_le_bytes(buf[0..8].try_into().unwrap());
                assert_eq!(word, frame_word(entry_crc(&buf[8..])));
                assert_eq!(u64::from_le_bytes(buf[8..16].try_into().unwrap()), seq);
                x ^= record_from_bytes(&buf[16..]).unwrap().key;
                seq += 1;
            }
            assert_eq!(seq - 1, REPLAY_N);
            black_box(x)
        })
    });
    g.finish();
}

criterion_group!(benches, append, replay);
criterion_main!(benches);
