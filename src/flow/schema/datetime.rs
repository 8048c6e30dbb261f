//! `xsd:dateTime` / RFC 3339 text for nanoseconds since the Unix epoch.

/// Civil date (year, month, day) of a day count since 1970-01-01
/// (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms",
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe as i64 + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `ns` as `YYYY-MM-DDThh:mm:ss[.f…]Z` (UTC; the fraction has 1–9
/// digits, trailing zeros removed, and is absent when zero). Every `i64`
/// falls in years 1677–2262, so the year always has four digits.
pub(crate) fn write_rfc3339(ns: i64, out: &mut String) {
    use core::fmt::Write;
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    // Writing to a `String` cannot fail.
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if frac != 0 {
        let mut digits = 9;
        let mut f = frac;
        while f.is_multiple_of(10) {
            f /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{f:0digits$}");
    }
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ns: i64) -> String {
        let mut s = String::new();
        write_rfc3339(ns, &mut s);
        s
    }

    #[test]
    fn known_instants() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            fmt(crate::sources::gen::DEFAULT_START_NS),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(fmt(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(fmt(1), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999999999Z");
        // 2024-02-29T12:34:56.789Z (a leap day).
        assert_eq!(fmt(1_709_210_096_789_000_000), "2024-02-29T12:34:56.789Z");
        assert_eq!(fmt(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(fmt(i64::MIN), "1677-09-21T00:12:43.145224192Z");
    }
}
