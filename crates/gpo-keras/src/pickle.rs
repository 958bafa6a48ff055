//! A restricted unpickler: the opcodes of pickle protocols 2-5 that a pickled Keras
//! `Tokenizer` uses, and nothing that runs code.
//!
//! Globals are never imported: `GLOBAL`/`STACK_GLOBAL` give a [`Value::Global`] name, calls
//! (`REDUCE`, `NEWOBJ`) give a [`Value::Object`] holding the name and arguments, and `BUILD`
//! stores the state dict into it. `collections.OrderedDict()` and
//! `collections.defaultdict(...)` become plain dicts, since that is all a reader needs.
//! Opcode meanings follow CPython's `Lib/pickletools.py`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A shared, mutable dict (pickle memoizes containers and mutates them afterwards).
pub type Dict = Rc<RefCell<Vec<(Value, Value)>>>;

/// An unpickled value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits i64.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Rc<str>),
    /// A tuple.
    Tuple(Rc<Vec<Value>>),
    /// A list.
    List(Rc<RefCell<Vec<Value>>>),
    /// A dict (insertion order kept).
    Dict(Dict),
    /// A class or function named by module and name; never imported.
    Global(Rc<str>, Rc<str>),
    /// The result of calling a global: its class, arguments and `BUILD` state.
    Object(Rc<RefCell<Object>>),
}

/// A constructed object that was not resolved.
#[derive(Debug, Clone)]
pub struct Object {
    /// `module.name` of the class.
    pub class: String,
    /// The constructor arguments.
    pub args: Value,
    /// The state given by `BUILD`, usually a dict of attributes.
    pub state: Option<Value>,
}

impl Value {
    /// Python's name of the value's type, for error messages: printing the value itself
    /// could take pages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(..) => "global",
            Value::Object(_) => "object",
        }
    }

    /// The address of a container (for identity), `None` for other values.
    fn addr(&self) -> Option<*const ()> {
        match self {
            Value::Tuple(t) => Some(Rc::as_ptr(t).cast()),
            Value::List(l) => Some(Rc::as_ptr(l).cast()),
            Value::Dict(d) => Some(Rc::as_ptr(d).cast()),
            Value::Object(o) => Some(Rc::as_ptr(o).cast()),
            _ => None,
        }
    }

    /// Pushes the values a container holds onto `out`.
    fn push_children(&self, out: &mut Vec<Value>) {
        match self {
            Value::Tuple(t) => out.extend(t.iter().cloned()),
            Value::List(l) => out.extend(l.borrow().iter().cloned()),
            Value::Dict(d) => d.borrow().iter().for_each(|(k, v)| {
                out.push(k.clone());
                out.push(v.clone());
            }),
            Value::Object(o) => {
                let o = o.borrow();
                out.push(o.args.clone());
                out.extend(o.state.clone());
            }
            _ => {}
        }
    }

    /// The dict's value under string key `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(d) => d
                .borrow()
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if &**s == key))
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }
}

/// Why unpickling failed (a message; the caller adds the path).
pub type PickleError = String;

/// The value on top of the stack by its type, for error messages ("a list", "None").
fn top_name(v: Option<&Value>) -> String {
    match v.map(Value::type_name) {
        None => "an empty stack".into(),
        Some("None") => "None".into(),
        Some(t) if t.starts_with(['i', 'o']) => format!("an {t}"),
        Some(t) => format!("a {t}"),
    }
}

/// Whether `target` (a container) is reachable from `values`: putting them into it would
/// make it contain itself, a cycle that printing the value would never finish (and that
/// would never be freed). Walked with a stack of its own and each container once.
fn reaches(values: &[Value], target: &Value) -> bool {
    let Some(goal) = target.addr() else {
        return false;
    };
    let mut seen = HashSet::new();
    let mut todo = values.to_vec();
    while let Some(v) = todo.pop() {
        let Some(p) = v.addr() else { continue };
        if p == goal {
            return true;
        }
        if seen.insert(p) {
            v.push_children(&mut todo);
        }
    }
    false
}

/// An error unless `values` can go into `container` without a cycle.
fn refuse_cycle(
    values: &[Value],
    container: &Value,
    op: &str,
    at: usize,
) -> Result<(), PickleError> {
    if reaches(values, container) {
        return Err(format!(
            "{op} at byte {at} would make a {} contain itself",
            container.type_name()
        ));
    }
    Ok(())
}

/// Unpickles `data`, refusing every opcode outside the supported set.
pub fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    Unpickler {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    /// Keyed by the index the pickle gives (any u32, not necessarily dense, as in Python).
    memo: HashMap<usize, Value>,
}

impl Unpickler<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let s = self
            .data
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| format!("truncated pickle at byte {}", self.pos))?;
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let s = self.take(n)?;
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(s);
        Ok(u64::from_le_bytes(b))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack
            .pop()
            .ok_or_else(|| format!("stack underflow at byte {}", self.pos))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| format!("no MARK before byte {}", self.pos))?;
        if m > self.stack.len() {
            return Err(format!("corrupt MARK at byte {}", self.pos));
        }
        Ok(self.stack.split_off(m))
    }

    fn memo_put(&mut self, idx: usize) -> Result<(), PickleError> {
        let top = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| "memoize with an empty stack".to_string())?;
        self.memo.insert(idx, top);
        Ok(())
    }

    fn memo_get(&mut self, idx: usize) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&idx)
            .cloned()
            .ok_or_else(|| format!("memo entry {idx} is not set"))?;
        self.stack.push(v);
        Ok(())
    }

    fn string(&mut self, n: usize) -> Result<(), PickleError> {
        let s =
            std::str::from_utf8(self.take(n)?).map_err(|e| format!("invalid UTF-8 string: {e}"))?;
        let v = Value::Str(Rc::from(s));
        self.stack.push(v);
        Ok(())
    }

    fn call(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        Ok(match &callable {
            Value::Global(m, n)
                if &**m == "collections" && matches!(&**n, "OrderedDict" | "defaultdict") =>
            {
                Value::Dict(Rc::new(RefCell::new(Vec::new())))
            }
            Value::Global(m, n) => Value::Object(Rc::new(RefCell::new(Object {
                class: format!("{m}.{n}"),
                args,
                state: None,
            }))),
            other => return Err(format!("cannot call {}", top_name(Some(other)))),
        })
    }

    fn set_items(&mut self, items: Vec<Value>, at: usize) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".into());
        }
        match self.stack.last() {
            Some(top @ Value::Dict(d)) => {
                refuse_cycle(&items, top, "SETITEMS", at)?;
                let mut d = d.borrow_mut();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            other => Err(format!("SETITEMS on {} at byte {at}", top_name(other))),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.take(1)?[0];
            if op == b'.' {
                return self.pop();
            }
            self.step(op, at)?;
        }
    }

    /// One opcode other than STOP, read at byte `at`.
    fn step(&mut self, op: u8, at: usize) -> Result<(), PickleError> {
        match op {
            0x80 | 0x95 | b'(' | b'N' | 0x88 | 0x89 | b'K' | b'M' | b'J' | 0x8a | b'G' | 0x8c
            | b'X' | 0x8d => self.scalar(op, at),
            b')' | 0x85..=0x87 | b't' | b']' | b'a' | b'e' | b'}' | b's' | b'u' => {
                self.container(op, at)
            }
            0x94 | b'q' | b'r' | b'h' | b'j' | 0x93 | b'R' | 0x81 | b'b' => self.object(op, at),
            other => Err(unsupported(other, at)),
        }
    }

    /// Protocol and framing opcodes, marks, and the scalars: None, booleans, integers,
    /// floats and strings.
    fn scalar(&mut self, op: u8, at: usize) -> Result<(), PickleError> {
        match op {
            0x80 => {
                let proto = self.uint(1)?;
                if !(2..=5).contains(&proto) {
                    return Err(format!("pickle protocol {proto} is not supported"));
                }
            }
            0x95 => {
                self.uint(8)?; // FRAME length: frames are read transparently
            }
            b'(' => self.marks.push(self.stack.len()),
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'K' => {
                let v = self.uint(1)? as i64;
                self.stack.push(Value::Int(v));
            }
            b'M' => {
                let v = self.uint(2)? as i64;
                self.stack.push(Value::Int(v));
            }
            b'J' => {
                let v = self.uint(4)? as u32 as i32 as i64;
                self.stack.push(Value::Int(v));
            }
            0x8a => {
                // LONG1: little-endian two's complement of n <= 8 bytes.
                let n = self.uint(1)? as usize;
                if n > 8 {
                    return Err(format!("LONG1 of {n} bytes does not fit i64"));
                }
                let raw = self.uint(n)?;
                let v = if n == 0 {
                    0
                } else {
                    let shift = 64 - 8 * n as u32;
                    ((raw << shift) as i64) >> shift
                };
                self.stack.push(Value::Int(v));
            }
            b'G' => {
                let s = self.take(8)?;
                let v = f64::from_be_bytes(s.try_into().map_err(|_| "short BINFLOAT")?);
                self.stack.push(Value::Float(v));
            }
            0x8c => {
                let n = self.uint(1)? as usize;
                self.string(n)?;
            }
            b'X' => {
                let n = self.uint(4)? as usize;
                self.string(n)?;
            }
            0x8d => {
                let n = self.uint(8)? as usize;
                self.string(n)?;
            }
            other => return Err(unsupported(other, at)),
        }
        Ok(())
    }

    /// The opcodes that build tuples, lists and dicts.
    fn container(&mut self, op: u8, at: usize) -> Result<(), PickleError> {
        match op {
            b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err(format!("TUPLE{n} on a short stack at byte {at}"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            b']' => self
                .stack
                .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
            b'a' | b'e' => {
                let items = if op == b'a' {
                    vec![self.pop()?]
                } else {
                    self.pop_mark()?
                };
                match self.stack.last() {
                    Some(top @ Value::List(l)) => {
                        refuse_cycle(&items, top, "APPEND", at)?;
                        l.borrow_mut().extend(items)
                    }
                    other => return Err(format!("APPEND on {} at byte {at}", top_name(other))),
                }
            }
            b'}' => self
                .stack
                .push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v], at)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items, at)?;
            }
            other => return Err(unsupported(other, at)),
        }
        Ok(())
    }

    /// The memo, globals (as names, never imported), calls and BUILD.
    fn object(&mut self, op: u8, at: usize) -> Result<(), PickleError> {
        match op {
            0x94 => {
                let idx = self.memo.len();
                self.memo_put(idx)?;
            }
            b'q' => {
                let i = self.uint(1)? as usize;
                self.memo_put(i)?;
            }
            b'r' => {
                let i = self.uint(4)? as usize;
                self.memo_put(i)?;
            }
            b'h' => {
                let i = self.uint(1)? as usize;
                self.memo_get(i)?;
            }
            b'j' => {
                let i = self.uint(4)? as usize;
                self.memo_get(i)?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                    _ => return Err(format!("STACK_GLOBAL without strings at byte {at}")),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = self.call(callable, args)?;
                self.stack.push(v);
            }
            b'b' => {
                let state = self.pop()?;
                match self.stack.last() {
                    Some(top @ Value::Object(o)) => {
                        refuse_cycle(std::slice::from_ref(&state), top, "BUILD", at)?;
                        o.borrow_mut().state = Some(state)
                    }
                    other => return Err(format!("BUILD on {} at byte {at}", top_name(other))),
                }
            }
            other => return Err(unsupported(other, at)),
        }
        Ok(())
    }
}

/// The error of an opcode this unpickler does not run.
fn unsupported(op: u8, at: usize) -> PickleError {
    format!("opcode {op:#04x} at byte {at} is not supported by this restricted unpickler")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_object_with_a_state_dict() {
        // pickle.dumps(T(), protocol=4) shape, by hand: PROTO 4, 'm' 'T' STACK_GLOBAL,
        // EMPTY_TUPLE NEWOBJ, EMPTY_DICT MARK 'a' K(7) 'b' NEWTRUE SETITEMS BUILD STOP.
        let mut p = vec![
            0x80, 4, 0x8c, 1, b'm', 0x94, 0x8c, 1, b'T', 0x94, 0x93, 0x94,
        ];
        p.extend([
            b')', 0x81, 0x94, b'}', 0x94, b'(', 0x8c, 1, b'a', 0x94, b'K', 7,
        ]);
        p.extend([0x8c, 1, b'b', 0x94, 0x88, b'u', b'b', b'.']);
        let v = unpickle(&p).unwrap();
        let Value::Object(o) = v else { panic!("{v:?}") };
        let o = o.borrow();
        assert_eq!(o.class, "m.T");
        let state = o.state.clone().unwrap();
        assert!(matches!(state.get("a"), Some(Value::Int(7))));
        assert!(matches!(state.get("b"), Some(Value::Bool(true))));
    }

    #[test]
    fn a_huge_memo_index_is_stored_without_allocating_up_to_it() {
        // Found by `fuzz/fuzz_targets/pickle.rs`: a LONG_BINPUT index near 2^30 grew the memo
        // (a vector) to 27 GB. Python keys its memo by index; so does this unpickler now.
        let input = include_bytes!("../tests/fixtures/fuzz/pickle-huge-memo-index");
        if let Err(e) = unpickle(input) {
            assert!(!e.contains('\n'), "{e}");
        }
        // PROTO 4, None, LONG_BINPUT 2^32-1, LONG_BINGET 2^32-1, TUPLE2, STOP.
        let p = [
            0x80, 4, b'N', b'r', 255, 255, 255, 255, b'j', 255, 255, 255, 255, 0x86, b'.',
        ];
        let Ok(Value::Tuple(t)) = unpickle(&p) else {
            panic!("{:?}", unpickle(&p))
        };
        assert!(matches!(t[..], [Value::None, Value::None]));
    }

    #[test]
    fn a_container_that_would_contain_itself_is_refused() {
        // Found by `fuzz/fuzz_targets/pickle.rs` (a stack overflow): a list memoized, fetched
        // back and appended to itself, then printed in the error of a later opcode.
        // PROTO 4, EMPTY_LIST, MEMOIZE, BINGET 0, APPEND, None, None, SETITEM.
        let p = [0x80, 4, b']', 0x94, b'h', 0, b'a', b'N', b'N', b's', b'.'];
        assert_eq!(
            unpickle(&p).unwrap_err(),
            "APPEND at byte 6 would make a list contain itself"
        );
        // The same list inside a tuple, one level down.
        let p = [0x80, 4, b']', 0x94, b'h', 0, 0x85, b'a', b'.'];
        assert_eq!(
            unpickle(&p).unwrap_err(),
            "APPEND at byte 7 would make a list contain itself"
        );
        // Errors name the type on the stack, not its contents.
        let p = [0x80, 4, b']', b'N', b'N', b's', b'.'];
        assert_eq!(unpickle(&p).unwrap_err(), "SETITEMS on a list at byte 5");
    }

    #[test]
    fn code_running_opcodes_and_truncation_are_refused() {
        // INST (b'i') would import and call; it is not supported.
        let e = unpickle(&[0x80, 4, b'i']).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = unpickle(&[0x80, 4, 0x8c, 9, b'a']).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
}
