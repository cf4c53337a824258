//! Robustness: 20,000 pseudo-random templates (deterministic seed, so failures reproduce)
//! built from template syntax fragments, function names and junk. Parsing and executing them must
//! never panic or overflow the stack, and every error must be a well-formed `TemplateError`.
//! The coverage-guided version of this is the cargo-fuzz target in `fuzz/` (see docs/templates.md).

use std::collections::BTreeMap;

use esox_template::{Template, Value};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{ ",
    " }}",
    "{{/* c */}}",
    "text ",
    "\n",
    " ",
    "|",
    " | ",
    "(",
    ")",
    ".",
    ".a",
    ".b.c",
    ".missing",
    "$",
    "$x",
    "$x := ",
    "$x = ",
    "$i, $v := ",
    "$.a",
    ",",
    "if ",
    "else ",
    "else if ",
    "end",
    "range ",
    "with ",
    "define \"d\"",
    "template \"d\" .",
    "block \"b\" .",
    "break",
    "continue",
    "nil",
    "true",
    "false",
    "1",
    "-2",
    "3.5",
    "1e3",
    "0x1f",
    "'a'",
    "\"str\"",
    "\"a,b\"",
    "`raw`",
    "\"\\x41\"",
    "\"unterminated",
    ":=",
    "=",
    "-",
    "{{{",
    "}}}",
    "\u{e9}",
    "\0",
    "\\",
    "\"%d %s %v %q %x %05.2f\"",
    // Extremes: huge counts, widths and precisions, boundary integers.
    "99999",
    "-99999",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "-1e-308",
    "\"%.70000f\"",
    "\"%99999d\"",
    "\"%*.*e\"",
    "\"%!%\"",
];

fn random_template(rng: &mut XorShift, funcs: &[&str]) -> String {
    let mut s = String::new();
    let n = 1 + rng.below(40);
    for _ in 0..n {
        match rng.below(10) {
            0..=5 => s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]),
            6 | 7 => {
                s.push(' ');
                s.push_str(funcs[rng.below(funcs.len())]);
                s.push(' ');
            }
            8 => s.push_str(&rng.below(8).to_string()),
            _ => s.push(char::from(b' ' + rng.below(95) as u8)),
        }
    }
    s
}

fn data() -> Value {
    let mut inner = BTreeMap::new();
    inner.insert("c".to_string(), Value::str("deep"));
    let mut m = BTreeMap::new();
    m.insert("a".to_string(), Value::str("{\"k\": [1, 2]}"));
    m.insert("b".to_string(), Value::Map(inner));
    m.insert(
        "list".to_string(),
        Value::List(vec![Value::Int(1), Value::str("x"), Value::Nil]),
    );
    m.insert("bin".to_string(), Value::Str(vec![0xff, 0x00, 0xfe]));
    Value::Map(m)
}

#[test]
fn random_templates_never_panic_and_errors_are_well_formed() {
    // Functions that only burn time or randomness add no coverage here.
    let funcs: Vec<&str> = esox_template::function_names()
        .into_iter()
        .filter(|f| {
            !matches!(
                *f,
                "randBytes" | "randAscii" | "randAlpha" | "randAlphaNum" | "randNumeric"
            )
        })
        .collect();
    let data = data();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut parsed, mut executed) = (0, 0);
    for _ in 0..20_000 {
        let src = random_template(&mut rng, &funcs);
        match Template::parse("fuzz", &src) {
            Ok(t) => {
                parsed += 1;
                match t.execute(&data) {
                    Ok(_) => executed += 1,
                    Err(e) => assert!(e.to_string().starts_with("template: fuzz:"), "{src:?}: {e}"),
                }
            }
            Err(e) => assert!(e.to_string().starts_with("template: fuzz:"), "{src:?}: {e}"),
        }
    }
    // The generator must exercise execution, not only the parser's error paths.
    assert!(
        parsed > 2000,
        "only {parsed} of 20000 random templates parsed"
    );
    assert!(
        executed > 1000,
        "only {executed} of 20000 random templates executed"
    );
}

#[test]
fn random_bytes_as_templates_never_panic() {
    let mut rng = XorShift(42);
    for _ in 0..3000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        let src = String::from_utf8_lossy(&bytes);
        if let Ok(t) = Template::parse("fuzz", &src) {
            let _ = t.execute(&Value::Nil);
        }
    }
}
