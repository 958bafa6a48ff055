//! Printing values as jinja2 does: `{{ x }}` writes Python's `str(x)`. minijinja's own
//! printing is already close (`None`, `True`, `['a', 1]`) but spells floats differently (`1e20`
//! for Python's `1e+20`); this formatter writes floats, lists and dicts exactly as Python's
//! `repr` does. Only `{{ }}` output goes through it; `~` and `|string` keep minijinja's spelling.

use std::fmt::Write;

use minijinja::value::ValueKind;
use minijinja::{escape_formatter, Error, Output, State, Value};

use crate::fuel::{units, Charge};
use crate::pyjson::float_repr;

/// Python's `str`/`repr` of a float: JSON's spelling except for the non-finite values.
fn py_float(x: f64) -> String {
    match x {
        x if x.is_nan() => "nan".into(),
        f64::INFINITY => "inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        x => float_repr(x),
    }
}

/// The environment's formatter, charging the render's fuel for what it writes.
pub(crate) fn python_formatter(
    out: &mut Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    match value.kind() {
        // An iterable (`messages * 3`) prints as the list it is in Python, and through
        // `repr`, which charges fuel per item: minijinja's own printing charges only after.
        ValueKind::None | ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            let mut s = String::new();
            repr(value, &mut s, &|n| state.consume_fuel(n))?;
            out.write_str(&s).map_err(Error::from)
        }
        ValueKind::Number if !value.is_integer() => {
            let x = f64::try_from(value.clone())?;
            out.write_str(&py_float(x)).map_err(Error::from)
        }
        _ => escape_formatter(out, state, value),
    }
}

/// Python's `repr` of a template value, drawing on `charge` for each value and its text.
fn repr(v: &Value, out: &mut String, charge: Charge) -> Result<(), Error> {
    charge(units(v.as_str().map_or(0, str::len)))?;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number if !v.is_integer() => out.push_str(&py_float(f64::try_from(v.clone())?)),
        ValueKind::String => repr_str(v.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr(&item, out, charge)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr(&key, out, charge)?;
                out.push_str(": ");
                repr(&v.get_item(&key)?, out, charge)?;
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{v}");
        }
    }
    Ok(())
}

/// Python's `repr(str)`: single quotes unless the text has one and no double quote.
fn repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                let _ = match n {
                    0..=0xFF => write!(out, "\\x{n:02x}"),
                    0x100..=0xFFFF => write!(out, "\\u{n:04x}"),
                    _ => write!(out, "\\U{n:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for the characters text actually contains: controls, and the
/// separators and format characters that repr escapes (no-break and other spaces, zero-width
/// characters, bidi marks, BOM).
fn printable(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{a0}' | '\u{ad}' | '\u{1680}' | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}'
            | '\u{205f}'..='\u{2064}' | '\u{3000}' | '\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: Value) -> String {
        let mut s = String::new();
        repr(&v, &mut s, &|_| Ok(())).unwrap();
        s
    }

    // Expected strings from Python 3's repr().
    #[test]
    fn reprs_like_python() {
        assert_eq!(r(Value::from(())), "None");
        assert_eq!(
            r(Value::from(vec![
                Value::from(1),
                Value::from("a"),
                Value::from(true),
                Value::from(1.5)
            ])),
            "[1, 'a', True, 1.5]"
        );
        assert_eq!(
            r(Value::from_pairs([("k", Value::from("it's"))])),
            "{'k': \"it's\"}"
        );
        assert_eq!(r(Value::from("a'b\"c\n\u{a0}é")), "'a\\'b\"c\\n\\xa0é'");
        assert_eq!(r(Value::from("\u{200b}")), "'\\u200b'");
        // Python: repr([float('inf'), float('-inf'), float('nan')]) == '[inf, -inf, nan]'
        let odd = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN].map(Value::from);
        assert_eq!(r(Value::from(odd.to_vec())), "[inf, -inf, nan]");
    }
}
