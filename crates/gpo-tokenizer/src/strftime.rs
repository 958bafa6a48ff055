//! `strftime_now(format)`, the function transformers gives chat templates (Llama 3.1 and later
//! print today's date with it). gpo formats the time in UTC, the common format codes only.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Bytes of output per byte of format at most (`%B` writes `September`).
const MAX_EXPANSION: usize = 5;

/// The template function: the current UTC time formatted like Python's `datetime.strftime`,
/// its output charged to the render's fuel first.
pub(crate) fn strftime_now(
    state: &minijinja::State,
    format: &str,
) -> Result<String, minijinja::Error> {
    state.consume_fuel(crate::fuel::units(
        format.len().saturating_mul(MAX_EXPANSION),
    ))?;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    strftime_utc(format, secs)
        .map_err(|msg| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
}

/// A broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    yday: u32,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
}

fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][month as usize - 1];
    let yday = before + day + u32::from(leap && month > 2);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = (days + 3).rem_euclid(7) as usize;
    Civil {
        year,
        month,
        day,
        yday,
        weekday,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
    }
}

/// Formats `secs` since the epoch (UTC). Supports `%a %A %b %B %d %e %H %I %j %m %M %p %S %y %Y
/// %Z %z %%` and glibc's `%-d`-style unpadded forms; anything else is an error naming it.
pub(crate) fn strftime_utc(format: &str, secs: i64) -> Result<String, String> {
    let t = civil(secs);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = chars.next();
        let unpadded = spec == Some('-');
        if unpadded {
            spec = chars.next();
        }
        let num = |n: i64, width: usize| {
            if unpadded {
                n.to_string()
            } else {
                format!("{n:0width$}")
            }
        };
        let hour12 = (t.hour + 11) % 12 + 1;
        let piece = match spec {
            Some('a') => DAYS[t.weekday][..3].to_string(),
            Some('A') => DAYS[t.weekday].to_string(),
            Some('b') | Some('h') => MONTHS[t.month as usize - 1][..3].to_string(),
            Some('B') => MONTHS[t.month as usize - 1].to_string(),
            Some('d') => num(i64::from(t.day), 2),
            Some('e') => format!("{:>2}", t.day),
            Some('H') => num(t.hour, 2),
            Some('I') => num(hour12, 2),
            Some('j') => num(i64::from(t.yday), 3),
            Some('m') => num(i64::from(t.month), 2),
            Some('M') => num(t.minute, 2),
            Some('p') => (if t.hour < 12 { "AM" } else { "PM" }).to_string(),
            Some('S') => num(t.second, 2),
            Some('y') => num(t.year.rem_euclid(100), 2),
            Some('Y') => t.year.to_string(),
            Some('Z') => "UTC".to_string(),
            Some('z') => "+0000".to_string(),
            Some('%') => "%".to_string(),
            Some(other) => {
                return Err(format!(
                    "strftime_now: format code %{other} is not supported"
                ))
            }
            None => return Err("strftime_now: the format ends with a lone %".to_string()),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings from Python: datetime.fromtimestamp(secs, timezone.utc).strftime(fmt).
    #[test]
    fn formats_like_python() {
        assert_eq!(strftime_utc("%d %b %Y", 0).unwrap(), "01 Jan 1970");
        assert_eq!(
            strftime_utc("%A %d %B %Y %H:%M:%S %j %p", 1_700_000_000).unwrap(),
            "Tuesday 14 November 2023 22:13:20 318 PM"
        );
        assert_eq!(
            strftime_utc("%-d/%-m/%y %I%%", 1_709_164_800).unwrap(),
            "29/2/24 12%"
        );
        assert_eq!(strftime_utc("%a %j", 1_735_603_200).unwrap(), "Tue 366");
    }

    #[test]
    fn unknown_codes_are_named() {
        let e = strftime_utc("%Q", 0).unwrap_err();
        assert!(e.contains("%Q"), "{e}");
    }

    #[test]
    fn now_is_this_century() {
        let mut env = minijinja::Environment::new();
        env.add_function("strftime_now", strftime_now);
        let y = env.render_str("{{ strftime_now('%Y') }}", ()).unwrap();
        let y: i64 = y.parse().unwrap();
        assert!((2024..2200).contains(&y), "{y}");
    }
}
