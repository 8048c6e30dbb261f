//! The interner across threads: one writer, lock-free readers.
//!
//! Run: `cargo test --test sources_intern`

use std::sync::mpsc;
use std::thread;

use ebbflow::sources::intern::{Interner, InternerConfig, Symbol, WELL_KNOWN};

const N: usize = if cfg!(miri) { 200 } else { 50_000 };

fn text(i: usize) -> String {
    format!("namespace-{}/pod-{}", i % 97, i)
}

#[test]
fn reader_sees_every_published_string() {
    let mut interner = Interner::new(InternerConfig {
        max_entries: (N + WELL_KNOWN.len()) as u32,
        max_bytes: N * 32,
    });
    let resolver = interner.resolver();
    let base = WELL_KNOWN.len();
    let reader = thread::spawn(move || {
        // Poll the published length and resolve everything below it: each
        // id must resolve, to exactly the string the writer interned.
        let mut checked = base;
        let mut polls = 0u64;
        while checked < base + N {
            let len = resolver.len();
            assert!(len <= base + N);
            while checked < len {
                let got = resolver.resolve(Symbol::from_id(checked as u32));
                assert_eq!(got, Some(text(checked - base).as_str()));
                checked += 1;
            }
            // An id beyond the length read above resolves only if the
            // writer has published it since (it keeps going meanwhile), and
            // then to its own string; never past the last one.
            let beyond = len + 1;
            match resolver.resolve(Symbol::from_id(beyond as u32)) {
                None => {}
                Some(got) => {
                    assert!(resolver.len() > beyond);
                    assert_eq!(got, text(beyond - base));
                }
            }
            assert_eq!(resolver.resolve(Symbol::from_id((base + N) as u32)), None);
            polls += 1;
            thread::yield_now();
        }
        polls
    });
    let writer = thread::spawn(move || {
        let strings: Vec<String> = (0..N).map(text).collect();
        for (i, s) in strings.iter().enumerate() {
            assert_eq!(interner.intern(s), Symbol::from_id((base + i) as u32));
        }
        // Interning again finds the same ids.
        for (i, s) in strings.iter().enumerate().step_by(997) {
            assert_eq!(interner.intern(s), Symbol::from_id((base + i) as u32));
        }
        interner
    });
    let interner = writer.join().unwrap();
    let polls = reader.join().unwrap();
    assert!(polls >= 1);
    assert_eq!(interner.len(), base + N);
    assert_eq!(interner.overflows(), 0);
}

#[test]
fn symbols_handed_over_resolve_immediately() {
    let mut interner = Interner::default();
    let resolver = interner.resolver();
    let (tx, rx) = mpsc::sync_channel::<(Symbol, usize)>(64);
    let reader = thread::spawn(move || {
        let mut n = 0;
        for (sym, i) in rx {
            // The symbol was published before it was sent.
            assert_eq!(resolver.resolve(sym), Some(text(i).as_str()));
            n += 1;
        }
        n
    });
    for i in 0..N.min(5000) {
        let sym = interner.intern(&text(i));
        tx.send((sym, i)).unwrap();
    }
    drop(tx);
    assert_eq!(reader.join().unwrap(), N.min(5000));
}

#[test]
fn overflow_is_visible_to_readers() {
    let mut interner = Interner::new(InternerConfig {
        max_entries: WELL_KNOWN.len() as u32 + 10,
        max_bytes: 1 << 16,
    });
    let resolver = interner.resolver();
    let syms: Vec<Symbol> = (0..20).map(|i| interner.intern(&text(i))).collect();
    assert!(syms[..10].iter().all(|s| !s.is_overflow()));
    assert!(syms[10..].iter().all(|s| s.is_overflow()));
    let handle = thread::spawn(move || {
        (
            resolver.overflows(),
            resolver.len(),
            resolver.resolve(Symbol::OVERFLOW).is_none(),
        )
    });
    assert_eq!(handle.join().unwrap(), (10, WELL_KNOWN.len() + 10, true));
}
