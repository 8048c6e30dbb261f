//! Built-in steps. Each documents the codes it fails with; user steps implement
//! [`Step`](super::Step) the same way.
//!
//! | step | does | fails |
//! |---|---|---|
//! | [`Validate`] | rejects records that cannot be trusted downstream | permanent, codes 1–5 |
//! | [`RequireFields`] | rejects records missing a required typed field | permanent, code 10 |
//! | [`Ledger`] | counts records per kind; compensation takes the count back | never |
//! | [`FaultInjector`] | injects faults at seeded rates (demos and tests only) | transient 900, permanent 901 |

mod fault;
mod ledger;
mod require;
mod validate;

pub use fault::FaultInjector;
pub use ledger::{Ledger, LedgerHandle};
pub use require::RequireFields;
pub use validate::Validate;
