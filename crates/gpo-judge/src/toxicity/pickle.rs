//! A restricted unpickler: the opcodes of pickle protocols 2-5 that a pickled Keras
//! `Tokenizer` uses, and nothing that runs code.
//!
//! Globals are never imported: `GLOBAL`/`STACK_GLOBAL` give a [`Value::Global`] name, calls
//! (`REDUCE`, `NEWOBJ`) give a [`Value::Object`] holding the name and arguments, and `BUILD`
//! stores the state dict into it. `collections.OrderedDict()` and
//! `collections.defaultdict(...)` become plain dicts, since that is all a reader needs.
//! Opcode meanings follow CPython's `Lib/pickletools.py`.

use std::cell::RefCell;
use std::collections::HashMap;
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
            other => return Err(format!("cannot call {other:?}")),
        })
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if items.len() % 2 != 0 {
            return Err("SETITEMS with an odd number of values".into());
        }
        match self.stack.last() {
            Some(Value::Dict(d)) => {
                let mut d = d.borrow_mut();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            other => Err(format!("SETITEMS on {other:?}")),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.take(1)?[0];
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
                b'.' => return self.pop(),
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
                b']' => self.stack.push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'a' | b'e' => {
                    let items = if op == b'a' {
                        vec![self.pop()?]
                    } else {
                        self.pop_mark()?
                    };
                    match self.stack.last() {
                        Some(Value::List(l)) => l.borrow_mut().extend(items),
                        other => return Err(format!("APPEND on {other:?}")),
                    }
                }
                b'}' => self.stack.push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
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
                        Some(Value::Object(o)) => o.borrow_mut().state = Some(state),
                        other => return Err(format!("BUILD on {other:?}")),
                    }
                }
                other => {
                    return Err(format!(
                        "opcode {other:#04x} at byte {at} is not supported by this restricted unpickler"
                    ))
                }
            }
        }
    }
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
        let input = include_bytes!("../../tests/fixtures/fuzz/pickle-huge-memo-index");
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
    fn code_running_opcodes_and_truncation_are_refused() {
        // INST (b'i') would import and call; it is not supported.
        let e = unpickle(&[0x80, 4, b'i']).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = unpickle(&[0x80, 4, 0x8c, 9, b'a']).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
}
