//! Primitives as the text of a file, the way flytecopilot writes and reads them: integers and
//! floats in decimal, booleans as `true`/`false`, datetimes in RFC 3339 (UTC, fractional seconds
//! only when present), durations in Go's notation (`1h2m3.5s`), strings as they are.

use alula_idl::flyteidl::core::{primitive, SimpleType};
use alula_idl::wkt::{Duration, Timestamp};
use chrono::{DateTime, NaiveDateTime};

/// The file content of a primitive.
pub fn format_primitive(value: &primitive::Value) -> Result<String, String> {
    Ok(match value {
        primitive::Value::Integer(i) => i.to_string(),
        // Rust's `Display` is Go's `FormatFloat(f, 'f', -1, 64)`: the shortest digits that
        // read back to the same number, never an exponent.
        primitive::Value::FloatValue(f) => f.to_string(),
        primitive::Value::StringValue(s) => s.clone(),
        primitive::Value::Boolean(b) => b.to_string(),
        primitive::Value::Datetime(t) => format_datetime(t)?,
        primitive::Value::Duration(d) => format_duration(d),
    })
}

/// The primitive of type `simple` a file's text holds. Surrounding white space is ignored for
/// every type but strings (`echo 3 > out` writes a newline), which are taken byte for byte.
pub fn parse_primitive(simple: SimpleType, text: &str) -> Result<primitive::Value, String> {
    let t = text.trim();
    Ok(match simple {
        SimpleType::Integer => primitive::Value::Integer(
            t.parse()
                .map_err(|e| format!("{t:?} is not an integer ({e})"))?,
        ),
        SimpleType::Float => primitive::Value::FloatValue(
            t.parse()
                .map_err(|e| format!("{t:?} is not a float ({e})"))?,
        ),
        SimpleType::String => primitive::Value::StringValue(text.to_string()),
        SimpleType::Boolean => primitive::Value::Boolean(parse_bool(t)?),
        SimpleType::Datetime => primitive::Value::Datetime(parse_datetime(t)?),
        SimpleType::Duration => primitive::Value::Duration(parse_duration(t)?),
        other => return Err(format!("{} is not a primitive type", other.as_str_name())),
    })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(t: &str) -> Result<bool, String> {
    match t {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("{t:?} is not a boolean (true or false)")),
    }
}

fn format_datetime(t: &Timestamp) -> Result<String, String> {
    let nanos = u32::try_from(t.nanos).map_err(|_| format!("bad timestamp nanos {}", t.nanos))?;
    let time = DateTime::from_timestamp(t.seconds, nanos)
        .ok_or_else(|| format!("timestamp {}s out of range", t.seconds))?;
    let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos != 0 {
        text.push('.');
        text.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    text.push('Z');
    Ok(text)
}

/// RFC 3339; a time without an offset (Python's `datetime.isoformat()` of a naive datetime) is
/// taken as UTC.
fn parse_datetime(t: &str) -> Result<Timestamp, String> {
    let utc = match DateTime::parse_from_rfc3339(t) {
        Ok(time) => time.to_utc(),
        Err(e) => NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
            .map_err(|_| format!("{t:?} is not an RFC 3339 datetime ({e})"))?
            .and_utc(),
    };
    Ok(Timestamp {
        seconds: utc.timestamp(),
        nanos: utc.timestamp_subsec_nanos() as i32,
    })
}

const NS: i128 = 1;
const US: i128 = 1_000;
const MS: i128 = 1_000_000;
const S: i128 = 1_000_000_000;
const M: i128 = 60 * S;
const H: i128 = 60 * M;

fn total_nanos(d: &Duration) -> i128 {
    d.seconds as i128 * S + d.nanos as i128
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn format_duration(d: &Duration) -> String {
    let total = total_nanos(d);
    if total == 0 {
        return "0s".into();
    }
    let sign = if total < 0 { "-" } else { "" };
    let n = total.abs();
    // Below a second Go picks the largest unit that keeps an integer part.
    let (unit, scale) = if n < US {
        ("ns", NS)
    } else if n < MS {
        ("µs", US)
    } else if n < S {
        ("ms", MS)
    } else {
        let (h, rest) = (n / H, n % H);
        let (m, rest) = (rest / M, rest % M);
        let mut out = String::from(sign);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&decimal(rest, S));
        out.push('s');
        return out;
    };
    format!("{sign}{}{unit}", decimal(n, scale))
}

/// `n / scale` in decimal without trailing zeros.
fn decimal(n: i128, scale: i128) -> String {
    let (whole, frac) = (n / scale, n % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units (`ns`, `us`/`µs`, `ms`,
/// `s`, `m`, `h`), optionally signed: `300ms`, `-1.5h`, `2h45m`. A bare `0` is zero.
pub fn parse_duration(t: &str) -> Result<Duration, String> {
    let bad = || format!("{t:?} is not a duration (e.g. 1h2m3.5s, 250ms)");
    let (negative, mut rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if rest == "0" {
        return Ok(Duration::default());
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => NS,
            "us" | "µs" | "μs" => US,
            "ms" => MS,
            "s" => S,
            "m" => M,
            "h" => H,
            _ => return Err(bad()),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(bad)?;
        // Fractional digits beyond nanosecond precision are dropped, as Go does.
        let mut place = scale;
        for digit in frac.chars() {
            let digit = digit.to_digit(10).ok_or_else(bad)? as i128;
            place /= 10;
            part += digit * place;
        }
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = tail;
    }
    if negative {
        total = -total;
    }
    let seconds = i64::try_from(total / S).map_err(|_| bad())?;
    Ok(Duration {
        seconds,
        nanos: (total % S) as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(seconds: i64, nanos: i32) -> Duration {
        Duration { seconds, nanos }
    }

    #[test]
    fn durations_read_and_print_as_go_does() {
        for (text, d) in [
            ("0s", dur(0, 0)),
            ("1.5s", dur(1, 500_000_000)),
            ("1h2m3.5s", dur(3723, 500_000_000)),
            ("2h0m0s", dur(7200, 0)),
            ("1m0s", dur(60, 0)),
            ("250ms", dur(0, 250_000_000)),
            ("1.5µs", dur(0, 1500)),
            ("7ns", dur(0, 7)),
            ("-1.5s", dur(-1, -500_000_000)),
        ] {
            assert_eq!(format_duration(&d), text);
            assert_eq!(parse_duration(text).unwrap(), d, "{text}");
        }
        assert_eq!(parse_duration("90m").unwrap(), dur(5400, 0));
        assert_eq!(parse_duration("1.5h").unwrap(), dur(5400, 0));
        assert_eq!(parse_duration("0").unwrap(), dur(0, 0));
        for bad in ["", "5", "1x", "h", "1.2.3s", "-"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn datetimes_are_rfc3339_in_utc() {
        let t = parse_datetime("2024-02-29T12:30:00.25+01:00").unwrap();
        assert_eq!(format_datetime(&t).unwrap(), "2024-02-29T11:30:00.25Z");
        let naive = parse_datetime("2024-02-29T11:30:00").unwrap();
        assert_eq!(format_datetime(&naive).unwrap(), "2024-02-29T11:30:00Z");
        assert!(parse_datetime("yesterday").is_err());
    }

    #[test]
    fn numbers_and_booleans_ignore_surrounding_space_but_strings_keep_it() {
        assert_eq!(
            parse_primitive(SimpleType::Integer, "42\n").unwrap(),
            primitive::Value::Integer(42)
        );
        assert_eq!(
            parse_primitive(SimpleType::Boolean, " True ").unwrap(),
            primitive::Value::Boolean(true)
        );
        assert_eq!(
            parse_primitive(SimpleType::String, "hi\n").unwrap(),
            primitive::Value::StringValue("hi\n".into())
        );
        let err = parse_primitive(SimpleType::Integer, "4.5").unwrap_err();
        assert!(err.contains("\"4.5\" is not an integer"), "{err}");
    }
}
