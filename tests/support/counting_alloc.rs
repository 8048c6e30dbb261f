//! A counting global allocator for the zero-allocation tests. Include it with
//! `#[path = "support/counting_alloc.rs"] mod counting_alloc;`: it installs itself as the
//! test binary's `#[global_allocator]`.
//!
//! Counting is off by default. [`on_this_thread`] counts what the calling thread allocates
//! (the test harness's other threads cannot disturb it); [`in_process`] counts every
//! thread, for pipelines whose stages run on threads of their own.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static PROCESS_WIDE: AtomicBool = AtomicBool::new(false);

thread_local! {
    static THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    // `try_with`: the flag may already be gone during thread teardown.
    if PROCESS_WIDE.load(Ordering::Relaxed) || THIS_THREAD.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` unchanged; counting touches only atomics and a
// const-initialised thread-local `Cell` (neither allocates).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` counting the calling thread's allocations; returns its result and the count.
pub fn on_this_thread<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    THIS_THREAD.with(|c| c.set(true));
    let r = f();
    THIS_THREAD.with(|c| c.set(false));
    (r, ALLOCATIONS.load(Ordering::SeqCst) - before)
}

/// Runs `f` counting every thread's allocations; returns its result and the count.
pub fn in_process<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    PROCESS_WIDE.store(true, Ordering::SeqCst);
    let r = f();
    PROCESS_WIDE.store(false, Ordering::SeqCst);
    (r, ALLOCATIONS.load(Ordering::SeqCst) - before)
}
