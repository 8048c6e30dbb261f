//! Predicate tests over a column of up to [`WIDTH`] values (a value per item of one kind
//! in a chunk, packed from row 0): one call tests them all and returns one bit per row.
//!
//! The test is `lo ≤ x ≤ hi` (inside) or `x < lo ∨ x > hi` (outside), both false for NaN.
//! On x86-64 it runs on the widest vector unit the CPU has, chosen once per process
//! ([`Isa::detect`], capped by `ActorConfig::vectors`): AVX-512 (8 values and a mask register per compare), AVX (4), or SSE2
//! (2, part of every x86-64 CPU); elsewhere, a scalar loop. Every version returns the same
//! bits (tested against the scalar loop).

/// Values per column: one bit each in a `u64` mask.
pub(crate) const WIDTH: usize = 64;

/// One value per item of a batch, aligned for vector loads.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Column(pub(crate) [f64; WIDTH]);

impl Column {
    pub(crate) const NAN: Column = Column([f64::NAN; WIDTH]);
}

/// The instruction set a column test runs on: an [`Isa`] other than [`Isa::SCALAR`] can
/// only be obtained from [`Isa::detect`] or [`Isa::available`], after the CPU reported it,
/// which is what makes [`Isa::pass_mask`] safe to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Isa(Set);

/// The instruction sets (private: see [`Isa`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    /// A scalar loop (any target).
    Scalar,
    /// 2 values per compare.
    #[cfg(target_arch = "x86_64")]
    Sse2,
    /// 4 values per compare.
    #[cfg(target_arch = "x86_64")]
    Avx,
    /// 8 values per compare into a mask register.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The scalar loop: runs anywhere.
    pub(crate) const SCALAR: Isa = Isa(Set::Scalar);

    /// The widest instruction set this CPU runs that tests at most `lanes` values per
    /// compare (`usize::MAX`: the widest).
    pub(crate) fn detect(lanes: usize) -> Isa {
        Isa::available()
            .into_iter()
            .rfind(|isa| isa.lanes() <= lanes)
            .unwrap_or(Isa::SCALAR)
    }

    /// Values per compare.
    pub(crate) fn lanes(self) -> usize {
        match self.0 {
            Set::Scalar => 1,
            #[cfg(target_arch = "x86_64")]
            Set::Sse2 => 2,
            #[cfg(target_arch = "x86_64")]
            Set::Avx => 4,
            #[cfg(target_arch = "x86_64")]
            Set::Avx512 => 8,
        }
    }

    /// Every instruction set this CPU runs, narrowest first.
    pub(crate) fn available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut all = vec![Isa::SCALAR];
        #[cfg(target_arch = "x86_64")]
        {
            all.push(Isa(Set::Sse2));
            if std::arch::is_x86_feature_detected!("avx") {
                all.push(Isa(Set::Avx));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Isa(Set::Avx512));
            }
        }
        all
    }

    /// A short name for reports.
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            Set::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Set::Sse2 => "sse2",
            #[cfg(target_arch = "x86_64")]
            Set::Avx => "avx",
            #[cfg(target_arch = "x86_64")]
            Set::Avx512 => "avx512",
        }
    }

    /// Bit `i` set ⇔ `i < len` and `col[i]` passes the test against `[lo, hi]` (`outside`:
    /// outside it). Only the vectors holding the first `len` values are tested: a chunk
    /// whose items of one kind are packed at the front tests only theirs.
    #[inline]
    pub(crate) fn pass_mask(
        self,
        col: &Column,
        lo: f64,
        hi: f64,
        outside: bool,
        len: usize,
    ) -> u64 {
        let len = len.min(WIDTH);
        let valid = if len == WIDTH {
            u64::MAX
        } else {
            (1u64 << len) - 1
        };
        valid
            & match (self.0, outside) {
                (Set::Scalar, false) => scalar::<false>(col, lo, hi, len),
                (Set::Scalar, true) => scalar::<true>(col, lo, hi, len),
                // SAFETY: SSE2 is part of every x86-64 CPU.
                #[cfg(target_arch = "x86_64")]
                (Set::Sse2, false) => unsafe { x86::sse2::<false>(col, lo, hi, len) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                (Set::Sse2, true) => unsafe { x86::sse2::<true>(col, lo, hi, len) },
                // SAFETY: `Set::Avx` is only constructed by `Isa::available` after the CPU
                // reported AVX (the field of `Isa` is private to this module).
                #[cfg(target_arch = "x86_64")]
                (Set::Avx, false) => unsafe { x86::avx::<false>(col, lo, hi, len) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                (Set::Avx, true) => unsafe { x86::avx::<true>(col, lo, hi, len) },
                // SAFETY: `Set::Avx512` is only constructed by `Isa::available` after the
                // CPU reported AVX-512F (the field of `Isa` is private to this module).
                #[cfg(target_arch = "x86_64")]
                (Set::Avx512, false) => unsafe { x86::avx512::<false>(col, lo, hi, len) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                (Set::Avx512, true) => unsafe { x86::avx512::<true>(col, lo, hi, len) },
            }
    }
}

#[inline]
fn scalar<const OUTSIDE: bool>(col: &Column, lo: f64, hi: f64, len: usize) -> u64 {
    let mut mask = 0u64;
    for (i, &x) in col.0.iter().take(len).enumerate() {
        let pass = if OUTSIDE {
            (x < lo) | (x > hi)
        } else {
            (x >= lo) & (x <= hi)
        };
        mask |= u64::from(pass) << i;
    }
    mask
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Column, WIDTH};
    use std::arch::x86_64::*;

    /// Only called on x86-64, where SSE2 is part of the base instruction set.
    #[target_feature(enable = "sse2")]
    pub(super) fn sse2<const OUTSIDE: bool>(col: &Column, lo: f64, hi: f64, len: usize) -> u64 {
        // A full column is a loop of constant length (unrolled); a packed prefix, a shorter one.
        if len >= WIDTH {
            sse2_vectors::<OUTSIDE>(col, lo, hi, WIDTH / 2)
        } else {
            sse2_vectors::<OUTSIDE>(col, lo, hi, len.div_ceil(2))
        }
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    fn sse2_vectors<const OUTSIDE: bool>(col: &Column, lo: f64, hi: f64, vectors: usize) -> u64 {
        let (lo, hi) = (_mm_set1_pd(lo), _mm_set1_pd(hi));
        let mut mask = 0u64;
        for (c, pair) in col.0.chunks_exact(2).take(vectors).enumerate() {
            // SAFETY: `pair` holds 2 f64s, 16-byte aligned (the column is 64-byte aligned
            // and `pair` starts at a multiple of 16 bytes into it).
            let x = unsafe { _mm_load_pd(pair.as_ptr()) };
            let pass = if OUTSIDE {
                _mm_or_pd(_mm_cmplt_pd(x, lo), _mm_cmpgt_pd(x, hi))
            } else {
                _mm_and_pd(_mm_cmpge_pd(x, lo), _mm_cmple_pd(x, hi))
            };
            mask |= (_mm_movemask_pd(pass) as u64) << (2 * c);
        }
        mask
    }

    /// Callers must know that the CPU supports AVX.
    #[target_feature(enable = "avx")]
    pub(super) fn avx<const OUTSIDE: bool>(col: &Column, lo: f64, hi: f64, len: usize) -> u64 {
        if len >= WIDTH {
            avx_vectors::<OUTSIDE>(col, lo, hi, WIDTH / 4)
        } else {
            avx_vectors::<OUTSIDE>(col, lo, hi, len.div_ceil(4))
        }
    }

    #[target_feature(enable = "avx")]
    #[inline]
    fn avx_vectors<const OUTSIDE: bool>(col: &Column, lo: f64, hi: f64, vectors: usize) -> u64 {
        let (lo, hi) = (_mm256_set1_pd(lo), _mm256_set1_pd(hi));
        let mut mask = 0u64;
        for c in 0..vectors.min(WIDTH / 4) {
            // SAFETY: `4 * c + 4 <= WIDTH`; the column is 64-byte aligned, so the 4 values
            // at `4 * c` are 32-byte aligned.
            let x = unsafe { _mm256_load_pd(col.0.as_ptr().add(4 * c)) };
            // Ordered, quiet compares: false for NaN.
            let pass = if OUTSIDE {
                _mm256_or_pd(
                    _mm256_cmp_pd::<_CMP_LT_OQ>(x, lo),
                    _mm256_cmp_pd::<_CMP_GT_OQ>(x, hi),
                )
            } else {
                _mm256_and_pd(
                    _mm256_cmp_pd::<_CMP_GE_OQ>(x, lo),
                    _mm256_cmp_pd::<_CMP_LE_OQ>(x, hi),
                )
            };
            mask |= (_mm256_movemask_pd(pass) as u64) << (4 * c);
        }
        mask
    }

    /// Callers must know that the CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) fn avx512<const OUTSIDE: bool>(col: &Column, lo: f64, hi: f64, len: usize) -> u64 {
        if len >= WIDTH {
            avx512_vectors::<OUTSIDE>(col, lo, hi, WIDTH / 8)
        } else {
            avx512_vectors::<OUTSIDE>(col, lo, hi, len.div_ceil(8))
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn avx512_vectors<const OUTSIDE: bool>(col: &Column, lo: f64, hi: f64, vectors: usize) -> u64 {
        let (lo, hi) = (_mm512_set1_pd(lo), _mm512_set1_pd(hi));
        let mut mask = 0u64;
        for c in 0..vectors.min(WIDTH / 8) {
            // SAFETY: `8 * c + 8 <= WIDTH`; the column is 64-byte aligned, so the 8 values
            // at `8 * c` are too.
            let x = unsafe { _mm512_load_pd(col.0.as_ptr().add(8 * c)) };
            let pass = if OUTSIDE {
                _mm512_cmp_pd_mask::<_CMP_LT_OQ>(x, lo) | _mm512_cmp_pd_mask::<_CMP_GT_OQ>(x, hi)
            } else {
                _mm512_cmp_pd_mask::<_CMP_GE_OQ>(x, lo) & _mm512_cmp_pd_mask::<_CMP_LE_OQ>(x, hi)
            };
            mask |= u64::from(pass) << (8 * c);
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values at and around every boundary, infinities, signed zeros and NaN.
    fn columns(lo: f64, hi: f64) -> Vec<Column> {
        let probes = [
            lo,
            hi,
            lo.next_down(),
            lo.next_up(),
            hi.next_down(),
            hi.next_up(),
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            (lo + hi) / 2.0,
            1e300,
            -1e300,
            f64::MIN_POSITIVE,
        ];
        (0..probes.len())
            .map(|shift| {
                let mut c = Column::NAN;
                for (i, x) in c.0.iter_mut().enumerate() {
                    *x = probes[(i * 7 + shift) % probes.len()];
                }
                c
            })
            .collect()
    }

    #[test]
    fn every_instruction_set_returns_the_scalar_bits() {
        let isas = Isa::available();
        assert!(isas.contains(&Isa::SCALAR));
        let bounds = [
            (0.0, 120.0),
            (5.0, 5.0),
            (f64::NEG_INFINITY, 3.0),
            (2.0f64.next_up(), f64::INFINITY),
            (-1.5, -0.5),
        ];
        for (lo, hi) in bounds {
            for col in columns(lo, hi) {
                for outside in [false, true] {
                    // Every length: whole vectors, part of one, none.
                    for len in 0..=WIDTH {
                        let want = Isa::SCALAR.pass_mask(&col, lo, hi, outside, len);
                        for &isa in &isas {
                            assert_eq!(
                                isa.pass_mask(&col, lo, hi, outside, len),
                                want,
                                "{} [{lo}, {hi}] outside={outside} len={len}",
                                isa.name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_scalar_test_is_exact_and_never_passes_nan() {
        let mut col = Column::NAN;
        col.0[..5].copy_from_slice(&[0.0, 120.0, 120.0f64.next_up(), -0.0, 60.0]);
        // Inside [0, 120]: 0, 120, -0 (== 0), 60; not just above 120, not NaN.
        assert_eq!(
            Isa::SCALAR.pass_mask(&col, 0.0, 120.0, false, WIDTH),
            0b11011
        );
        // Outside: only just above 120; NaN is neither inside nor outside.
        assert_eq!(
            Isa::SCALAR.pass_mask(&col, 0.0, 120.0, true, WIDTH),
            0b00100
        );
        // Only the first `len` values.
        assert_eq!(Isa::SCALAR.pass_mask(&col, 0.0, 120.0, false, 2), 0b11);
        assert_eq!(Isa::SCALAR.pass_mask(&col, 0.0, 120.0, true, 2), 0);
    }
}
