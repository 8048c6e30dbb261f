//! RFC 3339 timestamps (as Kubernetes writes `metav1.Time` and
//! `metav1.MicroTime`) to nanoseconds since the Unix epoch.

/// A parsed timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp {
    /// Nanoseconds since 1970-01-01T00:00:00Z, clamped to the `i64` range.
    pub ns: i64,
    /// Whether `ns` was clamped (the instant is before 1677-09-21 or after
    /// 2262-04-11).
    pub clamped: bool,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. `T`/`Z` may be lower
/// case. Fractions of any length are accepted; digits past nanoseconds are
/// truncated. Returns `None` for anything else, including out-of-range
/// calendar fields (month 13, February 30, hour 24, second 60).
pub(crate) fn parse_rfc3339(s: &[u8]) -> Option<Timestamp> {
    if s.len() < 20 {
        return None;
    }
    let num = |r: core::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in s.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let min = num(14..16)?;
    let sec = num(17..19)?;
    if s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if s[i] == b'.' {
        i += 1;
        let start = i;
        let mut scale: i64 = 100_000_000;
        while let Some(&c) = s.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            frac_ns += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_s: i64 = match *s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == s.len() => {
            if s[i + 3] != b':' {
                return None;
            }
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset_s;
    // |secs| < 2^38, so the i128 product cannot overflow.
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(frac_ns);
    Some(match i64::try_from(ns) {
        Ok(ns) => Timestamp { ns, clamped: false },
        Err(_) => Timestamp {
            ns: if ns < 0 { i64::MIN } else { i64::MAX },
            clamped: true,
        },
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Option<i64> {
        parse_rfc3339(s.as_bytes()).map(|t| t.ns)
    }

    #[test]
    fn parses_kubernetes_forms() {
        assert_eq!(ns("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d 2026-06-15T04:14:53Z +%s` = 1781496893
        assert_eq!(ns("2026-06-15T04:14:53Z"), Some(1_781_496_893_000_000_000));
        // Offsets: 05:39:19-05:00 is 10:39:19Z.
        assert_eq!(ns("2015-02-09T05:39:19-05:00"), ns("2015-02-09T10:39:19Z"));
        assert_eq!(ns("2015-03-19T15:08:20+02:00"), ns("2015-03-19T13:08:20Z"));
        assert_eq!(
            ns("2010-01-01T01:01:01.000010Z"),
            ns("2010-01-01T01:01:01Z").map(|v| v + 10_000)
        );
        assert_eq!(ns("2000-02-29T00:00:00Z"), Some(951_782_400_000_000_000));
        assert_eq!(ns("1969-12-31T23:59:59.5Z"), Some(-500_000_000));
    }

    #[test]
    fn clamps_out_of_range_years() {
        let t = parse_rfc3339(b"2951-04-21T20:18:51.456715Z").unwrap();
        assert_eq!(
            t,
            Timestamp {
                ns: i64::MAX,
                clamped: true
            }
        );
        let t = parse_rfc3339(b"1600-01-01T00:00:00Z").unwrap();
        assert_eq!(
            t,
            Timestamp {
                ns: i64::MIN,
                clamped: true
            }
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2015-02-09",
            "2015-02-09 05:39:19Z",
            "2015-13-09T05:39:19Z",
            "2015-02-29T05:39:19Z",
            "2015-02-09T24:00:00Z",
            "2015-02-09T05:39:19",
            "2015-02-09T05:39:19.Z",
            "2015-02-09T05:39:19+0500",
            "2015-02-09T05:39:19Zjunk",
            "nameValue",
        ] {
            assert_eq!(ns(s), None, "{s}");
        }
    }
}
