//! The body of a pipeline thread: drain the input ring in batches, run the fused stages,
//! fold statistics on request, wait by strategy when idle, and stop cleanly.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use super::chain::{Downstream, ThreadCx, ThreadSpec};
use super::control::Halt;
use super::ring::Inbound;
use super::stage::Event;
use super::wait::{Idler, WaitStrategy};
use super::PipelineError;

/// Runs one thread: `input` feeds `head` (the first stage on this thread and everything
/// fused after it). `is_head` marks the thread fed by the host.
pub(crate) fn run_segment<T: Event, D: Downstream<T>>(
    mut input: Inbound<T>,
    mut head: D,
    mut cx: ThreadCx,
    is_head: bool,
) {
    let spec = cx.spec.clone();
    if let Some(core) = spec.core {
        core_affinity::set_for_current(core_affinity::CoreId { id: core });
    }
    let control = cx.control.clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        segment_loop(&mut input, &mut head, &mut cx, &spec, is_head)
    }));
    match outcome {
        Ok(Ok(())) | Ok(Err(Halt::Abort)) => {}
        Ok(Err(Halt::Overflow(index))) => {
            let (stage, max_fanout) = spec.names[index].clone();
            control.fail(PipelineError::EmitterOverflow {
                stage,
                index,
                max_fanout,
            });
        }
        Err(payload) => {
            let message = panic_message(&*payload);
            let index = cx.current;
            control.fail(PipelineError::StagePanicked {
                stage: spec.names[index].0.clone(),
                index,
                message,
            });
        }
    }
    // Final fold: a snapshot reader holds the lock only briefly.
    while !head.publish() {
        std::thread::yield_now();
    }
    // Dropping `head` drops the stages (their `Drop` may panic too) and this thread's
    // outbound rings, which tells the next thread that no more events will come.
    let first = cx.current;
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(head))) {
        control.fail(PipelineError::StagePanicked {
            stage: spec.names[first].0.clone(),
            index: first,
            message: format!(
                "while dropping the thread's stages: {}",
                panic_message(&*payload)
            ),
        });
    }
    control.acks[spec.index].store(u64::MAX, Ordering::Release);
}

/// The failure a stage call on the caller's thread ended with (inline pipelines and host
/// stages): `None` when it went through; for [`Halt::Abort`], what `aborted` says
/// (another thread failed; `None` where that is not a failure of its own). Allocates only
/// on failure.
pub(crate) fn caller_failure(
    outcome: std::thread::Result<Result<(), Halt>>,
    cx: &ThreadCx,
    aborted: impl FnOnce() -> Option<PipelineError>,
) -> Option<PipelineError> {
    let names = &cx.spec.names;
    match outcome {
        Ok(Ok(())) => None,
        Ok(Err(Halt::Abort)) => aborted(),
        Ok(Err(Halt::Overflow(index))) => Some(PipelineError::EmitterOverflow {
            stage: names[index].0.clone(),
            index,
            max_fanout: names[index].1,
        }),
        Err(payload) => Some(PipelineError::StagePanicked {
            stage: names[cx.current].0.clone(),
            index: cx.current,
            message: panic_message(&*payload),
        }),
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

/// Spins on the ring's write index only, up to `IDLE_POLLS` times; true if data arrived.
#[inline]
fn poll_ring<T: Event>(input: &Inbound<T>) -> bool {
    const IDLE_POLLS: u32 = 256;
    for _ in 0..IDLE_POLLS {
        if input.has_data() {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

fn segment_loop<T: Event, D: Downstream<T>>(
    input: &mut Inbound<T>,
    head: &mut D,
    cx: &mut ThreadCx,
    spec: &ThreadSpec,
    is_head: bool,
) -> Result<(), Halt> {
    let control = cx.control.clone();
    let mut idler = Idler::new(spec.wait);
    let mut folded_epoch = 0u64;
    loop {
        let n = input.read_batch(|batch| head.accept(batch, cx))?;
        let epoch = control.stats_epoch.load(Ordering::Relaxed);
        if epoch != folded_epoch && head.publish() {
            folded_epoch = epoch;
            control.acks[spec.index].store(epoch, Ordering::Release);
        }
        if n > 0 {
            if control.aborting() {
                return Err(Halt::Abort);
            }
            idler.reset();
            continue;
        }
        // Idle. Poll the ring alone for a while first: the shutdown, abort and snapshot
        // checks below touch shared lines and lengthen the poll, which a busy-spinning
        // thread pays as latency on the next event.
        if spec.wait == WaitStrategy::BusySpin && poll_ring(input) {
            continue;
        }
        head.on_idle(cx)?;
        let parked = head.flush_idle();
        if control.aborting() {
            return Err(Halt::Abort);
        }
        let finished = if is_head {
            input.is_finished() || (control.input_sealed() && !input.has_data())
        } else {
            input.is_finished()
        };
        if finished && parked == 0 {
            // Stages may still hold events (retries, windows): let them hand them on.
            return head.close(cx);
        }
        if parked > 0 {
            // Drop-oldest events wait for room downstream: poll (a parking thread polls
            // gently rather than spin).
            if spec.wait == super::WaitStrategy::Park {
                std::thread::sleep(std::time::Duration::from_micros(50));
            } else {
                std::thread::yield_now();
            }
            continue;
        }
        idler.wait(&input.shared.data, || {
            input.has_data() || input.is_abandoned() || control.aborting()
        });
    }
}
