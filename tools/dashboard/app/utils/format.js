// Number and time formatting for the views.
export function fmt(n, digits = 0) {
  if (n == null || Number.isNaN(n)) return '–'
  const a = Math.abs(n)
  if (a >= 1e6) return (n / 1e6).toFixed(2) + ' M'
  if (a >= 1e4) return (n / 1e3).toFixed(1) + ' k'
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits })
}

/** Nanoseconds as ns / µs / ms. */
export function dur(ns) {
  if (ns == null) return '–'
  if (ns < 1000) return `${Math.round(ns)} ns`
  if (ns < 1e6) return `${(ns / 1000).toFixed(1)} µs`
  return `${(ns / 1e6).toFixed(1)} ms`
}

export function clock(ms) {
  if (!ms) return ''
  return new Date(ms).toISOString().slice(11, 23)
}

/** Budget state of a stage: ok (p99 within budget), warn (within 2×), over. */
export function budgetState(s) {
  if (!s || !s.budget_ns) return 'ok'
  if (s.p99_ns <= s.budget_ns) return 'ok'
  if (s.p99_ns <= 2 * s.budget_ns) return 'warn'
  return 'over'
}
