//! Behaviour that is not just "same bytes as Go": error messages (which must locate the problem
//! and never echo secret values), byte-exact binary pass-through, delimiters, transforms.

use std::collections::BTreeMap;

use esox_template::{Template, Value, render_bytes, render_transform};

fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

fn err_of(src: &str, pairs: &[(&str, &[u8])]) -> String {
    match render_bytes("t", src, &data(pairs)) {
        Ok(out) => panic!(
            "expected an error for {src:?}, got {:?}",
            String::from_utf8_lossy(&out)
        ),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_function_is_a_parse_error_naming_it() {
    let e = Template::parse("t", "ok {{ frobnicate .x }}").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"template: t:1:6: function "frobnicate" not defined"#
    );
}

#[test]
fn unsupported_sprig_function_is_a_parse_error_saying_why() {
    let e = Template::parse("t", "{{ genCA \"x\" 365 }}")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(r#"template: t:1:3: function "genCA" is not supported by esox"#),
        "{e}"
    );
    let e = Template::parse("t", "{{ env \"HOME\" }}")
        .unwrap_err()
        .to_string();
    assert!(e.contains(r#"function "env" is not supported"#), "{e}");
}

#[test]
fn missing_key_errors_like_go_with_line_and_column() {
    assert_eq!(
        err_of("line one\n  {{ .missing }}", &[("present", b"v")]),
        r#"template: t:2:5: executing "t" at <.missing>: map has no entry for key "missing""#
    );
}

#[test]
fn parse_errors_carry_line_and_column() {
    let e = Template::parse("tpl", "a\nb {{ if .x }}").unwrap_err();
    assert_eq!((e.name(), e.line(), e.column()), ("tpl", 2, 13));
    assert_eq!(e.to_string(), "template: tpl:2:13: unexpected EOF");
}

#[test]
fn function_errors_name_the_call_but_not_the_secret_value() {
    let secret: &[u8] = b"{hunter2-not-json";
    let e = err_of("{{ .s | mustFromJson }}", &[("s", secret)]);
    assert!(
        e.starts_with(
            r#"template: t:1:8: executing "t" at <mustFromJson>: error calling mustFromJson: "#
        ),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "error leaks the value: {e}");

    let e = err_of("{{ eq .s 1 }}", &[("s", b"hunter2")]);
    assert!(
        e.contains("incompatible types for comparison: string and int"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "error leaks the value: {e}");

    let e = err_of("{{ range .s }}{{ end }}", &[("s", b"hunter2")]);
    assert!(!e.contains("hunter2"), "error leaks the value: {e}");

    let e = err_of(r#"{{ mustToDate "2006-01-02" .s }}"#, &[("s", b"hunter2")]);
    assert!(!e.contains("hunter2"), "error leaks the value: {e}");
}

#[test]
fn fail_reports_the_template_authors_message() {
    assert_eq!(
        err_of(r#"{{ fail "password is required" }}"#, &[]),
        r#"template: t:1:3: executing "t" at <fail "password is required">: error calling fail: password is required"#
    );
}

#[test]
fn binary_values_pass_through_untouched() {
    let raw: &[u8] = &[0x30, 0x82, 0xff, 0x00, 0xfe, 0x80, b'\n'];
    let d = data(&[("ks", raw)]);
    assert_eq!(render_bytes("t", "{{ .ks }}", &d).unwrap(), raw);
    assert_eq!(render_bytes("t", "{{ .ks | toString }}", &d).unwrap(), raw);
    assert_eq!(
        render_bytes("t", "{{ .ks | b64enc }}", &d).unwrap(),
        b"MIL/AP6ACg=="
    );
    assert_eq!(
        render_bytes("t", "{{ .ks | b64enc | b64dec }}", &d).unwrap(),
        raw
    );
    assert_eq!(
        render_bytes("t", "{{ printf \"%s\" .ks }}", &d).unwrap(),
        raw
    );
    assert_eq!(render_bytes("t", "{{ len .ks }}", &d).unwrap(), b"7");
}

#[test]
fn custom_delimiters_leave_default_braces_as_text() {
    let t = Template::parse_with_delims("t", "<< .a >> and {{ .a }}", "<<", ">>").unwrap();
    let mut m = BTreeMap::new();
    m.insert("a".to_string(), Value::str("x"));
    assert_eq!(t.execute(&Value::Map(m)).unwrap(), b"x and {{ .a }}");
}

#[test]
fn transform_sees_the_key_as_value() {
    assert_eq!(
        render_transform("{{ .value | upper | replace \"-\" \"_\" }}", "db-password").unwrap(),
        "DB_PASSWORD"
    );
    assert_eq!(
        render_transform(r#"{{ regexReplaceAll "^app/" .value "" }}"#, "app/token").unwrap(),
        "token"
    );
}

#[test]
fn execute_takes_any_value_tree() {
    let t = Template::parse("t", "{{ range .items }}{{ .name }}={{ .n }};{{ end }}").unwrap();
    let item = |name: &str, n: i64| {
        let mut m = BTreeMap::new();
        m.insert("name".to_string(), Value::str(name));
        m.insert("n".to_string(), Value::Int(n));
        Value::Map(m)
    };
    let mut root = BTreeMap::new();
    root.insert(
        "items".to_string(),
        Value::List(vec![item("a", 1), item("b", 2)]),
    );
    assert_eq!(t.execute(&Value::Map(root)).unwrap(), b"a=1;b=2;");
}

#[test]
fn template_recursion_is_bounded_instead_of_overflowing_the_stack() {
    let e = err_of(
        r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
        &[],
    );
    assert!(e.contains("exceeded maximum template depth"), "{e}");
}

#[test]
fn index_of_missing_secret_key_is_empty_like_go_map_of_strings() {
    let d = data(&[("a", b"1")]);
    assert_eq!(
        render_bytes("t", r#"[{{ index . "nope" }}]"#, &d).unwrap(),
        b"[]"
    );
}

#[test]
fn set_on_a_variable_updates_that_variable_like_go() {
    let out = render_bytes(
        "t",
        r#"{{ $d := dict }}{{ $_ := set $d "k" "v" }}{{ $d.k }}"#,
        &data(&[]),
    )
    .unwrap();
    assert_eq!(out, b"v");
}

#[test]
fn deeply_nested_templates_fail_cleanly_instead_of_overflowing_the_stack() {
    // 90 nested ifs inside a template that calls itself: far deeper than any real template.
    let mut body = String::new();
    for _ in 0..90 {
        body.push_str("{{ if true }}");
    }
    body.push_str(r#"{{ template "r" . }}"#);
    for _ in 0..90 {
        body.push_str("{{ end }}");
    }
    let src = format!(r#"{{{{ define "r" }}}}{body}{{{{ end }}}}{{{{ template "r" . }}}}"#);
    let e = err_of(&src, &[]);
    assert!(e.contains("exceeded maximum nesting depth"), "{e}");

    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(150), ")".repeat(150));
    let e = Template::parse("t", &parens).unwrap_err().to_string();
    assert!(e.contains("nested too deeply"), "{e}");
}

/// A leaf certificate (issued by an intermediate under a root) and its EC key, generated for
/// these tests. Go decodes what esox encodes and vice versa (checked when the tables were built).
const LEAF: &str = r"-----BEGIN CERTIFICATE-----
MIIB2jCCAX+gAwIBAgICA+wwCgYIKoZIzj0EAwIwEDEOMAwGA1UEAwwFaW50ZXIw
HhcNMjUwMTAxMDAwMDAwWhcNMzUwMTAxMDAwMDAwWjAPMQ0wCwYDVQQDDARsZWFm
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1QDGGOB0bQnETdSpQZ2TuipFP1bz
+ZFXPSV2i4SYlmXf4b4hcViauMbwxi8k2+KQpXyYk82iBJz+eCk8+D4IMaOByTCB
xjAMBgNVHRMBAf8EAjAAMB0GA1UdDgQWBBTBzZW8JxvGMXGKK7OZjABpfHDbWzAf
BgNVHSMEGDAWgBTt0GLD/AvAt0HveCzKCW7TuQkpYDB2BgNVHREEbzBtggtleGFt
cGxlLmNvbYINKi5leGFtcGxlLmNvbYcECgECA4cQIAENuAAAAAAAAAAAAAAAAYEP
b3BzQGV4YW1wbGUuY29thiZzcGlmZmU6Ly9leGFtcGxlLmNvbS9ucy9kZWZhdWx0
L3NhL2FwcDAKBggqhkjOPQQDAgNJADBGAiEAlABexP67XHe2PHNpJ4hipIugkW4V
WQO14WYb+h3gYRgCIQDCmsQuUVhhW/j2ZK6TPe2rnoh9z6xtEtmZbl0otauWVQ==
-----END CERTIFICATE-----
";
const LEAF_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFxm67eP+gSpkyKus
XTAqAQkghROmHxLe3ldIf2S96VKhRANCAATVAMYY4HRtCcRN1KlBnZO6KkU/VvP5
kVc9JXaLhJiWZd/hviFxWJq4xvDGLyTb4pClfJiTzaIEnP54KTz4Pggx
-----END PRIVATE KEY-----
";
const CHAIN: &str = r"-----BEGIN CERTIFICATE-----
MIIBYzCCAQigAwIBAgICA+0wCgYIKoZIzj0EAwIwDzENMAsGA1UEAwwEcm9vdDAe
Fw0yNTAxMDEwMDAwMDBaFw0zNTAxMDEwMDAwMDBaMBAxDjAMBgNVBAMMBWludGVy
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5THWOYrDrWgRAkOlXiOOv4WhmjGr
s/bEWlwh2fTm/LbkZEIRHCbWTXPmghkZrVplNlWxak8oD5EUxzkrKek8qqNTMFEw
DwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQU7dBiw/wLwLdB73gsyglu07kJKWAw
HwYDVR0jBBgwFoAUTyLKDjIrdVqm3FGMJotKeBn2IeEwCgYIKoZIzj0EAwIDSQAw
RgIhANGxNm8mvd1GBefw3ViHeFBXQzdgSlWHBGumF4JlwZINAiEA1U6H+IfbcUGz
cMqXbQGjQewNR2pPfeAvjSk4oPGoQh0=
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBYTCCAQegAwIBAgICA+wwCgYIKoZIzj0EAwIwDzENMAsGA1UEAwwEcm9vdDAe
Fw0yNTAxMDEwMDAwMDBaFw0zNTAxMDEwMDAwMDBaMA8xDTALBgNVBAMMBHJvb3Qw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAR6X7v+3O0kBB9Qo7ZoAyYgvlL5NpCt
XyGfXB3RE3t4PxdE3kMSYt0A5iff47/zIJ0h4rnh5Od1T8z+bl6WTCkFo1MwUTAP
BgNVHRMBAf8EBTADAQH/MB0GA1UdDgQWBBRPIsoOMit1WqbcUYwmi0p4GfYh4TAf
BgNVHSMEGDAWgBRPIsoOMit1WqbcUYwmi0p4GfYh4TAKBggqhkjOPQQDAgNIADBF
AiEAvcdpNpnIlRcBSD1jxQ0X4kRwkVkZhuzglRDlGTX8Fs8CIEs39UfxUUaABVPZ
wDdzabqSHNi/Axoh3Cao7XR9RXlD
-----END CERTIFICATE-----
";

#[test]
fn pem_to_pkcs12_round_trips_through_pkcs12key_and_pkcs12cert() {
    let d = data(&[
        ("leaf", LEAF.as_bytes()),
        ("key", LEAF_KEY.as_bytes()),
        ("chain", CHAIN.as_bytes()),
    ]);
    let pfx = render_bytes("t", "{{ pemToPkcs12 .leaf .key }}", &d).unwrap();
    let mut with_pfx = d.clone();
    with_pfx.insert("p".to_string(), pfx.clone());
    assert_eq!(
        render_bytes("t", "{{ .p | b64dec | pkcs12key }}", &with_pfx).unwrap(),
        LEAF_KEY.as_bytes()
    );
    assert_eq!(
        render_bytes("t", "{{ .p | b64dec | pkcs12cert }}", &with_pfx).unwrap(),
        LEAF.as_bytes()
    );
    // Salted like Go's encoder: two renders differ.
    assert_ne!(
        render_bytes("t", "{{ pemToPkcs12 .leaf .key }}", &d).unwrap(),
        pfx
    );

    let full = render_bytes(
        "t",
        r#"{{ fullPemToPkcs12Pass (print .leaf .chain) .key "pw" }}"#,
        &d,
    )
    .unwrap();
    with_pfx.insert("p".to_string(), full);
    let certs = render_bytes("t", r#"{{ .p | b64dec | pkcs12certPass "pw" }}"#, &with_pfx).unwrap();
    assert_eq!(certs, format!("{LEAF}{CHAIN}").as_bytes());
    let e = render_bytes(
        "t",
        r#"{{ .p | b64dec | pkcs12certPass "wrong" }}"#,
        &with_pfx,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("pkcs12: decryption password incorrect"),
        "{e}"
    );
}

#[test]
fn pem_truststore_to_pkcs12_produces_a_keyless_archive() {
    let d = data(&[("chain", CHAIN.as_bytes())]);
    let mut with_pfx = d.clone();
    with_pfx.insert(
        "p".to_string(),
        render_bytes("t", "{{ pemTruststoreToPKCS12 .chain }}", &d).unwrap(),
    );
    let e = render_bytes("t", "{{ .p | b64dec | pkcs12cert }}", &with_pfx).unwrap_err();
    assert!(
        e.to_string().ends_with("pkcs12: private key missing"),
        "{e}"
    );
}

#[test]
fn parsed_templates_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<Value>();
    assert_send_sync::<esox_template::TemplateError>();
}

/// ESO's literal-template example builds an htpasswd file; ESO's Sprig takes the hash as a
/// third argument. bcrypt output is salted (random), so it is checked by verification; Go's
/// `bcrypt.CompareHashAndPassword` accepted esox's hashes when this was written.
#[test]
fn htpasswd_and_bcrypt_follow_esos_sprig() {
    let d = data(&[("alice", b"a1"), ("bob", b"b2")]);
    let src = r#"{{- $creds := list }}{{- range $user, $pw := . }}{{- $creds = append $creds (htpasswd $user $pw "sha") }}{{- end }}auth: {{ $creds | join "\n" | quote }}"#;
    assert_eq!(
        render_bytes("t", src, &d).unwrap(),
        br#"auth: "alice:{SHA}8pvJG72rFp/AwKMmlllT0Rx9/4M=\nbob:{SHA}MvKOoDsbIBJmKdLKY/xmZbC7tgQ=""#
    );
    assert_eq!(
        render_bytes("t", r#"{{ htpasswd "a:b" "pw" "bcrypt" }}"#, &d).unwrap(),
        b"invalid username: a:b"
    );

    let line = render_bytes("t", r#"{{ htpasswd "alice" "s3cret" "bcrypt" }}"#, &d).unwrap();
    let line = String::from_utf8(line).unwrap();
    let hash = line.strip_prefix("alice:").unwrap();
    assert!(hash.starts_with("$2a$10$") && hash.len() == 60, "{hash}");
    assert!(bcrypt::verify("s3cret", hash).unwrap());
    assert!(!bcrypt::verify("other", hash).unwrap());
}

#[test]
fn render_bytes_with_delims_uses_the_given_delimiters() {
    let d = data(&[("user", b"bob")]);
    let out = esox_template::render_bytes_with_delims(
        "t",
        "[[ .user | upper ]] {{ .user }}",
        "[[",
        "]]",
        &d,
    )
    .unwrap();
    assert_eq!(out, b"BOB {{ .user }}");
}

/// Go formats any width and precision up to about 10^7; Rust's own formatter would panic above
/// 65535, so esox must not hand them to it.
#[test]
fn huge_printf_widths_and_precisions_render_like_go_instead_of_panicking() {
    let d = data(&[]);
    // 2 MB is over the default 1 MiB output limit: raise it to see Go's rendering...
    let roomy = esox_template::Limits {
        max_output_bytes: 4 << 20,
        ..esox_template::Limits::default()
    };
    let wide = esox_template::render_bytes_with_limits(
        "t",
        r#"{{ printf "%2000000d" 1 }}"#,
        "{{",
        "}}",
        &d,
        &roomy,
    )
    .unwrap();
    assert_eq!(wide.len(), 2_000_000);
    assert!(wide.ends_with(b" 1"));
    // ...which the default limits refuse.
    let e = render_bytes("t", r#"{{ printf "%2000000d" 1 }}"#, &d).unwrap_err();
    assert_eq!(e.limit(), Some(esox_template::LimitKind::Output), "{e}");
    let precise = render_bytes(
        "t",
        r#"{{ printf "%.70000f|%.70000e|%.70000g" 1.5 1.5 1.5 }}"#,
        &d,
    )
    .unwrap();
    let text = String::from_utf8(precise).unwrap();
    let parts: Vec<&str> = text.split('|').collect();
    assert_eq!(parts[0].len(), 2 + 70_000);
    assert!(parts[0].starts_with("1.5000"));
    assert!(parts[1].starts_with("1.5000") && parts[1].ends_with("e+00"));
    assert_eq!(parts[2], "1.5");
    assert_eq!(
        render_bytes("t", r#"{{ printf "%99999999d|" 1 }}"#, &d).unwrap(),
        b"%!(NOVERB)%!(EXTRA int=1)"
    );
}

#[test]
fn resource_hungry_calls_fail_instead_of_exhausting_the_controller() {
    let d = data(&[]);
    for src in [
        "{{ range 100000000000 }}{{ end }}",
        "{{ until 100000000000 | len }}",
        r#"{{ repeat 100000000 "xxxxxxxxxx" }}"#,
        r#"{{ indent 100000000000 "x" }}"#,
        "{{ randAlphaNum 100000000000 }}",
        r#"{{ dateModify "2562047h" now }}{{ mustDateModify "99999999999h" now }}"#,
    ] {
        assert!(render_bytes("t", src, &d).is_err(), "{src} should fail");
    }
}
