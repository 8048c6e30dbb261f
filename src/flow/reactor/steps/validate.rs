//! [`Validate`]: rejects records that downstream stages cannot trust.

use crate::flow::reactor::{Step, StepError};
use crate::flow::Item;
use crate::sources::intern::Symbol;
use crate::sources::record::{Kind, Op, Record, RecordFlags};

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
        if self.reject_non_finite && has_non_finite_f64(r) {
            return Err(StepError::Permanent(Self::NON_FINITE));
        }
        Ok(())
    }
}

/// Whether a field of type `f64` holds NaN or ±∞ (its exponent bits are all ones).
///
/// Reads the raw slot bytes as one word ([`Record::raw_slots_word`]) and picks out the
/// `f64` ones with a few bit operations: no field is decoded, and only `f64` payloads are
/// looked at (a Kubernetes record has none).
#[inline]
fn has_non_finite_f64(r: &Record) -> bool {
    const EXPONENT: u64 = 0x7ff0_0000_0000_0000;
    const LOW_BITS: u64 = 0x0101_0101_0101_0101;
    let values = r.raw_values();
    // Slot bytes past the field count are zero in records built with `push`; any others
    // are skipped below (`values` holds only the stored fields).
    let w = r.raw_slots_word();
    // Bit 0 of byte `i`: slot `i`'s type tag is 1 (`f64`): tag bit 6 set, tag bit 7 clear.
    let mut f64s = (w >> 6) & !(w >> 7) & LOW_BITS;
    while f64s != 0 {
        let i = (f64s.trailing_zeros() / 8) as usize;
        if values
            .get(i)
            .is_some_and(|&bits| bits & EXPONENT == EXPONENT)
        {
            return true;
        }
        f64s &= f64s - 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::record::{FieldId, FieldValue};

    fn record(fields: &[(FieldId, FieldValue)]) -> Record {
        let mut r = Record::new(Kind::Tick, Op::Added);
        for &(id, v) in fields {
            r.push(id, v);
        }
        r
    }

    #[test]
    fn only_non_finite_f64_fields_count_in_any_slot() {
        let (price, qty) = (FieldId::Price, FieldId::Quantity);
        assert!(!has_non_finite_f64(&record(&[])));
        assert!(!has_non_finite_f64(&record(&[
            (price, FieldValue::F64(1.5)),
            (qty, FieldValue::F64(-0.0)),
            (FieldId::Value, FieldValue::F64(f64::MAX)),
        ])));
        // Integers whose bits look like an infinity or a NaN are not `f64` fields.
        assert!(!has_non_finite_f64(&record(&[
            (
                FieldId::Count,
                FieldValue::I64(f64::INFINITY.to_bits() as i64)
            ),
            (FieldId::SpecHash, FieldValue::I64(-1)),
        ])));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for at in 0..8 {
                let mut fields = [(FieldId::Count, FieldValue::I64(-1)); 8];
                fields[at] = (price, FieldValue::F64(bad));
                assert!(has_non_finite_f64(&record(&fields)), "{bad} at {at}");
                assert!(
                    has_non_finite_f64(&record(&fields[..=at])),
                    "{bad} last of {}",
                    at + 1
                );
                let finite = record(&fields[..at]);
                assert!(!has_non_finite_f64(&finite), "before {at}");
            }
        }
    }

    #[test]
    fn validate_reports_the_first_failing_check_in_order() {
        let mut v = Validate::default();
        let mut item = Item::from_record(record(&[(FieldId::Price, FieldValue::F64(f64::NAN))]));
        assert_eq!(
            v.run(&mut item),
            Err(StepError::Permanent(Validate::NON_FINITE))
        );
        item.record.flags.insert(RecordFlags::SYMBOL_OVERFLOW);
        assert_eq!(
            v.run(&mut item),
            Err(StepError::Permanent(Validate::SYMBOL_OVERFLOW))
        );
        v.reject_symbol_overflow = false;
        assert_eq!(
            v.run(&mut item),
            Err(StepError::Permanent(Validate::NON_FINITE))
        );
        v.reject_non_finite = false;
        assert_eq!(v.run(&mut item), Ok(()));
    }
}
