//! Binary tick/sensor frames and CSV: round trips, record contents, and
//! one test per malformed-input class (decoding continues after each).

use ebbflow::sources::hash::key_of;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op};
use ebbflow::sources::ticks::{
    parse_csv, AssetClass, CsvError, DeviceType, FrameError, Parsed, Reading, Tick, TickDecoder,
    FRAME_SIZE,
};

fn tick(name: &str, price: f64) -> Tick {
    Tick {
        time_ns: 1_767_225_600_000_000_123,
        class: AssetClass::Crypto,
        instrument: Tick::instrument_from(name).unwrap(),
        price,
        quantity: 0.25,
        buy: true,
    }
}

fn reading(id: u32, value: f64) -> Reading {
    Reading {
        time_ns: 1_767_225_600_000_000_456,
        device_type: DeviceType::AirQuality,
        device_id: id,
        edge_node: id % 200,
        value,
    }
}

#[test]
fn frame_layout_is_the_documented_one() {
    let f = tick("BTC/USD", 64000.5).to_frame();
    assert_eq!(f.len(), 40);
    assert_eq!(&f[..4], &[0xEB, 1, 1, 1]);
    assert_eq!(&f[4..8], &[0, 0, 0, 0]);
    assert_eq!(
        i64::from_le_bytes(f[8..16].try_into().unwrap()),
        1_767_225_600_000_000_123
    );
    assert_eq!(f64::from_le_bytes(f[16..24].try_into().unwrap()), 64000.5);
    assert_eq!(f64::from_le_bytes(f[24..32].try_into().unwrap()), 0.25);
    assert_eq!(&f[32..40], b"BTC/USD\0");
    let r = reading(70001, 12.5).to_frame();
    assert_eq!(&r[..4], &[0xEB, 2, 1, 0]);
    assert_eq!(u32::from_le_bytes(r[4..8].try_into().unwrap()), 70001);
    assert_eq!(f64::from_le_bytes(r[16..24].try_into().unwrap()), 12.5);
    assert_eq!(
        u32::from_le_bytes(r[24..28].try_into().unwrap()),
        70001 % 200
    );
    assert_eq!(&r[28..40], &[0; 12]);
}

#[test]
fn frames_decode_into_records() {
    let mut d = TickDecoder::default().with_clock(|| 7);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&tick("BTC/USD", 64000.5).to_frame());
    bytes.extend_from_slice(&reading(70001, 12.5).to_frame());
    let mut recs = Vec::new();
    assert_eq!(d.decode_frames(&bytes, |r| recs.push(r.unwrap())), 2);
    let t = recs[0];
    assert_eq!(
        (t.kind, t.op, t.seq, t.ingest_ns),
        (Kind::Tick, Op::Modified, 0, 7)
    );
    assert_eq!(t.source_ns, 1_767_225_600_000_000_123);
    assert_eq!(t.key, key_of(b"Tick", b"crypto", b"BTC/USD"));
    assert_eq!(d.resolve(t.name), Some("BTC/USD"));
    assert_eq!(d.resolve(t.namespace), Some("crypto"));
    assert_eq!(t.get(FieldId::Instrument), Some(FieldValue::Sym(t.name)));
    assert_eq!(
        t.get(FieldId::AssetClass),
        Some(FieldValue::Sym(t.namespace))
    );
    assert_eq!(t.get(FieldId::Price), Some(FieldValue::F64(64000.5)));
    assert_eq!(t.get(FieldId::Quantity), Some(FieldValue::F64(0.25)));
    assert_eq!(t.get(FieldId::Side), Some(FieldValue::Bool(true)));
    let s = recs[1];
    assert_eq!((s.kind, s.seq), (Kind::Sensor, 1));
    assert_eq!(s.key, key_of(b"Sensor", b"air_quality", b"70001"));
    assert_eq!(d.resolve(s.namespace), Some("air_quality"));
    assert_eq!(s.get(FieldId::DeviceId), Some(FieldValue::I64(70001)));
    assert_eq!(s.get(FieldId::EdgeNode), Some(FieldValue::I64(1)));
    assert_eq!(s.get(FieldId::Value), Some(FieldValue::F64(12.5)));
    assert_eq!(d.stats().ticks, 1);
    assert_eq!(d.stats().readings, 1);
}

#[test]
fn csv_round_trips_and_matches_frames() {
    let mut csv = Vec::new();
    csv.extend_from_slice(b"# exported 2026-01-01\n\n");
    tick("EURUSD", 1.0825).write_csv(&mut csv).unwrap();
    reading(5, -3.75).write_csv(&mut csv).unwrap();
    assert_eq!(
        String::from_utf8(csv.clone()).unwrap(),
        "# exported 2026-01-01\n\nT,1767225600000000123,crypto,EURUSD,1.0825,0.25,B\n\
         S,1767225600000000456,air_quality,5,5,-3.75\n"
    );
    let mut a = TickDecoder::default().with_clock(|| 0);
    let mut b = TickDecoder::default().with_clock(|| 0);
    let mut from_csv = Vec::new();
    assert_eq!(a.decode_csv(&csv, |r| from_csv.push(r.unwrap())), 2);
    let mut frames = Vec::new();
    frames.extend_from_slice(&tick("EURUSD", 1.0825).to_frame());
    frames.extend_from_slice(&reading(5, -3.75).to_frame());
    let mut from_frames = Vec::new();
    b.decode_frames(&frames, |r| from_frames.push(r.unwrap()));
    assert_eq!(from_csv, from_frames);
    // CRLF and a missing final newline are fine.
    let mut c = TickDecoder::default();
    let mut n = 0;
    c.decode_csv(b"T,1,stock,STK001,10,5,S\r\nS,2,water,9,9,1.5", |r| {
        r.unwrap();
        n += 1;
    });
    assert_eq!(n, 2);
}

fn corrupt(f: impl FnOnce(&mut [u8; FRAME_SIZE])) -> [u8; FRAME_SIZE] {
    let mut x = tick("ETH/USD", 3000.0).to_frame();
    f(&mut x);
    x
}

#[test]
fn malformed_frames_get_specific_errors_and_decoding_continues() {
    let bad: Vec<([u8; FRAME_SIZE], FrameError)> = vec![
        (
            corrupt(|f| f[0] = 0xEA),
            FrameError::BadMagic {
                offset: 0,
                byte: 0xEA,
            },
        ),
        (
            corrupt(|f| f[1] = 9),
            FrameError::UnknownFrameType {
                offset: 0,
                frame_type: 9,
            },
        ),
        (
            corrupt(|f| f[2] = 4),
            FrameError::UnknownClass {
                offset: 0,
                value: 4,
            },
        ),
        (
            corrupt(|f| f[3] = 2),
            FrameError::BadSide {
                offset: 0,
                value: 2,
            },
        ),
        (
            corrupt(|f| f[5] = 1),
            FrameError::ReservedNotZero {
                offset: 0,
                index: 5,
            },
        ),
        (
            corrupt(|f| f[32..40].copy_from_slice(&[0; 8])),
            FrameError::BadInstrument { offset: 0 },
        ),
        (
            corrupt(|f| f[33] = b' '),
            FrameError::BadInstrument { offset: 0 },
        ),
        (
            corrupt(|f| f[36] = 0),
            FrameError::BadInstrument { offset: 0 },
        ),
        (
            corrupt(|f| f[16..24].copy_from_slice(&f64::NAN.to_le_bytes())),
            FrameError::NonFinite {
                offset: 0,
                field: "price",
            },
        ),
        (
            corrupt(|f| f[24..32].copy_from_slice(&f64::INFINITY.to_le_bytes())),
            FrameError::NonFinite {
                offset: 0,
                field: "quantity",
            },
        ),
        (
            corrupt(|f| f[16..24].copy_from_slice(&(-1.0f64).to_le_bytes())),
            FrameError::NonPositive {
                offset: 0,
                field: "price",
            },
        ),
        (
            corrupt(|f| f[24..32].copy_from_slice(&0.0f64.to_le_bytes())),
            FrameError::NonPositive {
                offset: 0,
                field: "quantity",
            },
        ),
        (
            {
                let mut r = reading(1, 1.0).to_frame();
                r[30] = 1;
                r
            },
            FrameError::ReservedNotZero {
                offset: 0,
                index: 30,
            },
        ),
        (
            {
                let mut r = reading(1, 1.0).to_frame();
                r[16..24].copy_from_slice(&f64::NEG_INFINITY.to_le_bytes());
                r
            },
            FrameError::NonFinite {
                offset: 0,
                field: "value",
            },
        ),
    ];
    let good = tick("SOL/USD", 150.0).to_frame();
    for (frame, want) in &bad {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(frame);
        bytes.extend_from_slice(&good);
        bytes.extend_from_slice(&good[..13]);
        let mut d = TickDecoder::default();
        let mut out = Vec::new();
        assert_eq!(d.decode_frames(&bytes, |r| out.push(r)), 3);
        assert_eq!(out[0], Err(*want));
        assert_eq!(
            out[1].map(|r| r.get(FieldId::Price)),
            Ok(Some(FieldValue::F64(150.0)))
        );
        assert_eq!(
            out[2],
            Err(FrameError::Truncated {
                offset: 80,
                len: 13
            })
        );
        assert_eq!(d.stats().frame_errors, 2);
        assert_eq!(d.stats().ticks, 1);
    }
    // Streaming: whole frames only, the rest kept by the caller.
    let mut d = TickDecoder::default();
    let mut n = 0;
    let mut bytes = good.to_vec();
    bytes.extend_from_slice(&good[..10]);
    assert_eq!(
        d.decode_complete_frames(&bytes, |r| {
            r.unwrap();
            n += 1;
        }),
        40
    );
    assert_eq!(n, 1);
}

#[test]
fn malformed_csv_gets_specific_errors_and_decoding_continues() {
    let cases: [(&str, CsvError); 13] = [
        (
            "X,1,forex,EURUSD,1,1,B",
            CsvError::UnknownRecordType { line: 1 },
        ),
        (
            "T,1,forex,EURUSD,1,1",
            CsvError::FieldCount {
                line: 1,
                expected: 7,
                found: 6,
            },
        ),
        (
            "S,1,water,1,1,1,1",
            CsvError::FieldCount {
                line: 1,
                expected: 6,
                found: 7,
            },
        ),
        (
            "T,1.5,forex,EURUSD,1,1,B",
            CsvError::BadInteger { line: 1, column: 2 },
        ),
        (
            "T,1,metals,XAU,1,1,B",
            CsvError::UnknownClass { line: 1, column: 3 },
        ),
        (
            "T,1,forex,EUR USD,1,1,B",
            CsvError::BadInstrument { line: 1 },
        ),
        (
            "T,1,forex,TOOLONGNAME,1,1,B",
            CsvError::BadInstrument { line: 1 },
        ),
        (
            "T,1,forex,EURUSD,abc,1,B",
            CsvError::BadNumber { line: 1, column: 5 },
        ),
        (
            "T,1,forex,EURUSD,NaN,1,B",
            CsvError::NonFinite { line: 1, column: 5 },
        ),
        (
            "T,1,forex,EURUSD,1,-2,B",
            CsvError::NonPositive { line: 1, column: 6 },
        ),
        ("T,1,forex,EURUSD,1,1,X", CsvError::BadSide { line: 1 }),
        (
            "S,1,lamp,1,1,1",
            CsvError::UnknownClass { line: 1, column: 3 },
        ),
        (
            "S,1,water,-1,1,1",
            CsvError::BadInteger { line: 1, column: 4 },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(parse_csv(line.as_bytes(), 1).unwrap_err(), want, "{line}");
        let input = format!("{line}\nS,2,energy,7,7,inf\nS,3,energy,7,7,3.5\n");
        let mut d = TickDecoder::default();
        let mut out = Vec::new();
        assert_eq!(d.decode_csv(input.as_bytes(), |r| out.push(r)), 3);
        assert_eq!(out[0], Err(want));
        assert_eq!(out[1], Err(CsvError::NonFinite { line: 2, column: 6 }));
        assert_eq!(
            out[2].map(|r| r.get(FieldId::Value)),
            Ok(Some(FieldValue::F64(3.5)))
        );
        assert_eq!(d.stats().csv_errors, 2);
    }
    assert!(
        matches!(parse_csv(b"S,1,energy,4294967295,0,0", 1), Ok(Parsed::Reading(r)) if r.device_id == u32::MAX)
    );
    assert_eq!(
        parse_csv(b"S,1,energy,4294967296,0,0", 1),
        Err(CsvError::BadInteger { line: 1, column: 4 })
    );
}
