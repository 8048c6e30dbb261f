//! The [`Step`] trait and the error a step returns.

use crate::flow::Item;

/// One unit of work in a reactor chain.
///
/// A step runs on the reactor's thread, once per attempt, with the item as the previous
/// steps left it. It may change the item (the changes travel on with it). It must not
/// block and should not allocate: [`run`](Step::run) is on the hot path.
///
/// When a later step of the chain finally fails, the reactor calls
/// [`compensate`](Step::compensate) on every step that completed for this item, in
/// reverse order (a saga): undo whatever side effect `run` had. The default does nothing
/// (for steps without side effects, such as validation).
///
/// Steps are stored as `Box<dyn Step>`, boxed once when the chain is configured; a call
/// is one indirect call and allocates nothing.
pub trait Step: Send + 'static {
    /// A short, stable name (`"validate"`, `"fault_injector"`, …) used in docs, logs and
    /// [`Reactor::step_name`](crate::flow::reactor::Reactor::step_name).
    fn name(&self) -> &'static str;

    /// Runs one attempt. `Err(StepError::Transient(_))` asks for a retry after a backoff;
    /// `Err(StepError::Permanent(_))` fails the chain now.
    fn run(&mut self, item: &mut Item) -> Result<(), StepError>;

    /// Undoes the effect of a completed [`run`](Step::run) for `item` (as the chain
    /// saw it when it failed). Called at most once per completed run.
    fn compensate(&mut self, _item: &Item) {}
}

/// Why a step attempt failed. The `u16` is a step-specific code (see each step's docs);
/// it is counted and reported in [`FailReason`](crate::flow::reactor::FailReason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum StepError {
    /// The attempt failed for a reason that may pass (a busy resource, a timeout): the
    /// reactor retries the step after a backoff, up to the chain's
    /// [`RetryPolicy::max_attempts`](crate::flow::reactor::RetryPolicy::max_attempts).
    #[error("transient step failure (code {0})")]
    Transient(u16),
    /// The attempt failed for a reason a retry cannot fix (invalid input): the chain
    /// fails now and compensates.
    #[error("permanent step failure (code {0})")]
    Permanent(u16),
}

impl StepError {
    /// The step-specific code.
    #[inline]
    pub const fn code(self) -> u16 {
        match self {
            StepError::Transient(c) | StepError::Permanent(c) => c,
        }
    }

    /// Whether a retry may help.
    #[inline]
    pub const fn is_transient(self) -> bool {
        matches!(self, StepError::Transient(_))
    }
}
