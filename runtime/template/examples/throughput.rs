//! Measures parse and render cost of a typical ESO template (docker config JSON built from
//! three secret values plus a YAML config): `cargo run --release -p esox-template --example throughput`.

use std::collections::BTreeMap;
use std::time::Instant;

const SRC: &str = r#"{"auths":{"{{ .registry }}":{"auth":"{{ printf "%s:%s" .username .password | b64enc }}"}}}
{{- $cfg := .config | fromJson }}
{{ $cfg | toYaml }}
{{- range $k, $v := . }}
{{ $k | upper }}={{ $v | sha256sum | trunc 8 }}
{{- end }}"#;

fn main() {
    let mut data = BTreeMap::new();
    data.insert("registry".to_string(), b"ghcr.io".to_vec());
    data.insert("username".to_string(), b"robot".to_vec());
    data.insert(
        "password".to_string(),
        b"correct horse battery staple".to_vec(),
    );
    data.insert(
        "config".to_string(),
        br#"{"db":{"host":"db","port":5432},"flags":["a","b"]}"#.to_vec(),
    );
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(esox_template::Template::parse("t", SRC).ok());
    }
    let parse = t.elapsed() / n;
    let tpl = esox_template::Template::parse("t", SRC).unwrap_or_else(|e| panic!("{e}"));
    let value = esox_template::Value::Map(
        data.iter()
            .map(|(k, v)| (k.clone(), esox_template::Value::Str(v.clone())))
            .collect(),
    );
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(tpl.execute(&value).ok());
    }
    let exec = t.elapsed() / n;
    println!("parse: {parse:?}/template, execute: {exec:?}/render ({n} iterations)");
}
