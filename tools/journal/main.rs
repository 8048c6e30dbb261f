//! `ebbflow-journal`: inspect a journal directory.
//!
//! ```text
//! cargo run --bin ebbflow-journal -- segments DIR       list segments
//! cargo run --bin ebbflow-journal -- count DIR          count intact entries
//! cargo run --bin ebbflow-journal -- verify DIR         check every CRC; exit 1 on damage
//! cargo run --bin ebbflow-journal -- dump DIR [--from SEQ] [--count N] [--json]
//! ```
//!
//! Read-only: it never repairs (opening the journal for writing does). Exit status: 0 fine,
//! 1 the journal is damaged or unreadable, 2 bad usage.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ebbflow::journal::{JournalError, JournalReader, ReplayFrom};
use ebbflow::sources::record::Record;

const USAGE: &str = "usage: ebbflow-journal <segments|count|verify> DIR
       ebbflow-journal dump DIR [--from SEQ] [--count N] [--json]";

/// A parsed command line.
enum Cmd {
    Segments(PathBuf),
    Count(PathBuf),
    Verify(PathBuf),
    Dump {
        dir: PathBuf,
        from: Option<u64>,
        count: Option<u64>,
        json: bool,
    },
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    let (cmd, rest) = args.split_first().ok_or("missing command")?;
    let (dir, opts) = rest.split_first().ok_or("missing DIR")?;
    let dir = PathBuf::from(dir);
    let simple = |c: fn(PathBuf) -> Cmd| {
        if opts.is_empty() {
            Ok(c(dir.clone()))
        } else {
            Err(format!("unexpected arguments: {opts:?}"))
        }
    };
    match cmd.as_str() {
        "segments" => simple(Cmd::Segments),
        "count" => simple(Cmd::Count),
        "verify" => simple(Cmd::Verify),
        "dump" => {
            let (mut from, mut count, mut json) = (None, None, false);
            let mut it = opts.iter();
            while let Some(o) = it.next() {
                let mut num = |name: &str| -> Result<u64, String> {
                    it.next()
                        .ok_or(format!("{name} needs a number"))?
                        .parse()
                        .map_err(|e| format!("{name}: {e}"))
                };
                match o.as_str() {
                    "--from" => from = Some(num("--from")?),
                    "--count" => count = Some(num("--count")?),
                    "--json" => json = true,
                    other => return Err(format!("unknown option {other}")),
                }
            }
            Ok(Cmd::Dump {
                dir,
                from,
                count,
                json,
            })
        }
        other => Err(format!("unknown command {other}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a == "-h" || a == "--help" || a == "help")
    {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cmd = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ebbflow-journal: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ebbflow-journal: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs a command; `Ok(false)` when it found damage.
fn run(cmd: Cmd) -> Result<bool, JournalError> {
    let out = std::io::stdout();
    let mut out = out.lock();
    match cmd {
        Cmd::Segments(dir) => {
            let r = JournalReader::open(&dir)?;
            let _ = writeln!(out, "journal {:#018x}", r.id());
            let _ = writeln!(
                out,
                "{:>6} {:>12} {:>10} {:>12} {:>7} {:>20}",
                "index", "first_seq", "capacity", "bytes", "sealed", "created_ns"
            );
            for s in r.segments() {
                let _ = writeln!(
                    out,
                    "{:>6} {:>12} {:>10} {:>12} {:>7} {:>20}",
                    s.index(),
                    s.first_seq(),
                    s.capacity(),
                    s.file_len,
                    s.sealed,
                    s.header.created_ns
                );
            }
            Ok(true)
        }
        Cmd::Count(dir) => {
            let r = JournalReader::open(&dir)?;
            let (mut n, mut first, mut last) = (0u64, 0u64, 0u64);
            let mut damage = None;
            for e in r.entries(ReplayFrom::Start)? {
                match e {
                    Ok((seq, _)) => {
                        if n == 0 {
                            first = seq;
                        }
                        n += 1;
                        last = seq;
                    }
                    Err(e) => damage = Some(e),
                }
            }
            let _ = writeln!(out, "entries {n} first_seq {first} last_seq {last}");
            if let Some(e) = damage {
                eprintln!("ebbflow-journal: counting stopped: {e}");
                return Ok(false);
            }
            Ok(true)
        }
        Cmd::Verify(dir) => {
            let r = JournalReader::open(&dir)?;
            let v = r.verify();
            for p in &v.problems {
                let _ = writeln!(out, "DAMAGED {p}");
            }
            let _ = writeln!(
                out,
                "{} segments {} entries {} first_seq {} last_seq {} problems {}",
                if v.is_ok() { "OK" } else { "FAILED" },
                v.segments,
                v.entries,
                v.first_seq,
                v.last_seq,
                v.problems.len()
            );
            Ok(v.is_ok())
        }
        Cmd::Dump {
            dir,
            from,
            count,
            json,
        } => {
            let r = JournalReader::open(&dir)?;
            let from = from.map_or(ReplayFrom::Start, ReplayFrom::Seq);
            let mut left = count.unwrap_or(u64::MAX);
            for e in r.entries(from)? {
                if left == 0 {
                    break;
                }
                left -= 1;
                let (seq, rec) = e?;
                let line = if json {
                    json_line(seq, &rec)
                } else {
                    format!("{seq}\t{rec:?}")
                };
                if writeln!(out, "{line}").is_err() {
                    break; // closed pipe (`| head`)
                }
            }
            Ok(true)
        }
    }
}

fn json_line(seq: u64, r: &Record) -> String {
    let fields: serde_json::Map<String, serde_json::Value> = r
        .fields()
        .map(|f| {
            use ebbflow::sources::record::FieldValue as V;
            let v = match f.value {
                V::I64(x) => serde_json::json!(x),
                V::F64(x) => serde_json::json!(x),
                V::Bool(x) => serde_json::json!(x),
                V::Sym(s) => serde_json::json!({ "sym": s.id() }),
            };
            (f.id.name().to_string(), v)
        })
        .collect();
    serde_json::json!({
        "seq": seq,
        "kind": r.kind.name(),
        "op": r.op.name(),
        "key": format!("{:#018x}", r.key),
        "record_seq": r.seq,
        "source_ns": r.source_ns,
        "ingest_ns": r.ingest_ns,
        "resource_version": r.resource_version,
        "namespace": r.namespace.id(),
        "name": r.name.id(),
        "flags": r.flags.0,
        "fields": fields,
    })
    .to_string()
}
