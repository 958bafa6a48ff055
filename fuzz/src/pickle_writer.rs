//! Writes a pickled Keras `Tokenizer` the way Python's `pickle.dumps(tok, protocol=4)`
//! lays one out (one frame, memoized globals and containers, `OrderedDict` and
//! `defaultdict` built by `REDUCE`), small enough for a seed.

/// Opcodes used (CPython's `Lib/pickletools.py`).
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const SHORT_BINUNICODE: u8 = 0x8c;
const MEMOIZE: u8 = 0x94;
const STACK_GLOBAL: u8 = 0x93;
const NEWOBJ: u8 = 0x81;
const TUPLE1: u8 = 0x85;
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const LONG1: u8 = 0x8a;

struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(SHORT_BINUNICODE);
        self.0.push(s.len() as u8);
        self.0.extend(s.as_bytes());
        self.op(MEMOIZE)
    }

    fn int(&mut self, n: u8) -> &mut Self {
        self.0.extend([b'K', n]);
        self
    }

    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.str(module).str(name).op(STACK_GLOBAL).op(MEMOIZE)
    }

    /// MARK key value ... SETITEMS on the dict on the stack.
    fn items(&mut self, items: impl IntoIterator<Item = (String, u8)>, keys_first: bool) {
        self.op(b'(');
        for (word, n) in items {
            if keys_first {
                self.str(&word).int(n);
            } else {
                self.int(n).str(&word);
            }
        }
        self.op(b'u');
    }
}

/// A pickled `keras.src.legacy.preprocessing.text.Tokenizer` over `words` (ids from 1).
pub fn keras_tokenizer(words: &[&str]) -> Vec<u8> {
    let indexed = || {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as u8 + 1))
    };
    let mut p = Pickle(Vec::new());
    p.global("keras.src.legacy.preprocessing.text", "Tokenizer");
    p.op(b')')
        .op(NEWOBJ)
        .op(MEMOIZE)
        .op(b'}')
        .op(MEMOIZE)
        .op(b'(');
    p.str("word_counts").global("collections", "OrderedDict");
    p.op(b')').op(b'R').op(MEMOIZE);
    p.items(indexed(), true);
    p.str("filters")
        .str("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n");
    p.str("split").str(" ");
    p.str("lower").op(NEWTRUE);
    p.str("num_words").int(20);
    p.str("document_count").0.extend([LONG1, 2, 0x10, 0x27]);
    p.str("char_level").op(NEWFALSE);
    p.str("oov_token").op(b'N');
    p.str("index_docs").global("collections", "defaultdict");
    p.global("builtins", "int").op(TUPLE1).op(b'R').op(MEMOIZE);
    p.items(indexed(), false);
    p.str("word_index").op(b'}').op(MEMOIZE);
    p.items(indexed(), true);
    p.op(b'u').op(b'b').op(b'.');
    let mut out = vec![PROTO, 4, FRAME];
    out.extend((p.0.len() as u64).to_le_bytes());
    out.extend(p.0);
    out
}
