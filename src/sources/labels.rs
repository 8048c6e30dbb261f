//! Label sets (`metadata.labels`) in canonical form, for interning, and
//! their order-insensitive hash.
//!
//! **Canonical form:** the pairs sorted by key bytes (then value bytes),
//! each written `key=value`, joined with `,`, keys and values unescaped:
//! `{"tier":"web","app":"nginx"}` → `app=nginx,tier=web`; no labels (or
//! `null`, or `{}`) → `""`. Equal sets in any order give the same text,
//! so interning it gives the same [`Symbol`](crate::sources::intern::Symbol),
//! and [`canonical_hash`] of the text equals the set's [`LabelSet::hash`].
//!
//! The text is only made when it is unambiguous and bounded; otherwise a
//! record carries the set's hash instead (`FieldId::LabelsHash`):
//!
//! - at most [`MAX_LABELS`] pairs and [`MAX_LABELS_BYTES`] bytes of text;
//! - no key or value contains `,` or `=` (Kubernetes label syntax allows
//!   neither, so only invalid labels are affected; otherwise
//!   `{"a":"b,c=d"}` and `{"a":"b","c":"d"}` would share a text).
//!
//! A [`LabelSet`] holds preallocated buffers for one set (allocated by
//! [`LabelSet::new`]); filling it and making the text never allocate.

use crate::sources::hash::{fmix64, WordHasher, KEY_SEPARATOR};

/// Most pairs a canonical label text holds; larger sets are hashed.
pub const MAX_LABELS: usize = 64;

/// Longest canonical label text in bytes; longer sets are hashed.
pub const MAX_LABELS_BYTES: usize = 2048;

/// Hash of one pair: `WordHasher(key ‖ 0xFF ‖ value)`.
#[inline]
fn pair_hash(key: &[u8], value: &[u8]) -> u64 {
    let mut h = WordHasher::new();
    h.write(key);
    h.write(&[KEY_SEPARATOR]);
    h.write(value);
    h.finish()
}

/// The set hash from the sum of its pair hashes and its size:
/// `fmix64(n + Σ pair)`, 0 for the empty set.
#[inline]
const fn set_hash(sum: u64, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        fmix64(sum.wrapping_add(n))
    }
}

/// The hash of the set a canonical label text stands for; equals
/// [`LabelSet::hash`] of that set (so a `Labels` symbol's text can be
/// compared with a `LabelsHash` value). Splits pairs at `,` and each pair
/// at its first `=`; a pair without `=` counts as a key with an empty
/// value. `""` hashes to 0.
pub fn canonical_hash(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let mut sum = 0u64;
    let mut n = 0u64;
    for pair in text.as_bytes().split(|&b| b == b',') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        sum = sum.wrapping_add(pair_hash(k, v));
        n += 1;
    }
    set_hash(sum, n)
}

/// One pair's place in [`LabelSet`]'s byte buffer.
#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    key_start: u16,
    key_len: u16,
    value_len: u16,
}

/// Scratch space that collects one label set and writes its canonical
/// text. See the [module docs](self).
pub struct LabelSet {
    /// The pairs as pushed, written `key=value` joined by `,`.
    bytes: Box<[u8]>,
    used: usize,
    pairs: Box<[Pair]>,
    len: usize,
    /// The canonical text, written by [`canonical`](Self::canonical).
    out: Box<[u8]>,
    /// Sum of the pair hashes of the pairs *not* stored (those pushed
    /// after the set lost its canonical text); stored pairs are hashed
    /// only when [`hash`](Self::hash) is called.
    sum: u64,
    count: u64,
    /// Whether the set still has a canonical text.
    representable: bool,
    /// Whether the stored pairs were pushed in canonical order.
    sorted: bool,
}

impl core::fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LabelSet")
            .field("pairs", &self.count)
            .field("representable", &self.representable)
            .finish()
    }
}

impl Default for LabelSet {
    fn default() -> Self {
        Self::new()
    }
}

impl LabelSet {
    /// Allocates the buffers (2 × [`MAX_LABELS_BYTES`] and [`MAX_LABELS`]
    /// pair slots); an empty set.
    pub fn new() -> LabelSet {
        LabelSet {
            bytes: vec![0u8; MAX_LABELS_BYTES].into_boxed_slice(),
            used: 0,
            pairs: vec![Pair::default(); MAX_LABELS].into_boxed_slice(),
            len: 0,
            out: vec![0u8; MAX_LABELS_BYTES].into_boxed_slice(),
            sum: 0,
            count: 0,
            representable: true,
            sorted: true,
        }
    }

    /// Empties the set.
    #[inline]
    pub fn clear(&mut self) {
        self.used = 0;
        self.len = 0;
        self.sum = 0;
        self.count = 0;
        self.representable = true;
        self.sorted = true;
    }

    /// Adds the pair `key: value` (unescaped bytes). Always counted in the
    /// [`hash`](Self::hash); kept for the canonical text while the set is
    /// within the bounds and unambiguous.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.count += 1;
        if !self.representable {
            self.sum = self.sum.wrapping_add(pair_hash(key, value));
            return;
        }
        // The text in push order: `,` (if not first) `key=value`.
        let sep = usize::from(self.len > 0);
        let text_len = self.used + sep + key.len() + 1 + value.len();
        let ambiguous = |s: &[u8]| s.iter().any(|&b| b == b',' || b == b'=');
        if self.len == MAX_LABELS
            || text_len > MAX_LABELS_BYTES
            || ambiguous(key)
            || ambiguous(value)
        {
            self.representable = false;
            self.sum = self.sum.wrapping_add(pair_hash(key, value));
            return;
        }
        if self.sorted && self.len > 0 {
            let prev = self.pairs[self.len - 1];
            let (pk, pv) = (self.key(&prev), self.value(&prev));
            self.sorted = pk.cmp(key).then(pv.cmp(value)).is_le();
        }
        if sep == 1 {
            self.bytes[self.used] = b',';
        }
        let start = self.used + sep;
        let eq = start + key.len();
        self.bytes[start..eq].copy_from_slice(key);
        self.bytes[eq] = b'=';
        self.bytes[eq + 1..text_len].copy_from_slice(value);
        self.used = text_len;
        // Offsets and lengths fit in u16: the text bound is below 65,536.
        self.pairs[self.len] = Pair {
            key_start: start as u16,
            key_len: key.len() as u16,
            value_len: value.len() as u16,
        };
        self.len += 1;
    }

    #[inline]
    fn key(&self, p: &Pair) -> &[u8] {
        let k = p.key_start as usize;
        &self.bytes[k..k + p.key_len as usize]
    }

    #[inline]
    fn value(&self, p: &Pair) -> &[u8] {
        let v = p.key_start as usize + p.key_len as usize + 1;
        &self.bytes[v..v + p.value_len as usize]
    }

    /// Number of pairs pushed since the last [`clear`](Self::clear).
    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no pair was pushed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The order-insensitive hash of the pairs pushed: `fmix64(n + Σ
    /// WordHasher(key ‖ 0xFF ‖ value))`; 0 for the empty set. Defined for
    /// every set, also those without a canonical text.
    pub fn hash(&self) -> u64 {
        let mut sum = self.sum;
        for p in &self.pairs[..self.len] {
            sum = sum.wrapping_add(pair_hash(self.key(p), self.value(p)));
        }
        set_hash(sum, self.count)
    }

    /// The canonical text, or `None` when the set exceeds [`MAX_LABELS`] /
    /// [`MAX_LABELS_BYTES`], a key or value holds `,` or `=`, or the bytes
    /// are not UTF-8. Sorts the pairs in place; never allocates.
    pub fn canonical(&mut self) -> Option<&str> {
        if !self.representable {
            return None;
        }
        if self.sorted {
            // Pushed in canonical order (as the API server writes labels:
            // Go sorts map keys): the pushed text is the canonical text.
            return core::str::from_utf8(&self.bytes[..self.used]).ok();
        }
        let bytes = &self.bytes;
        let key = |p: &Pair| &bytes[p.key_start as usize..(p.key_start + p.key_len) as usize];
        let value = |p: &Pair| {
            let s = (p.key_start + p.key_len) as usize + 1;
            &bytes[s..s + p.value_len as usize]
        };
        self.pairs[..self.len]
            .sort_unstable_by(|a, b| key(a).cmp(key(b)).then(value(a).cmp(value(b))));
        let mut n = 0usize;
        for (i, p) in self.pairs[..self.len].iter().enumerate() {
            if i > 0 {
                self.out[n] = b',';
                n += 1;
            }
            let k = key(p);
            self.out[n..n + k.len()].copy_from_slice(k);
            n += k.len();
            self.out[n] = b'=';
            n += 1;
            let v = value(p);
            self.out[n..n + v.len()].copy_from_slice(v);
            n += v.len();
        }
        core::str::from_utf8(&self.out[..n]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        let mut s = LabelSet::new();
        for (k, v) in pairs {
            s.push(k.as_bytes(), v.as_bytes());
        }
        s
    }

    #[test]
    fn any_order_gives_the_same_text_and_hash() {
        let mut a = set(&[("tier", "web"), ("app", "nginx"), ("a", "")]);
        let mut b = set(&[("app", "nginx"), ("a", ""), ("tier", "web")]);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.canonical(), Some("a=,app=nginx,tier=web"));
        assert_eq!(b.canonical(), Some("a=,app=nginx,tier=web"));
        assert_eq!(canonical_hash("a=,app=nginx,tier=web"), a.hash());
    }

    #[test]
    fn presorted_and_unsorted_input_give_the_same_text() {
        // Sorted input takes the no-copy path; equal keys order by value.
        let mut a = set(&[("a", "1"), ("a", "2"), ("b", "")]);
        let mut b = set(&[("b", ""), ("a", "2"), ("a", "1")]);
        let mut c = set(&[("a", "2"), ("a", "1"), ("b", "")]);
        assert_eq!(a.canonical(), Some("a=1,a=2,b="));
        assert_eq!(b.canonical(), Some("a=1,a=2,b="));
        assert_eq!(c.canonical(), Some("a=1,a=2,b="));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.hash(), c.hash());
    }

    #[test]
    fn empty_set_is_empty_text_and_zero_hash() {
        let mut s = LabelSet::new();
        assert_eq!(s.canonical(), Some(""));
        assert_eq!(s.hash(), 0);
        assert_eq!(canonical_hash(""), 0);
    }

    #[test]
    fn ambiguous_or_oversize_sets_have_no_text_but_a_hash() {
        let mut a = set(&[("a", "b,c=d")]);
        let mut b = set(&[("a", "b"), ("c", "d")]);
        assert_eq!(a.canonical(), None);
        assert_eq!(b.canonical(), Some("a=b,c=d"));
        assert_ne!(a.hash(), b.hash());

        let mut many = LabelSet::new();
        for i in 0..=MAX_LABELS {
            let k = format!("k{i:03}");
            many.push(k.as_bytes(), b"v");
        }
        assert_eq!(many.canonical(), None);
        assert_eq!(many.len(), MAX_LABELS + 1);
        assert_ne!(many.hash(), 0);

        let long = "x".repeat(MAX_LABELS_BYTES);
        let mut big = set(&[("k", &long)]);
        assert_eq!(big.canonical(), None);
        // Exactly at the bound still fits: `k=` + value.
        let fits = "x".repeat(MAX_LABELS_BYTES - 2);
        let mut edge = set(&[("k", &fits)]);
        assert_eq!(edge.canonical().map(str::len), Some(MAX_LABELS_BYTES));
    }

    #[test]
    fn clear_resets_everything() {
        let mut s = set(&[("a", "b,")]);
        assert_eq!(s.canonical(), None);
        s.clear();
        s.push(b"x", b"y");
        assert_eq!(s.canonical(), Some("x=y"));
        assert_eq!(s.hash(), canonical_hash("x=y"));
    }
}
