//! Stable, seedless hashes for record keys and content fingerprints.
//!
//! Two hashes, both deterministic across runs, processes, platforms and
//! compiler versions (no random seed, explicit little-endian word loads):
//!
//! - [`Fnv1a`]: 64-bit FNV-1a (Fowler–Noll–Vo, offset basis
//!   `0xcbf2_9ce4_8422_2325`, prime `0x0000_0100_0000_01b3`), one byte at a
//!   time. Used for record keys ([`key_of`]), where inputs are short names.
//! - [`WordHasher`]: a streaming hash that consumes 8 bytes per step (a
//!   multiply–xorshift round per word, finished with the MurmurHash3 `fmix64`
//!   finalizer). Used to fingerprint large byte ranges such as a Kubernetes
//!   `spec` object. Its result depends only on the concatenation of all bytes
//!   written, never on how the input was split across [`WordHasher::write`]
//!   calls.
//!
//! Neither hash is cryptographic: they detect change, they do not resist an
//! adversary who wants two different inputs to collide.

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Separator fed between the parts of a key. `0xFF` never occurs in UTF-8,
/// so `("ab", "c")` and `("a", "bc")` cannot produce the same byte stream.
pub const KEY_SEPARATOR: u8 = 0xFF;

/// Incremental 64-bit FNV-1a hasher.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a {
    state: u64,
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    /// A hasher in the FNV-1a initial state.
    #[inline]
    pub const fn new() -> Self {
        Self { state: FNV_OFFSET }
    }

    /// Feeds `bytes`, one byte per FNV-1a step.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        let mut h = self.state;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.state = h;
    }

    /// Feeds one byte.
    #[inline]
    pub fn write_u8(&mut self, b: u8) {
        self.state = (self.state ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }

    /// The hash of everything written so far.
    #[inline]
    pub const fn finish(&self) -> u64 {
        self.state
    }

    /// FNV-1a of one byte string.
    #[inline]
    pub fn hash(bytes: &[u8]) -> u64 {
        let mut h = Self::new();
        h.write(bytes);
        h.finish()
    }
}

/// The stable key of an object: FNV-1a over
/// `kind ‖ 0xFF ‖ namespace ‖ 0xFF ‖ name` (the UTF-8 bytes of each part,
/// after JSON unescaping). Cluster-scoped objects use an empty namespace.
///
/// `kind` is the Kubernetes kind name as written in the object (`"Pod"`),
/// so a custom resource's key differs from a built-in one of the same name.
#[inline]
pub fn key_of(kind: &[u8], namespace: &[u8], name: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(kind);
    h.write_u8(KEY_SEPARATOR);
    h.write(namespace);
    h.write_u8(KEY_SEPARATOR);
    h.write(name);
    h.finish()
}

/// Multiplier of the per-word round (the 64-bit golden-ratio constant).
const WORD_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Streaming word-at-a-time hasher for large byte ranges.
///
/// Bytes are grouped into little-endian 64-bit words in the order written;
/// each full word goes through `state = (state ^ word) * K; state ^= state >> 29`.
/// [`finish`](Self::finish) mixes in the trailing partial word and the total
/// length, then applies `fmix64`. Splitting the input differently across
/// `write` calls gives the same result.
#[derive(Clone, Copy, Debug)]
pub struct WordHasher {
    state: u64,
    pending: u64,
    pending_len: u32,
    total: u64,
}

impl Default for WordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl WordHasher {
    /// A hasher in its initial state.
    #[inline]
    pub const fn new() -> Self {
        Self {
            state: FNV_OFFSET,
            pending: 0,
            pending_len: 0,
            total: 0,
        }
    }

    #[inline(always)]
    fn round(state: u64, word: u64) -> u64 {
        let s = (state ^ word).wrapping_mul(WORD_MUL);
        s ^ (s >> 29)
    }

    /// Feeds `bytes`.
    #[inline]
    pub fn write(&mut self, mut bytes: &[u8]) {
        self.total = self.total.wrapping_add(bytes.len() as u64);
        // Top up a partial word first.
        while self.pending_len != 0 && !bytes.is_empty() {
            self.pending |= u64::from(bytes[0]) << (8 * self.pending_len);
            self.pending_len += 1;
            bytes = &bytes[1..];
            if self.pending_len == 8 {
                self.state = Self::round(self.state, self.pending);
                self.pending = 0;
                self.pending_len = 0;
            }
        }
        if self.pending_len != 0 {
            // `bytes` ran out before the partial word filled up.
            return;
        }
        let mut chunks = bytes.chunks_exact(8);
        let mut s = self.state;
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            s = Self::round(s, u64::from_le_bytes(w));
        }
        self.state = s;
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.pending |= u64::from(b) << (8 * i);
        }
        self.pending_len = chunks.remainder().len() as u32;
    }

    /// The hash of everything written so far.
    #[inline]
    pub fn finish(&self) -> u64 {
        let mut s = self.state;
        if self.pending_len != 0 {
            s = Self::round(s, self.pending);
        }
        s = Self::round(s, self.total);
        fmix64(s)
    }
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
#[inline]
pub const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_vectors() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(Fnv1a::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv1a::hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn key_parts_are_separated() {
        assert_ne!(key_of(b"Pod", b"ab", b"c"), key_of(b"Pod", b"a", b"bc"));
        assert_eq!(key_of(b"Pod", b"ns", b"x"), key_of(b"Pod", b"ns", b"x"));
    }

    #[test]
    fn word_hasher_is_split_invariant() {
        let data: Vec<u8> = (0u8..=250).collect();
        let mut whole = WordHasher::new();
        whole.write(&data);
        for split in [0, 1, 3, 7, 8, 9, 64, 100, 250] {
            let mut h = WordHasher::new();
            h.write(&data[..split]);
            h.write(&data[split..]);
            assert_eq!(h.finish(), whole.finish(), "split at {split}");
        }
        let mut bytewise = WordHasher::new();
        for b in &data {
            bytewise.write(std::slice::from_ref(b));
        }
        assert_eq!(bytewise.finish(), whole.finish());
    }

    #[test]
    fn word_hasher_distinguishes_length_and_content() {
        let h = |b: &[u8]| {
            let mut w = WordHasher::new();
            w.write(b);
            w.finish()
        };
        assert_ne!(h(b""), h(b"\0"));
        assert_ne!(h(b"abcdefgh"), h(b"abcdefgi"));
        assert_ne!(h(b"{\"a\":1}"), h(b"{\"a\":2}"));
    }
}
