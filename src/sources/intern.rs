//! A bounded, append-only string interner with lock-free readers.
//!
//! Strings (namespaces, names, reasons, phases, …) become 32-bit
//! [`Symbol`]s so that records stay fixed-size and free of heap pointers.
//!
//! # Ownership
//!
//! [`Interner::new`] allocates all storage once and returns the single
//! writer, [`Interner`]; [`Interner::resolver`] hands out any number of
//! [`Resolver`]s (cheap `Arc` clones, `Send + Sync`) for other threads.
//! Only the writer can add strings (it needs `&mut self`), so there is
//! exactly one writer by construction — normally the decoder thread.
//!
//! # Capacity and overflow policy
//!
//! Capacity is fixed at construction by [`InternerConfig`]: at most
//! `max_entries` strings (default [`DEFAULT_MAX_ENTRIES`]) holding at most
//! `max_bytes` bytes in total (default [`DEFAULT_MAX_BYTES`]). The
//! [`WELL_KNOWN`] strings are interned first and count against both.
//! When a new string does not fit, [`Interner::intern`] returns
//! [`Symbol::OVERFLOW`] (which resolves to `None`), stores nothing, and
//! increments the overflow counter ([`Interner::overflows`],
//! [`Resolver::overflows`]). Strings already present keep resolving; a full
//! interner never blocks and never allocates.
//!
//! # Publication protocol
//!
//! The writer copies a new string's bytes into the preallocated arena past
//! every published byte, stores the string's `(offset, len)` in the span
//! table, and only then stores the new entry count with `Release`. A reader
//! loads the entry count with `Acquire`; if the symbol's id is below it, the
//! span and bytes it reads were written before that `Release` store and are
//! never written again. A reader therefore resolves any symbol that was
//! published before it was handed over — through a ring, a channel, or any
//! other synchronisation — and returns `None` for ids it cannot yet see.
//!
//! # Allocation
//!
//! Construction allocates the arena, the span table and a writer-private
//! hash index (open addressing, load factor ≤ 1/2). Interning — hit or miss —
//! and resolving never allocate.

use core::cell::UnsafeCell;
use core::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sources::hash::WordHasher;

/// Default maximum number of interned strings.
pub const DEFAULT_MAX_ENTRIES: u32 = 1 << 16;
/// Default maximum total bytes of interned strings.
pub const DEFAULT_MAX_BYTES: usize = 4 << 20;

/// An interned string: an index into an [`Interner`]'s table.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Symbol(u32);

impl Symbol {
    /// The empty string (always id 0).
    pub const EMPTY: Symbol = Symbol(0);
    /// Returned when the interner is full; resolves to `None`.
    pub const OVERFLOW: Symbol = Symbol(u32::MAX);

    /// The raw id.
    #[inline]
    pub const fn id(self) -> u32 {
        self.0
    }

    /// A symbol from a raw id (as stored in a record field).
    #[inline]
    pub const fn from_id(id: u32) -> Symbol {
        Symbol(id)
    }

    /// Whether this is [`Symbol::OVERFLOW`].
    #[inline]
    pub const fn is_overflow(self) -> bool {
        self.0 == u32::MAX
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_overflow() {
            f.write_str("Symbol(OVERFLOW)")
        } else {
            write!(f, "Symbol({})", self.0)
        }
    }
}

macro_rules! well_known {
    ($( $(#[$doc:meta])* $name:ident = $id:literal => $text:literal, )*) => {
        /// Strings every interner holds from construction, at fixed ids, so
        /// that rules can compare symbols without interning.
        pub mod known {
            use super::Symbol;
            $( $(#[$doc])* pub const $name: Symbol = Symbol::from_id($id); )*
        }

        /// The text of each [`known`] symbol, indexed by its id.
        pub const WELL_KNOWN: &[&str] = &[$($text,)*];

        const _: () = {
            let ids = [$($id,)*];
            let mut i = 0;
            while i < ids.len() {
                assert!(ids[i] == i, "well-known ids must be 0, 1, 2, …");
                i += 1;
            }
        };
    };
}

well_known! {
    /// `""`.
    EMPTY = 0 => "",
    /// Pod phase `Pending`.
    PENDING = 1 => "Pending",
    /// Pod phase `Running`.
    RUNNING = 2 => "Running",
    /// Pod phase `Succeeded`.
    SUCCEEDED = 3 => "Succeeded",
    /// Pod phase `Failed`.
    FAILED = 4 => "Failed",
    /// Pod phase `Unknown`.
    UNKNOWN = 5 => "Unknown",
    /// Waiting reason `CrashLoopBackOff`.
    CRASH_LOOP_BACK_OFF = 6 => "CrashLoopBackOff",
    /// Waiting reason `ImagePullBackOff`.
    IMAGE_PULL_BACK_OFF = 7 => "ImagePullBackOff",
    /// Waiting reason `ErrImagePull`.
    ERR_IMAGE_PULL = 8 => "ErrImagePull",
    /// Waiting reason `CreateContainerConfigError`.
    CREATE_CONTAINER_CONFIG_ERROR = 9 => "CreateContainerConfigError",
    /// Waiting reason `CreateContainerError`.
    CREATE_CONTAINER_ERROR = 10 => "CreateContainerError",
    /// Waiting reason `RunContainerError`.
    RUN_CONTAINER_ERROR = 11 => "RunContainerError",
    /// Waiting reason `InvalidImageName`.
    INVALID_IMAGE_NAME = 12 => "InvalidImageName",
    /// Waiting reason `ContainerCreating`.
    CONTAINER_CREATING = 13 => "ContainerCreating",
    /// Waiting reason `PodInitializing`.
    POD_INITIALIZING = 14 => "PodInitializing",
    /// Event type `Normal`.
    NORMAL = 15 => "Normal",
    /// Event type `Warning`.
    WARNING = 16 => "Warning",
    /// Service type `ClusterIP`.
    CLUSTER_IP = 17 => "ClusterIP",
    /// Service type `NodePort`.
    NODE_PORT = 18 => "NodePort",
    /// Service type `LoadBalancer`.
    LOAD_BALANCER = 19 => "LoadBalancer",
    /// Service type `ExternalName`.
    EXTERNAL_NAME = 20 => "ExternalName",
    /// Status reason `Expired` (410 Gone on a too-old resource version).
    EXPIRED = 21 => "Expired",
    /// Status reason `Gone`.
    GONE = 22 => "Gone",
}

/// Capacity of an [`Interner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InternerConfig {
    /// Maximum number of strings, well-known ones included.
    /// Clamped to at least `WELL_KNOWN.len()` and at most `u32::MAX - 1`.
    pub max_entries: u32,
    /// Maximum total bytes of all strings. Clamped to at least the bytes of
    /// the well-known strings and at most `u32::MAX`.
    pub max_bytes: usize,
}

impl Default for InternerConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Storage shared by the writer and the readers.
struct Shared {
    /// The string arena. Bytes below the published byte length are
    /// immutable; only the writer writes, and only above it.
    bytes: Box<[UnsafeCell<u8>]>,
    /// Per entry: `offset << 32 | len`. Entries below `published` are
    /// immutable.
    spans: Box<[AtomicU64]>,
    /// Number of entries readers may resolve. Stored with `Release` by the
    /// writer after the entry's bytes and span; loaded with `Acquire`.
    published: AtomicU32,
    /// Number of `intern` calls that returned `Symbol::OVERFLOW`.
    overflows: AtomicU64,
}

// SAFETY: `Shared` is shared between one writer and many readers. The only
// non-`Sync` part is the byte arena (`UnsafeCell<u8>`). The writer (the one
// `Interner`, which needs `&mut self` to write) writes only arena bytes at or
// above the current end of published data, and only before publishing them
// with a `Release` store of `published`. Readers read only bytes of entries
// whose id is below a value of `published` they loaded with `Acquire`, so
// every read is ordered after the writes it observes and never overlaps a
// concurrent write.
unsafe impl Sync for Shared {}

impl Shared {
    #[inline]
    fn base(&self) -> *mut u8 {
        UnsafeCell::raw_get(self.bytes.as_ptr())
    }

    /// Resolves `id` if it is below `limit`, where `limit` was obtained from
    /// `published` with `Acquire` (readers) or is the writer's own count.
    #[inline]
    fn resolve_below(&self, id: u32, limit: u32) -> Option<&str> {
        if id >= limit {
            return None;
        }
        let span = self.spans[id as usize].load(Ordering::Relaxed);
        let off = (span >> 32) as usize;
        let len = (span & 0xffff_ffff) as usize;
        debug_assert!(off + len <= self.bytes.len());
        // SAFETY: `id < limit` and `limit` was published (or is the writer's
        // own count), so `off..off + len` lies inside the arena (checked when
        // the entry was written) and was fully written before publication;
        // the writer never writes that range again, so a shared borrow of it
        // for as long as `self` lives cannot alias a write.
        let bytes = unsafe { core::slice::from_raw_parts(self.base().add(off), len) };
        // SAFETY: the writer copies only `&str` data into the arena, so each
        // entry's bytes are valid UTF-8.
        Some(unsafe { core::str::from_utf8_unchecked(bytes) })
    }
}

/// The single writer of an interner. See the [module docs](self).
pub struct Interner {
    shared: Arc<Shared>,
    /// Open-addressing index: 0 = empty, else `hash_hi << 32 | (id + 1)`.
    index: Box<[u64]>,
    mask: usize,
    /// Entries written (equals `published`).
    len: u32,
    /// Bytes of the arena in use.
    used: usize,
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len)
            .field("bytes_used", &self.used)
            .field("max_entries", &self.shared.spans.len())
            .field("max_bytes", &self.shared.bytes.len())
            .field("overflows", &self.overflows())
            .finish()
    }
}

impl Default for Interner {
    fn default() -> Self {
        Self::new(InternerConfig::default())
    }
}

#[inline]
fn hash_str(s: &[u8]) -> u64 {
    let mut h = WordHasher::new();
    h.write(s);
    h.finish()
}

impl Interner {
    /// Allocates an interner of the given capacity and interns
    /// [`WELL_KNOWN`] at ids `0..WELL_KNOWN.len()`.
    pub fn new(config: InternerConfig) -> Interner {
        let known_bytes: usize = WELL_KNOWN.iter().map(|s| s.len()).sum();
        let max_entries = config
            .max_entries
            .clamp(WELL_KNOWN.len() as u32, u32::MAX - 1);
        let max_bytes = config.max_bytes.clamp(known_bytes, u32::MAX as usize);
        let bytes: Box<[UnsafeCell<u8>]> = (0..max_bytes).map(|_| UnsafeCell::new(0)).collect();
        let spans: Box<[AtomicU64]> = (0..max_entries).map(|_| AtomicU64::new(0)).collect();
        let slots = (max_entries as usize * 2).next_power_of_two().max(16);
        let mut interner = Interner {
            shared: Arc::new(Shared {
                bytes,
                spans,
                published: AtomicU32::new(0),
                overflows: AtomicU64::new(0),
            }),
            index: vec![0u64; slots].into_boxed_slice(),
            mask: slots - 1,
            len: 0,
            used: 0,
        };
        for (i, s) in WELL_KNOWN.iter().enumerate() {
            let sym = interner.intern(s);
            assert_eq!(sym.id() as usize, i, "well-known strings are distinct");
        }
        interner
    }

    /// A reader handle for other threads.
    pub fn resolver(&self) -> Resolver {
        Resolver {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Finds `s` in the index: `Ok(symbol)` or `Err(empty slot index)`.
    #[inline]
    fn find(&self, s: &[u8], hash: u64) -> Result<Symbol, usize> {
        let tag = hash >> 32;
        let mut i = hash as usize & self.mask;
        loop {
            let slot = self.index[i];
            if slot == 0 {
                return Err(i);
            }
            if slot >> 32 == tag {
                let id = (slot & 0xffff_ffff) as u32 - 1;
                if self.shared.resolve_below(id, self.len).map(str::as_bytes) == Some(s) {
                    return Ok(Symbol(id));
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The symbol of `s`, if it is interned.
    #[inline]
    pub fn get(&self, s: &str) -> Option<Symbol> {
        self.find(s.as_bytes(), hash_str(s.as_bytes())).ok()
    }

    /// Interns `s`: returns its existing symbol, or appends and publishes
    /// it, or returns [`Symbol::OVERFLOW`] (and counts it) when either the
    /// entry or the byte capacity is exhausted. Never allocates.
    pub fn intern(&mut self, s: &str) -> Symbol {
        let bytes = s.as_bytes();
        let hash = hash_str(bytes);
        let slot = match self.find(bytes, hash) {
            Ok(sym) => return sym,
            Err(slot) => slot,
        };
        let id = self.len;
        if id as usize >= self.shared.spans.len()
            || bytes.len() > self.shared.bytes.len() - self.used
        {
            self.shared.overflows.fetch_add(1, Ordering::Relaxed);
            return Symbol::OVERFLOW;
        }
        let off = self.used;
        // SAFETY: `off + bytes.len() <= arena length` (checked above), and
        // `off` is the end of all data written so far, so the destination is
        // inside the arena, lies above every published byte (no reader reads
        // it until it is published below), and does not overlap `bytes`
        // (which is caller memory, not arena memory past `off`).
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.shared.base().add(off),
                bytes.len(),
            );
        }
        self.shared.spans[id as usize]
            .store(((off as u64) << 32) | bytes.len() as u64, Ordering::Relaxed);
        self.used += bytes.len();
        self.len = id + 1;
        // Release: the bytes and span written above happen-before any
        // reader's Acquire load that observes `id + 1`.
        self.shared.published.store(self.len, Ordering::Release);
        self.index[slot] = ((hash >> 32) << 32) | u64::from(id + 1);
        Symbol(id)
    }

    /// Resolves a symbol interned by this writer.
    #[inline]
    pub fn resolve(&self, sym: Symbol) -> Option<&str> {
        self.shared.resolve_below(sym.0, self.len)
    }

    /// Number of interned strings (well-known ones included).
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Always `false`: the well-known strings are always present.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of string data stored.
    #[inline]
    pub fn bytes_used(&self) -> usize {
        self.used
    }

    /// Maximum number of strings.
    #[inline]
    pub fn max_entries(&self) -> usize {
        self.shared.spans.len()
    }

    /// Maximum total bytes of string data.
    #[inline]
    pub fn max_bytes(&self) -> usize {
        self.shared.bytes.len()
    }

    /// Number of `intern` calls that returned [`Symbol::OVERFLOW`].
    #[inline]
    pub fn overflows(&self) -> u64 {
        self.shared.overflows.load(Ordering::Relaxed)
    }
}

/// A read-only, lock-free view of an interner for any thread.
///
/// Resolves every symbol the writer had published when the symbol was
/// handed to this thread; see the [module docs](self).
#[derive(Clone)]
pub struct Resolver {
    shared: Arc<Shared>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("len", &self.len())
            .finish()
    }
}

impl Resolver {
    /// The string of `sym`, or `None` for [`Symbol::OVERFLOW`] and for ids
    /// not (yet) published.
    #[inline]
    pub fn resolve(&self, sym: Symbol) -> Option<&str> {
        // Acquire pairs with the writer's Release store in `intern`.
        let limit = self.shared.published.load(Ordering::Acquire);
        self.shared.resolve_below(sym.0, limit)
    }

    /// Number of strings published so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.shared.published.load(Ordering::Acquire) as usize
    }

    /// Whether nothing is published (never true once the writer exists).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of `intern` calls that returned [`Symbol::OVERFLOW`].
    #[inline]
    pub fn overflows(&self) -> u64 {
        self.shared.overflows.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ids_are_fixed() {
        let i = Interner::default();
        for (id, s) in WELL_KNOWN.iter().enumerate() {
            assert_eq!(i.get(s), Some(Symbol(id as u32)));
            assert_eq!(i.resolve(Symbol(id as u32)), Some(*s));
        }
        assert_eq!(
            i.resolve(known::CRASH_LOOP_BACK_OFF),
            Some("CrashLoopBackOff")
        );
        assert_eq!(i.resolve(Symbol::EMPTY), Some(""));
    }

    #[test]
    fn intern_is_idempotent() {
        let mut i = Interner::default();
        let a = i.intern("kube-system");
        let b = i.intern("coredns");
        assert_ne!(a, b);
        assert_eq!(i.intern("kube-system"), a);
        assert_eq!(i.resolve(a), Some("kube-system"));
        assert_eq!(i.resolve(b), Some("coredns"));
        assert_eq!(i.len(), WELL_KNOWN.len() + 2);
    }

    #[test]
    fn entry_overflow_returns_reserved_symbol() {
        let mut i = Interner::new(InternerConfig {
            max_entries: WELL_KNOWN.len() as u32 + 2,
            max_bytes: 1 << 12,
        });
        let a = i.intern("a");
        let b = i.intern("b");
        assert_eq!(i.intern("c"), Symbol::OVERFLOW);
        assert_eq!(i.intern("d"), Symbol::OVERFLOW);
        assert_eq!(i.overflows(), 2);
        assert_eq!(i.resolve(Symbol::OVERFLOW), None);
        assert_eq!(i.intern("a"), a, "present strings still resolve when full");
        assert_eq!(i.resolve(b), Some("b"));
        assert_eq!(i.resolver().overflows(), 2);
    }

    #[test]
    fn byte_overflow_returns_reserved_symbol() {
        let known: usize = WELL_KNOWN.iter().map(|s| s.len()).sum();
        let mut i = Interner::new(InternerConfig {
            max_entries: 1000,
            max_bytes: known + 10,
        });
        let s = i.intern("0123456789");
        assert_ne!(s, Symbol::OVERFLOW);
        assert_eq!(i.bytes_used(), known + 10);
        assert_eq!(i.intern("x"), Symbol::OVERFLOW);
        assert_eq!(i.intern(""), Symbol::EMPTY);
        assert_eq!(i.overflows(), 1);
    }

    #[test]
    fn unpublished_ids_do_not_resolve() {
        let i = Interner::default();
        let r = i.resolver();
        assert_eq!(r.resolve(Symbol(WELL_KNOWN.len() as u32)), None);
        assert_eq!(r.resolve(Symbol(1_000_000)), None);
        assert_eq!(r.resolve(known::WARNING), Some("Warning"));
    }
}
