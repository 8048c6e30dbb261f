//! `cargo run --release --example pipeline`
//!
//! A 4-stage pipeline over a user-defined, one-cache-line event: parse raw readings,
//! convert units, flag readings outside a band, and keep a per-sensor running mean.
//! It pushes a million events, prints what came out and the per-stage statistics.
//!
//! Options: `--events N`, `--placement fused|per-stage|auto`, `--timing off|batch|event`.

use std::time::{Duration, Instant};

use ebbflow::engine::{
    CoreSet, Emitter, Pinning, PipelineBuilder, Placement, Stage, Timing, WaitStrategy,
};

/// A user-defined event: fixed size, `Copy`, no heap. 64 bytes, one cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Reading {
    seq: u64,
    sensor: u32,
    /// Raw ADC counts as sent by the device.
    raw: u32,
    /// Degrees Celsius, filled in by `Convert`.
    celsius: f64,
    /// Running mean of this sensor, filled in by `Smooth`.
    mean: f64,
    /// Set by `Flag` when the reading is outside the band.
    alarm: bool,
}

const SENSORS: usize = 1024;

/// Stage 1: drops readings a device marks invalid (raw == 0).
struct Validate;
impl Stage for Validate {
    type In = Reading;
    type Out = Reading;
    fn process(&mut self, r: Reading, out: &mut Emitter<Reading>) {
        if r.raw != 0 {
            out.emit(r);
        }
    }
}

/// Stage 2: ADC counts to degrees (12-bit ADC over -40..125 °C).
struct Convert;
impl Stage for Convert {
    type In = Reading;
    type Out = Reading;
    fn process(&mut self, mut r: Reading, out: &mut Emitter<Reading>) {
        r.celsius = -40.0 + f64::from(r.raw) * (165.0 / 4095.0);
        out.emit(r);
    }
}

/// Stage 3: flags readings outside 0..=90 °C.
struct Flag;
impl Stage for Flag {
    type In = Reading;
    type Out = Reading;
    fn process(&mut self, mut r: Reading, out: &mut Emitter<Reading>) {
        r.alarm = !(0.0..=90.0).contains(&r.celsius);
        out.emit(r);
    }
}

/// Stage 4: exponential moving mean per sensor, in a table allocated once.
struct Smooth {
    means: Vec<f64>,
}
impl Stage for Smooth {
    type In = Reading;
    type Out = Reading;
    fn process(&mut self, mut r: Reading, out: &mut Emitter<Reading>) {
        let m = &mut self.means[r.sensor as usize % SENSORS];
        *m += 0.05 * (r.celsius - *m);
        r.mean = *m;
        out.emit(r);
    }
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn main() {
    // Read the allowed cores before anything is pinned.
    let cores = CoreSet::detect();
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = arg(&args, "--events").map_or(1_000_000, |v| v.parse().expect("--events N"));
    let placement = match arg(&args, "--placement").unwrap_or("auto") {
        "fused" => Placement::Fused,
        "per-stage" => Placement::PerStage,
        _ => Placement::Auto,
    };
    let timing = match arg(&args, "--timing").unwrap_or("batch") {
        "off" => Timing::Off,
        "event" => Timing::PerEvent,
        _ => Timing::PerBatch,
    };

    let (pipeline, mut input, mut output) = PipelineBuilder::<Reading>::new()
        .stage("validate", Validate)
        .budget(Duration::from_micros(1))
        .stage("convert", Convert)
        .budget(Duration::from_micros(1))
        .stage("flag", Flag)
        .budget(Duration::from_micros(1))
        .stage(
            "smooth",
            Smooth {
                means: vec![20.0; SENSORS],
            },
        )
        .budget(Duration::from_micros(2))
        .placement(placement)
        .pinning(Pinning::None)
        .wait(WaitStrategy::SpinYield)
        .timing(timing)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
    println!("cores allowed: {:?}", cores.ids());
    for t in pipeline.layout() {
        println!("{} runs stages {:?} (wait {:?})", t.name, t.stages, t.wait);
    }

    // A deterministic stream: a slow drift, every 97th reading invalid, spikes now and then.
    let producer = std::thread::spawn(move || {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for seq in 0..events {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = 1500 + (seq / 10_000 % 400) as u32;
            let raw = if seq.is_multiple_of(97) {
                0
            } else if x.is_multiple_of(5000) {
                4000
            } else {
                base + (x % 64) as u32
            };
            let r = Reading {
                seq,
                sensor: (x % SENSORS as u64) as u32,
                raw,
                ..Reading::default()
            };
            input
                .push(r)
                .expect("pipeline accepts until the input is dropped");
        }
    });

    let t0 = Instant::now();
    let (mut received, mut alarms, mut last) = (0u64, 0u64, Reading::default());
    // Read until the producer has dropped its input and every stage has drained.
    loop {
        let n = output.read_batch(|batch| {
            for r in batch {
                received += 1;
                alarms += u64::from(r.alarm);
                last = *r;
            }
        });
        if n == 0 {
            if output.is_finished() {
                break;
            }
            std::thread::yield_now();
        }
    }
    producer.join().expect("producer thread");
    let stats = pipeline.shutdown().unwrap_or_else(|e| {
        eprintln!("pipeline failed: {e}");
        std::process::exit(1);
    });
    let elapsed = t0.elapsed();

    println!(
        "{events} events in, {received} out ({} invalid dropped), {alarms} alarms, {:.2} M events/s",
        events - received,
        received as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "last: sensor {} at {:.1} °C, mean {:.1} °C",
        last.sensor, last.celsius, last.mean
    );
    println!("\n{stats}");
}
