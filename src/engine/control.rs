//! Pipeline-wide control flags shared by the host handles and every pipeline thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

use crossbeam_utils::CachePadded;

use super::ring::LinkShared;
use super::PipelineError;

/// Why a thread stopped processing before its input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// Another thread failed, or shutdown gave up waiting: stop now.
    Abort,
    /// The stage with this index emitted more than its `MAX_FANOUT` allows.
    Overflow(usize),
}

/// Flags and the first failure, shared by every thread of one pipeline.
///
/// Written rarely (shutdown, failure, snapshot requests) and read by every thread, except
/// `input_active`, which the host writes on every push: it has a cache line of its own so
/// those writes never evict the flags the pipeline threads poll.
pub struct Control {
    /// Set while the host is inside a push (Dekker-style gate with `closing`).
    input_active: CachePadded<AtomicBool>,
    /// Shutdown started: the host input refuses new events; threads drain and exit.
    closing: AtomicBool,
    /// Stop at once: a stage failed, or shutdown timed out.
    abort: AtomicBool,
    /// Bumped by every stats snapshot request.
    pub(crate) stats_epoch: AtomicU64,
    /// Per thread: the last epoch whose histograms it folded in (`u64::MAX` once exited).
    pub(crate) acks: Vec<AtomicU64>,
    failure: Mutex<Option<PipelineError>>,
    /// Set while an input that runs host stages is open.
    host_input_open: AtomicBool,
    threads: OnceLock<Vec<Thread>>,
    /// Every ring, so a state change can wake a host parked on one.
    links: OnceLock<Vec<Arc<LinkShared>>>,
}

impl Control {
    pub(crate) fn new(threads: usize) -> Self {
        Control {
            closing: AtomicBool::new(false),
            input_active: CachePadded::new(AtomicBool::new(false)),
            abort: AtomicBool::new(false),
            stats_epoch: AtomicU64::new(0),
            acks: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            failure: Mutex::new(None),
            host_input_open: AtomicBool::new(false),
            threads: OnceLock::new(),
            links: OnceLock::new(),
        }
    }

    pub(crate) fn set_threads(&self, threads: Vec<Thread>) {
        let _ = self.threads.set(threads);
    }

    pub(crate) fn set_host_input_open(&self, open: bool) {
        self.host_input_open.store(open, Ordering::SeqCst);
    }

    /// Whether an input that runs host stages is still open.
    pub(crate) fn host_input_open(&self) -> bool {
        self.host_input_open.load(Ordering::SeqCst)
    }

    pub(crate) fn set_links(&self, links: Vec<Arc<LinkShared>>) {
        let _ = self.links.set(links);
    }

    /// Wakes every pipeline thread and any host thread parked on a ring (after a flag
    /// changed).
    pub(crate) fn wake_all(&self) {
        if let Some(threads) = self.threads.get() {
            for t in threads {
                t.unpark();
            }
        }
        if let Some(links) = self.links.get() {
            for l in links {
                l.data.wake();
                l.space.wake();
            }
        }
    }

    /// Whether shutdown has started.
    #[inline(always)]
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    #[inline(always)]
    pub(crate) fn aborting(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    pub(crate) fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Records the first failure and aborts the pipeline.
    pub(crate) fn fail(&self, error: PipelineError) {
        {
            let mut slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(error);
            }
        }
        self.abort();
    }

    pub(crate) fn failure(&self) -> Option<PipelineError> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Host side: enter a push. Returns false (and leaves) if the pipeline is closing.
    #[inline(always)]
    pub(crate) fn enter_push(&self) -> bool {
        self.input_active.store(true, Ordering::SeqCst);
        if self.closing.load(Ordering::SeqCst) || self.aborting() {
            self.input_active.store(false, Ordering::Release);
            return false;
        }
        true
    }

    #[inline(always)]
    pub(crate) fn leave_push(&self) {
        self.input_active.store(false, Ordering::Release);
    }

    /// Head thread: whether the host can no longer add events. After this returns true,
    /// an empty input ring stays empty.
    pub(crate) fn input_sealed(&self) -> bool {
        // SeqCst pairs with `enter_push`: if the host got past its check, we see it active.
        self.closing.load(Ordering::SeqCst) && !self.input_active.load(Ordering::SeqCst)
    }
}
