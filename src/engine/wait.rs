//! Wait strategies: what a thread does when its input ring is empty or its output ring is
//! full.
//!
//! The strategy is matched only on an empty poll, never per event, so an enum costs the hot
//! path nothing over a generic parameter while staying configuration.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::{self, Thread};
use std::time::Duration;

use crossbeam_utils::Backoff;

/// How a thread waits for work (or for room downstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Spin on the ring with a `pause` hint. Lowest latency; burns its core, so give each
    /// busy-spinning thread a core of its own.
    BusySpin,
    /// Spin with exponential backoff, then `yield` to the scheduler
    /// (`crossbeam_utils::Backoff`). Costs a core only while there is work nearby.
    #[default]
    SpinYield,
    /// Spin, yield, then park until the other end of the ring wakes the thread. Uses no CPU
    /// when idle; the first event after a sleep pays a wake-up (tens of microseconds).
    Park,
}

impl WaitStrategy {
    /// Whether a thread with this strategy may sleep, so the other end must wake it.
    pub(crate) fn sleeps(self) -> bool {
        matches!(self, WaitStrategy::Park)
    }
}

/// Longest a parked thread sleeps before it looks again on its own. Every state change a
/// sleeper waits for rings its doorbell (commits, frees, a ring end dropped, shutdown,
/// abort, snapshot requests); the timeout is a safety net, not part of the protocol.
const PARK_SAFETY_TIMEOUT: Duration = Duration::from_millis(10);

/// One side's sleep flag: the waiting thread raises it before parking, the other side
/// checks it after making progress and unparks the sleeper.
pub(crate) struct Doorbell {
    enabled: bool,
    timeout: Duration,
    sleeping: AtomicBool,
    /// The thread that sleeps on this bell, replaced when the end moves to another thread.
    /// Touched only on the slow paths (before parking, and when ringing a sleeper).
    sleeper: Mutex<Option<Thread>>,
}

impl Doorbell {
    /// A doorbell that is rung only when `enabled` (the waiting side may park).
    pub(crate) fn new(enabled: bool) -> Self {
        Self::with_timeout(enabled, PARK_SAFETY_TIMEOUT)
    }

    fn with_timeout(enabled: bool, timeout: Duration) -> Self {
        Doorbell {
            enabled,
            timeout,
            sleeping: AtomicBool::new(false),
            sleeper: Mutex::new(None),
        }
    }

    /// Called by the side that just made progress (committed data or freed space).
    #[inline(always)]
    pub(crate) fn ring(&self) {
        if self.enabled {
            self.ring_slow();
        }
    }

    #[inline(never)]
    fn ring_slow(&self) {
        // Pairs with the fence in `sleep_unless`: either the sleeper sees our progress
        // when it re-checks, or we see its flag here.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            let sleeper = self.sleeper.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = sleeper.as_ref() {
                t.unpark();
            }
        }
    }

    /// Wakes the sleeper, if any, whatever changed (shutdown, abort, a snapshot request).
    pub(crate) fn wake(&self) {
        if self.enabled {
            self.ring_slow();
        }
    }

    /// Parks the calling thread, for at most `limit`, unless `ready()` already holds after
    /// the flag is raised.
    pub(crate) fn sleep_unless(&self, ready: impl Fn() -> bool, limit: Duration) {
        {
            let mut sleeper = self.sleeper.lock().unwrap_or_else(|e| e.into_inner());
            let me = thread::current();
            if sleeper.as_ref().map(Thread::id) != Some(me.id()) {
                *sleeper = Some(me);
            }
        }
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !ready() {
            thread::park_timeout(self.timeout.min(limit));
        }
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

/// Per-thread idle state: one per wait site, reset whenever work is found.
pub(crate) struct Idler {
    strategy: WaitStrategy,
    backoff: Backoff,
}

impl Idler {
    pub(crate) fn new(strategy: WaitStrategy) -> Self {
        Idler {
            strategy,
            backoff: Backoff::new(),
        }
    }

    /// Work was found: the next wait starts from the cheapest step again.
    #[inline(always)]
    pub(crate) fn reset(&mut self) {
        if self.strategy != WaitStrategy::BusySpin {
            self.backoff.reset();
        }
    }

    /// Waits once. `bell` is the doorbell the other side rings when `ready()` may have
    /// become true; it is used only by [`WaitStrategy::Park`].
    pub(crate) fn wait(&mut self, bell: &Doorbell, ready: impl Fn() -> bool) {
        self.wait_at_most(bell, ready, Duration::MAX);
    }

    /// As [`wait`](Idler::wait), sleeping no longer than `limit`.
    pub(crate) fn wait_at_most(
        &mut self,
        bell: &Doorbell,
        ready: impl Fn() -> bool,
        limit: Duration,
    ) {
        match self.strategy {
            WaitStrategy::BusySpin => std::hint::spin_loop(),
            WaitStrategy::SpinYield => self.backoff.snooze(),
            WaitStrategy::Park => {
                if self.backoff.is_completed() {
                    bell.sleep_unless(ready, limit);
                } else {
                    self.backoff.snooze();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn parked_thread_is_woken_by_the_doorbell_not_the_timeout() {
        // A safety timeout far longer than the test allows: only the doorbell can wake it.
        let bell = Arc::new(Doorbell::with_timeout(true, Duration::from_secs(60)));
        let value = Arc::new(AtomicU64::new(0));
        let (b, v) = (bell.clone(), value.clone());
        let waiter = thread::spawn(move || {
            let mut idler = Idler::new(WaitStrategy::Park);
            while v.load(Ordering::Acquire) == 0 {
                idler.wait(&b, || v.load(Ordering::Acquire) != 0);
            }
        });
        thread::sleep(Duration::from_millis(50));
        let t0 = Instant::now();
        value.store(1, Ordering::Release);
        bell.ring();
        waiter.join().unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "woken only by the timeout"
        );
    }
}
