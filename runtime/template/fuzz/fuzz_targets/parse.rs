//! Fuzzes the parser with arbitrary template source, then executes whatever parses against a
//! small fixed data set. Any panic, stack overflow or hang is a bug.
#![no_main]

use std::collections::BTreeMap;

use esox_template::{Template, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    if let Ok(t) = Template::parse("fuzz", &src) {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), Value::str("{\"k\": [1, 2]}"));
        m.insert("bin".to_string(), Value::Str(vec![0xff, 0x00]));
        let _ = t.execute(&Value::Map(m));
    }
});
