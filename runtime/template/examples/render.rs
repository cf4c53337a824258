//! Renders a template file against a JSON object of string values, like ESO would:
//! `cargo run -p esox-template --example render -- template.tmpl data.json`.
//! Used to diff esox against Go's text/template + Sprig when building test tables.

use std::collections::BTreeMap;
use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(tpl_path) = args.get(1) else {
        eprintln!("usage: render <template-file> [data-json-file]");
        std::process::exit(2);
    };
    let src = std::fs::read_to_string(tpl_path).unwrap_or_default();
    let data: BTreeMap<String, String> = args
        .get(2)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let data = data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    let mut out = std::io::stdout();
    let result = match esox_template::Template::parse("t", &src) {
        Err(e) => format!("PARSE-ERR: {e}").into_bytes(),
        Ok(_) => match esox_template::render_bytes("t", &src, &data) {
            Ok(b) => b,
            Err(e) => format!("EXEC-ERR: {e}").into_bytes(),
        },
    };
    let _ = out.write_all(&result);
}
