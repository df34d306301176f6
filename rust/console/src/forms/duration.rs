//! Durations as people type them: `90s`, `1h2m`, `1h 30m`, `1.5s`, `250ms`, `2d`, or a bare
//! number of seconds. Also the proto3 JSON form (`"3.5s"`), which is one of those.

use alula_idl::wkt::Duration;

/// The `pattern` of a duration `<input>` (browsers anchor it): one or more number+unit parts,
/// or a plain number of seconds: the forms [`parse_duration`] reads, bar negative ones.
pub(crate) const DURATION_PATTERN: &str =
    r"\s*(\d+(\.\d+)?\s*(d|h|m|s|ms|us|µs|ns)\s*)+|\s*\d+(\.\d+)?\s*";

/// protobuf's limit: about 10,000 years.
const MAX_SECONDS: i128 = 315_576_000_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Parses a duration; the error says what was wrong in the user's terms.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration like \"1h30m\", \"90s\" or \"250ms\"");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let mut nanos: i128 = 0;
    if let Some(n) = decimal_nanos(trimmed, NANOS_PER_SECOND) {
        nanos = n;
    } else {
        let mut rest = trimmed;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(invalid)?;
            let (number, after) = rest.split_at(number_len);
            let after = after.trim_start();
            let unit_len = after
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            let scale = match unit {
                "d" => 86_400 * NANOS_PER_SECOND,
                "h" => 3_600 * NANOS_PER_SECOND,
                "m" => 60 * NANOS_PER_SECOND,
                "s" => NANOS_PER_SECOND,
                "ms" => 1_000_000,
                "us" | "µs" => 1_000,
                "ns" => 1,
                _ => return Err(invalid()),
            };
            nanos = nanos
                .checked_add(decimal_nanos(number, scale).ok_or_else(invalid)?)
                .ok_or_else(invalid)?;
            rest = after.trim_start();
        }
    }
    if nanos / NANOS_PER_SECOND > MAX_SECONDS {
        return Err(format!(
            "{text:?} is longer than the 10,000 years a duration can hold"
        ));
    }
    Ok(Duration {
        seconds: i64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| invalid())?,
        nanos: i32::try_from(nanos % NANOS_PER_SECOND).map_err(|_| invalid())?,
    })
}

/// `digits[.digits]` times `scale` nanoseconds, exactly (fractions below a nanosecond are
/// dropped); `None` for anything else or a number too large.
fn decimal_nanos(number: &str, scale: i128) -> Option<i128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 18 || !digits(whole) || !digits(fraction) {
        return None;
    }
    if number.ends_with('.') {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let mut total = whole.checked_mul(scale)?;
    let mut unit = scale;
    for digit in fraction.bytes().take(18) {
        unit /= 10;
        total += i128::from(digit - b'0') * unit;
    }
    Some(total)
}

/// The shortest of the typed forms for a duration (`1h2m3s`, `250ms`, `0s`), for defaults.
pub(crate) fn duration_text(d: &Duration) -> String {
    let total = i128::from(d.seconds) * NANOS_PER_SECOND + i128::from(d.nanos);
    if total <= 0 {
        return d.to_json_string();
    }
    let secs = total / NANOS_PER_SECOND;
    let sub = total % NANOS_PER_SECOND;
    if secs == 0 {
        return if sub % 1_000_000 == 0 {
            format!("{}ms", sub / 1_000_000)
        } else {
            format!("{sub}ns")
        };
    }
    let mut out = String::new();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || sub > 0 {
        if sub > 0 {
            let frac = format!("{sub:09}");
            out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> (i64, i32) {
        let d = parse_duration(text).unwrap();
        (d.seconds, d.nanos)
    }

    #[test]
    fn typed_forms() {
        assert_eq!(secs("90s"), (90, 0));
        assert_eq!(secs("1h2m"), (3720, 0));
        assert_eq!(secs(" 1h 30m "), (5400, 0));
        assert_eq!(secs("1.5s"), (1, 500_000_000));
        assert_eq!(secs("250ms"), (0, 250_000_000));
        assert_eq!(secs("2d"), (172_800, 0));
        assert_eq!(secs("90"), (90, 0));
        assert_eq!(secs("0.25"), (0, 250_000_000));
        assert_eq!(secs("3µs"), (0, 3_000));
        for bad in [
            "",
            "s",
            "1x",
            "1.s",
            "-1s",
            "1h-2m",
            "h1",
            "1 2s",
            "1e3s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_read_back() {
        for text in [
            "1h2m3s",
            "250ms",
            "1.5s",
            "2m",
            "5h",
            "7ns",
            "1h0.000000001s",
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(duration_text(&d), text);
            assert_eq!(parse_duration(&duration_text(&d)).unwrap(), d);
        }
    }
}
