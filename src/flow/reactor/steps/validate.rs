//! [`Validate`]: rejects records that downstream stages cannot trust.

use crate::flow::reactor::{Step, StepError};
use crate::flow::Item;
use crate::sources::intern::Symbol;
use crate::sources::record::{FieldValue, Kind, Op, RecordFlags};

/// Rejects, permanently, records that downstream stages cannot trust. Each check can be
/// turned off; [`Validate::default`] turns them all on. Checks run in the order below
/// and the first that fires gives the code.
///
/// | check | code | why |
/// |---|---|---|
/// | `reject_truncated`: [`RecordFlags::FIELDS_TRUNCATED`] | [`Validate::TRUNCATED`] (1) | fields were lost: a diff against it would report false removals |
/// | `reject_symbol_overflow`: [`RecordFlags::SYMBOL_OVERFLOW`] | [`Validate::SYMBOL_OVERFLOW`] (2) | a string became [`Symbol::OVERFLOW`]: two different names compare equal |
/// | `reject_errors`: [`Op::Error`] | [`Validate::ERROR_RECORD`] (3) | a watch `ERROR` / `Status` reports a failure, it is not an object change (the source already re-lists on 410) |
/// | `require_name`: a Kubernetes object kind (Pod … Event, or `Unknown`) that is not a bookmark, with an empty name | [`Validate::MISSING_NAME`] (4) | it has no identity to keep state for |
/// | `reject_non_finite`: an `f64` field that is NaN or infinite | [`Validate::NON_FINITE`] (5) | thresholds and ranges cannot be evaluated on it |
///
/// Bookmarks pass (they only advance a resource version). Trading ticks and sensor
/// readings have no name requirement (readings carry none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validate {
    /// Reject [`RecordFlags::FIELDS_TRUNCATED`].
    pub reject_truncated: bool,
    /// Reject [`RecordFlags::SYMBOL_OVERFLOW`].
    pub reject_symbol_overflow: bool,
    /// Reject [`Op::Error`].
    pub reject_errors: bool,
    /// Reject Kubernetes objects without a name.
    pub require_name: bool,
    /// Reject NaN / infinite `f64` fields.
    pub reject_non_finite: bool,
}

impl Validate {
    /// Code: the record lost fields.
    pub const TRUNCATED: u16 = 1;
    /// Code: a string of the record was not interned.
    pub const SYMBOL_OVERFLOW: u16 = 2;
    /// Code: the record reports an error, not a change.
    pub const ERROR_RECORD: u16 = 3;
    /// Code: a Kubernetes object without a name.
    pub const MISSING_NAME: u16 = 4;
    /// Code: a NaN or infinite `f64` field.
    pub const NON_FINITE: u16 = 5;
}

impl Default for Validate {
    fn default() -> Self {
        Validate {
            reject_truncated: true,
            reject_symbol_overflow: true,
            reject_errors: true,
            require_name: true,
            reject_non_finite: true,
        }
    }
}

impl Step for Validate {
    fn name(&self) -> &'static str {
        "validate"
    }

    #[inline]
    fn run(&mut self, item: &mut Item) -> Result<(), StepError> {
        let r = &item.record;
        if self.reject_truncated && r.flags.contains(RecordFlags::FIELDS_TRUNCATED) {
            return Err(StepError::Permanent(Self::TRUNCATED));
        }
        if self.reject_symbol_overflow && r.flags.contains(RecordFlags::SYMBOL_OVERFLOW) {
            return Err(StepError::Permanent(Self::SYMBOL_OVERFLOW));
        }
        if self.reject_errors && r.op == Op::Error {
            return Err(StepError::Permanent(Self::ERROR_RECORD));
        }
        let k8s_object = matches!(
            r.kind,
            Kind::Unknown
                | Kind::Pod
                | Kind::Node
                | Kind::Deployment
                | Kind::Service
                | Kind::ConfigMap
                | Kind::Event
        );
        if self.require_name && k8s_object && r.op != Op::Bookmark && r.name == Symbol::EMPTY {
            return Err(StepError::Permanent(Self::MISSING_NAME));
        }
        if self.reject_non_finite
            && r.fields()
                .any(|f| matches!(f.value, FieldValue::F64(v) if !v.is_finite()))
        {
            return Err(StepError::Permanent(Self::NON_FINITE));
        }
        Ok(())
    }
}
