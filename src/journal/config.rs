//! Journal settings: segment size, durability, retention, tail repair.

use std::time::Duration;

use super::format::capacity_of;

/// When an appended entry counts as accepted (and the acknowledged sequence moves).
///
/// | policy | acknowledged when | survives |
/// |---|---|---|
/// | `EveryBatch` | [`Journal::commit`] returns, after `msync(MS_SYNC)` of the batch | process crash, kernel crash, power loss (if the device honours flushes) |
/// | `Interval(d)` | the first `commit` at least `d` after the last flush flushes everything written | process crash at once; power loss after the flush (up to `d` plus the gap to the next `commit`) |
/// | `Os` | the entry is written into the mapping (`append` returns) | process crash (`SIGKILL`, panic, abort): the page cache holds it; **not** a kernel crash or power loss before the kernel writes back (`vm.dirty_expire_centisecs`, 30 s by default) |
///
/// [`Journal::commit`]: super::Journal::commit
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Flush (synchronously) at every [`commit`](super::Journal::commit): one `msync` per
    /// batch. The strongest and slowest.
    #[default]
    EveryBatch,
    /// Flush at a `commit` once this long has passed since the last flush. No background
    /// thread: an idle writer flushes at its next `commit` or [`sync`](super::Journal::sync)
    /// (the [`JournalStage`](super::JournalStage) commits at the end of every batch).
    Interval(Duration),
    /// Never flush; the kernel writes back when it likes. Acknowledged on write.
    Os,
}

/// Which old segments are deleted. Checked at every rotation and, for age, at most once a
/// second from [`commit`](super::Journal::commit). The active segment is never deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete the oldest sealed segments while all segments together exceed this many
    /// bytes.
    pub max_bytes: Option<u64>,
    /// Delete a sealed segment once its successor was created longer ago than this (so
    /// every entry in it is older).
    pub max_age: Option<Duration>,
}

/// What opening does with a damaged last segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TailRepair {
    /// Truncate a damaged tail only if nothing valid follows it (a torn write); damage
    /// followed by valid entries is [`JournalError::Corrupt`](super::JournalError::Corrupt),
    /// and a truncated last segment file is
    /// [`JournalError::TruncatedSegment`](super::JournalError::TruncatedSegment).
    #[default]
    TornOnly,
    /// Truncate at the first damaged entry of the last segment whatever follows, and
    /// re-extend a truncated last segment file; the report counts the valid entries lost.
    TruncateAny,
}

/// How a [`Journal`](super::Journal) is opened and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// Size of each segment file in bytes (header included); must hold at least one entry
    /// and fit in a `u32`. A segment holds `(segment_bytes - 64) / 144` entries.
    pub segment_bytes: u64,
    /// When entries count as accepted.
    pub durability: Durability,
    /// Which old segments are deleted.
    pub retention: Retention,
    /// What opening does with a damaged last segment.
    pub repair: TailRepair,
    /// Create the journal if the directory holds none (the directory too).
    pub create: bool,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            segment_bytes: 64 << 20,
            durability: Durability::default(),
            retention: Retention::default(),
            repair: TailRepair::default(),
            create: true,
        }
    }
}

impl JournalConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), &'static str> {
        if capacity_of(self.segment_bytes) == 0 {
            return Err("segment_bytes must hold a header and one entry (208 bytes)");
        }
        if self.segment_bytes > u32::MAX as u64 {
            return Err("segment_bytes must fit in a u32");
        }
        if let Some(max) = self.retention.max_bytes {
            if max < self.segment_bytes {
                return Err("retention.max_bytes must be at least one segment");
            }
        }
        if let Durability::Interval(d) = self.durability {
            if d.is_zero() {
                return Err("Durability::Interval needs a positive interval (use EveryBatch)");
            }
        }
        Ok(())
    }
}
