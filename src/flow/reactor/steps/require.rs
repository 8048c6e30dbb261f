//! [`RequireFields`]: rejects records that lack a required typed field.

use crate::flow::reactor::{Step, StepError};
use crate::flow::{FieldMask, Item};
use crate::sources::record::FieldId;

/// Rejects, permanently with code [`RequireFields::MISSING_FIELD`], a record that does
/// not carry every field of a set (for example `Phase` and `Ready` for pods, `Price` for
/// ticks). Bookmarks and deletions are checked too; put this step only in chains whose
/// records must carry the fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequireFields {
    required: FieldMask,
}

impl RequireFields {
    /// Code: a required field is missing.
    pub const MISSING_FIELD: u16 = 10;

    /// Requires every field in `ids`.
    pub fn new(ids: &[FieldId]) -> RequireFields {
        let mut required = FieldMask::EMPTY;
        for &id in ids {
            required.insert(id);
        }
        RequireFields { required }
    }
}

impl Step for RequireFields {
    fn name(&self) -> &'static str {
        "require_fields"
    }

    #[inline]
    fn run(&mut self, item: &mut Item) -> Result<(), StepError> {
        let mut present = 0u64;
        for f in item.record.fields() {
            present |= 1u64 << (f.id as u8);
        }
        if present & self.required.0 == self.required.0 {
            Ok(())
        } else {
            Err(StepError::Permanent(Self::MISSING_FIELD))
        }
    }
}
