//! `tojson` as transformers overrides it: Python's `json.dumps(x, ensure_ascii=False, indent=None,
//! separators=None, sort_keys=False)`, byte for byte, instead of Jinja's HTML-escaping filter.

use std::fmt::Write;

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

use crate::fuel::{units, Charge};

/// The options of `json.dumps` that chat templates use.
#[derive(Debug, Clone)]
pub(crate) struct DumpOptions {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            ensure_ascii: false,
            indent: None,
            item_sep: ", ".into(),
            key_sep: ": ".into(),
            sort_keys: false,
        }
    }
}

/// The `tojson` filter: `value | tojson(ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)` (`sort_keys` by keyword only), charging the render's fuel as it writes.
pub(crate) fn tojson_filter(
    state: &State,
    value: &Value,
    positional: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    if positional.len() > 3 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 3 positional arguments (ensure_ascii, indent, separators)",
        ));
    }
    let pick = |pos: usize, name: &str| -> Result<Value, Error> {
        let kw: Option<Value> = kwargs.get(name)?;
        Ok(kw
            .or(positional.get(pos).cloned())
            .unwrap_or(Value::from(())))
    };
    let ensure_ascii = pick(0, "ensure_ascii")?;
    let indent = pick(1, "indent")?;
    let separators = pick(2, "separators")?;
    let sort_keys = pick(usize::MAX, "sort_keys")?;
    kwargs.assert_all_used()?;
    let mut opts = DumpOptions {
        ensure_ascii: ensure_ascii.is_true(),
        sort_keys: sort_keys.is_true(),
        ..DumpOptions::default()
    };
    if !indent.is_none() && !indent.is_undefined() {
        opts.indent = Some(match indent.as_str() {
            Some(s) => s.to_string(),
            None => {
                let n = indent.as_i64().ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: indent must be an integer or a string",
                    )
                })?;
                let n = usize::try_from(n).unwrap_or(0);
                state.consume_fuel(units(n))?;
                " ".repeat(n)
            }
        });
        // Python drops the space after the comma when indenting.
        opts.item_sep = ",".into();
    }
    if !separators.is_none() && !separators.is_undefined() {
        let parts: Vec<Value> = separators.try_iter()?.collect();
        match parts.as_slice() {
            [item, key] if item.as_str().is_some() && key.as_str().is_some() => {
                opts.item_sep = item.as_str().unwrap_or_default().to_string();
                opts.key_sep = key.as_str().unwrap_or_default().to_string();
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: separators must be a pair of strings (item, key)",
                ))
            }
        }
    }
    dumps(value, &opts, &|n| state.consume_fuel(n))
}

/// `json.dumps(value, **opts)`, drawing on `charge` for each value and the bytes written.
pub(crate) fn dumps(value: &Value, opts: &DumpOptions, charge: Charge) -> Result<String, Error> {
    let mut out = String::new();
    write_value(value, opts, 0, &mut out, charge)?;
    Ok(out)
}

fn write_value(
    v: &Value,
    opts: &DumpOptions,
    depth: usize,
    out: &mut String,
    charge: Charge,
) -> Result<(), Error> {
    charge(units(v.as_str().map_or(0, str::len)))?;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if v.is_integer() {
                let _ = write!(out, "{v}");
            } else {
                let x = f64::try_from(v.clone())?;
                out.push_str(&float_repr(x));
            }
        }
        ValueKind::String => write_str(v.as_str().unwrap_or_default(), opts.ensure_ascii, out),
        ValueKind::Map => {
            let mut items: Vec<(String, Value)> = Vec::new();
            for key in v.try_iter()? {
                charge(1)?;
                let name = match key.as_str() {
                    Some(s) => s.to_string(),
                    // Python turns numbers, booleans and None used as keys into strings.
                    None => match key.kind() {
                        ValueKind::None => "null".into(),
                        ValueKind::Bool => (if key.is_true() { "true" } else { "false" }).into(),
                        _ => key.to_string(),
                    },
                };
                items.push((name, v.get_item(&key)?));
            }
            if opts.sort_keys {
                items.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let each = |(k, val): &(String, Value), out: &mut String| {
                charge(units(k.len() + opts.key_sep.len()))?;
                write_str(k, opts.ensure_ascii, out);
                out.push_str(&opts.key_sep);
                write_value(val, opts, depth + 1, out, charge)
            };
            write_container(out, opts, depth, ('{', '}'), &items, charge, each)?;
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = v
                .try_iter()?
                .map(|item| charge(1).map(|_| item))
                .collect::<Result<Vec<Value>, Error>>()?;
            let each =
                |item: &Value, out: &mut String| write_value(item, opts, depth + 1, out, charge);
            write_container(out, opts, depth, ('[', ']'), &items, charge, each)?;
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: Object of type {other} is not JSON serializable"),
            ))
        }
    }
    Ok(())
}

fn write_container<T>(
    out: &mut String,
    opts: &DumpOptions,
    depth: usize,
    (open, close): (char, char),
    items: &[T],
    charge: Charge,
    mut each: impl FnMut(&T, &mut String) -> Result<(), Error>,
) -> Result<(), Error> {
    let pad = opts
        .indent
        .as_ref()
        .map_or(0, |ind| ind.len() * (depth + 1));
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        charge(units(opts.item_sep.len() + pad))?;
        if i > 0 {
            out.push_str(&opts.item_sep);
        }
        if let Some(ind) = &opts.indent {
            out.push('\n');
            out.push_str(&ind.repeat(depth + 1));
        }
        each(item, out)?;
    }
    if let Some(ind) = &opts.indent {
        out.push('\n');
        out.push_str(&ind.repeat(depth));
    }
    out.push(close);
    Ok(())
}

fn write_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest round-trip digits, positional for exponents -4..16,
/// scientific (`1e+16`, `1.5e-05`) otherwise.
pub(crate) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits as Python: "-1.5e-5".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else {
            let point = point as usize;
            if digits.len() <= point {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        };
        format!("{sign}{body}")
    } else {
        let mant = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mant}e{esign}{:02}", exp.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings from Python 3: repr(x) / json.dumps(...).
    #[test]
    fn floats_print_like_python() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (1e22, "1e+22"),
            (0.0, "0.0"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn dumps_like_python() {
        let v = Value::from_pairs([
            ("b", Value::from(vec![Value::from(1), Value::from(2.5)])),
            ("a", Value::from("é\"<x>\n")),
            ("c", Value::from_pairs::<_, &str, i32>([])),
        ]);
        // json.dumps(v, ensure_ascii=False)
        assert_eq!(
            dumps(&v, &DumpOptions::default(), &|_| Ok(())).unwrap(),
            r#"{"b": [1, 2.5], "a": "é\"<x>\n", "c": {}}"#
        );
        // json.dumps(v, ensure_ascii=True, indent=2, sort_keys=True)
        let opts = DumpOptions {
            ensure_ascii: true,
            indent: Some("  ".into()),
            item_sep: ",".into(),
            sort_keys: true,
            ..DumpOptions::default()
        };
        assert_eq!(
            dumps(&v, &opts, &|_| Ok(())).unwrap(),
            "{\n  \"a\": \"\\u00e9\\\"<x>\\n\",\n  \"b\": [\n    1,\n    2.5\n  ],\n  \"c\": {}\n}"
        );
    }

    #[test]
    fn astral_chars_escape_as_surrogate_pairs() {
        let mut out = String::new();
        write_str("🙂", true, &mut out);
        assert_eq!(out, r#""\ud83d\ude42""#);
    }
}
