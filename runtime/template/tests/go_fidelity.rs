//! Output fidelity against Go: every expected value below was produced by Go 1.26's
//! text/template with Sprig v3 and ESO's functions (missingkey=error) for the same template and
//! data, and is written here literally so the tests need no Go at run time.
//!
//! Tables: `ENGINE` (text/template syntax and built-ins), `SPRIG` (Sprig functions) and
//! `ESO_EXAMPLES` (templates from ESO's documentation and its template tests).

use std::collections::BTreeMap;

struct Case {
    src: &'static str,
    data: &'static [(&'static str, &'static str)],
    want: &'static [u8],
}

fn check(table: &[Case]) {
    let mut failures = Vec::new();
    for case in table {
        let data: BTreeMap<String, Vec<u8>> = case
            .data
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        match esox_template::render_bytes("t", case.src, &data) {
            Ok(got) if got == case.want => {}
            Ok(got) => failures.push(format!(
                "{:?}\n   want {:?}\n    got {:?}",
                case.src,
                String::from_utf8_lossy(case.want),
                String::from_utf8_lossy(&got)
            )),
            Err(e) => failures.push(format!(
                "{:?}\n   want {:?}\n    err {e}",
                case.src,
                String::from_utf8_lossy(case.want)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Go:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

#[test]
fn engine_syntax_and_builtins_render_like_go() {
    check(ENGINE);
}

#[test]
fn sprig_functions_render_like_go() {
    check(SPRIG);
}

#[test]
fn eso_documented_templates_render_like_go() {
    check(ESO_EXAMPLES);
}

const SHARED: &[(&str, &str)] = &[
    ("a", "hello"),
    ("b", "World"),
    ("b64", "aGVsbG8="),
    ("bin", "ÿþ"),
    (
        "json",
        "{\"x\":1,\"y\":[1,2,\"z\"],\"s\":\"v<>&\",\"f\":1.5,\"big\":1e21,\"neg\":-0.000001,\"n\":null,\"t\":true}",
    ),
    ("multi", "line1\nline2\n"),
    ("n", "42"),
    ("sp", "  pad  "),
    ("tls.crt", "CERT"),
    (
        "yaml",
        "a: 1\nb:\n  - x\n  - y\nc: \"str\"\nd: 1.5\ne: true\nf: null\n",
    ),
];

const ENGINE: &[Case] = &[
    Case {
        src: "{{ .a }}",
        data: SHARED,
        want: b"hello",
    },
    Case {
        src: "{{.a}} {{ .b }}",
        data: SHARED,
        want: b"hello World",
    },
    Case {
        src: "a {{- .a -}} b",
        data: SHARED,
        want: b"ahellob",
    },
    Case {
        src: "a  {{- .a }}  b",
        data: SHARED,
        want: b"ahello  b",
    },
    Case {
        src: "x\n  {{- .a -}}\n  y",
        data: SHARED,
        want: b"xhelloy",
    },
    Case {
        src: "{{ index . \"tls.crt\" }}",
        data: SHARED,
        want: b"CERT",
    },
    Case {
        src: "{{ index . \"nope\" }}",
        data: SHARED,
        want: b"",
    },
    Case {
        src: "{{/* comment */}}x",
        data: SHARED,
        want: b"x",
    },
    Case {
        src: "{{- /* c */ -}} x",
        data: SHARED,
        want: b"x",
    },
    Case {
        src: "{{ if .a }}yes{{ else }}no{{ end }}",
        data: SHARED,
        want: b"yes",
    },
    Case {
        src: "{{ if eq .a \"x\" }}1{{ else if eq .a \"hello\" }}2{{ else }}3{{ end }}",
        data: SHARED,
        want: b"2",
    },
    Case {
        src: "{{ $x := .a }}{{ $x }}{{ $x = \"z\" }}{{ $x }}",
        data: SHARED,
        want: b"helloz",
    },
    Case {
        src: "{{ range $i, $v := list \"a\" \"b\" }}{{ $i }}={{ $v }};{{ end }}",
        data: SHARED,
        want: b"0=a;1=b;",
    },
    Case {
        src: "{{ range $k, $v := . }}{{ $k }}:{{ len $v }};{{ end }}",
        data: SHARED,
        want: b"a:5;b:5;b64:8;bin:4;json:85;multi:12;n:2;sp:7;tls.crt:4;yaml:52;",
    },
    Case {
        src: "{{ range . }}[{{ . | len }}]{{ end }}",
        data: SHARED,
        want: b"[5][5][8][4][85][12][2][7][4][52]",
    },
    Case {
        src: "{{ range list }}x{{ else }}empty{{ end }}",
        data: SHARED,
        want: b"empty",
    },
    Case {
        src: "{{ range 3 }}{{ . }}{{ end }}",
        data: SHARED,
        want: b"012",
    },
    Case {
        src: "{{ range $i, $e := list 1 2 3 4 }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $e }}{{ end }}",
        data: SHARED,
        want: b"12",
    },
    Case {
        src: "{{ range list 1 2 3 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}",
        data: SHARED,
        want: b"13",
    },
    Case {
        src: "{{ with .a }}{{ . }}{{ end }}",
        data: SHARED,
        want: b"hello",
    },
    Case {
        src: "{{ with \"\" }}x{{ else }}y{{ end }}",
        data: SHARED,
        want: b"y",
    },
    Case {
        src: "{{ with $v := .a }}{{ $v }}{{ end }}",
        data: SHARED,
        want: b"hello",
    },
    Case {
        src: "{{ define \"t1\" }}T1({{ . }}){{ end }}{{ template \"t1\" .a }}",
        data: SHARED,
        want: b"T1(hello)",
    },
    Case {
        src: "{{ define \"in\" }}[{{ . }}]{{ end }}{{ define \"out\" }}<{{ template \"in\" . }}>{{ end }}{{ template \"out\" \"v\" }}",
        data: SHARED,
        want: b"<[v]>",
    },
    Case {
        src: "{{ block \"bl\" .a }}B:{{ . }}{{ end }}",
        data: SHARED,
        want: b"B:hello",
    },
    Case {
        src: "{{ printf \"%s|%d|%v|%q|%x|%X|%05.2f|%t\" .a 42 1.5 .a .a 255 3.14159 true }}",
        data: SHARED,
        want: b"hello|42|1.5|\"hello\"|68656c6c6f|FF|03.14|true",
    },
    Case {
        src: "{{ printf \"%5s|%-5s|%05d|%+d|%e|%g|%.3g|%8.3f\" \"ab\" \"ab\" 42 42 123456.789 0.000012 3.14159 2.5 }}",
        data: SHARED,
        want: b"   ab|ab   |00042|+42|1.234568e+05|1.2e-05|3.14|   2.500",
    },
    Case {
        src: "{{ printf \"%d %s\" \"x\" 5 }}",
        data: SHARED,
        want: b"%!d(string=x) %!s(int=5)",
    },
    Case {
        src: "{{ printf \"%d\" }}",
        data: SHARED,
        want: b"%!d(MISSING)",
    },
    Case {
        src: "{{ printf \"%d\" 1 2 }}",
        data: SHARED,
        want: b"1%!(EXTRA int=2)",
    },
    Case {
        src: "{{ printf \"%v %v %v\" (list 1 \"a\") (dict \"k\" 1) nil }}",
        data: SHARED,
        want: b"[1 a] map[k:1] <nil>",
    },
    Case {
        src: "{{ printf \"%c %U %o %b %#x\" 65 65 8 5 255 }}",
        data: SHARED,
        want: b"A U+0041 10 101 0xff",
    },
    Case {
        src: "{{ printf \"%.2f %.0f %.1f\" 0.125 2.5 0.25 }}",
        data: SHARED,
        want: b"0.12 2 0.2",
    },
    Case {
        src: "{{ 1000000.0 }} {{ 1.5 }} {{ 1e21 }} {{ 0.0001 }} {{ 0.00001 }} {{ 123456789.0 }} {{ -0.5 }}",
        data: SHARED,
        want: b"1e+06 1.5 1e+21 0.0001 1e-05 1.23456789e+08 -0.5",
    },
    Case {
        src: "{{ 1 }} {{ -3 }} {{ 0x1F }} {{ 'a' }} {{ 1_000 }} {{ 017 }}",
        data: SHARED,
        want: b"1 -3 31 97 1000 15",
    },
    Case {
        src: "{{ eq 1 1 }} {{ eq .a \"hello\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 1.5 }}",
        data: SHARED,
        want: b"true true true true true true true",
    },
    Case {
        src: "{{ eq 1 2 3 1 }}",
        data: SHARED,
        want: b"true",
    },
    Case {
        src: "{{ and 1 0 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 \"x\" }} {{ not 0 }} {{ not .a }}",
        data: SHARED,
        want: b"0 2  x true false",
    },
    Case {
        src: "{{ len .a }} {{ len (list 1 2) }} {{ len . }}",
        data: SHARED,
        want: b"5 2 10",
    },
    Case {
        src: "{{ index (list 1 2 3) 1 }} {{ index (dict \"a\" (list 5 6)) \"a\" 1 }}",
        data: SHARED,
        want: b"2 6",
    },
    Case {
        src: "{{ slice (list 1 2 3 4) 1 3 }}",
        data: SHARED,
        want: b"[2 3]",
    },
    Case {
        src: "{{ html \"<a href='x'>&\\\"\" }}",
        data: SHARED,
        want: b"&lt;a href=&#39;x&#39;&gt;&amp;&#34;",
    },
    Case {
        src: "{{ js \"it's <b> \\\"q\\\" = & \\n\" }}",
        data: SHARED,
        want: b"it\\'s \\u003Cb\\u003E \\\"q\\\" \\u003D \\u0026 \\u000A",
    },
    Case {
        src: "{{ urlquery \"a b&c=d/é\" }}",
        data: SHARED,
        want: b"a+b%26c%3Dd%2F%C3%A9",
    },
    Case {
        src: "{{ print 1 2 \"a\" \"b\" 3 }}",
        data: SHARED,
        want: b"1 2ab3",
    },
    Case {
        src: "{{ println 1 \"a\" }}",
        data: SHARED,
        want: b"1 a\n",
    },
    Case {
        src: "{{ print nil }}",
        data: SHARED,
        want: b"<nil>",
    },
    Case {
        src: "{{ .a | upper | lower }}",
        data: SHARED,
        want: b"hello",
    },
    Case {
        src: "{{ \"x\" | printf \"%s-%s\" \"y\" }}",
        data: SHARED,
        want: b"y-x",
    },
    Case {
        src: "{{ (list 1 2) | len }}",
        data: SHARED,
        want: b"2",
    },
    Case {
        src: "{{ (dict \"k\" \"v\").k }}",
        data: SHARED,
        want: b"v",
    },
    Case {
        src: "{{ $.a }}",
        data: SHARED,
        want: b"hello",
    },
    Case {
        src: "{{ range list 1 }}{{ $.a }}{{ end }}",
        data: SHARED,
        want: b"hello",
    },
    Case {
        src: "{{ 3 | printf \"%d\" }}",
        data: SHARED,
        want: b"3",
    },
    Case {
        src: "{{ \"\\x41\\u00e9\\t\" }}",
        data: SHARED,
        want: b"A\xc3\xa9\t",
    },
    Case {
        src: "{{ `raw\\n` }}",
        data: SHARED,
        want: b"raw\\n",
    },
    Case {
        src: "{{ true }} {{ false }}",
        data: SHARED,
        want: b"true false",
    },
    Case {
        src: "{{- range $i, $e := until 3 }}\n  - {{ $e }}\n{{- end }}",
        data: SHARED,
        want: b"\n  - 0\n  - 1\n  - 2",
    },
    Case {
        src: "{{ if and .a (eq .n \"42\") }}ok{{ end }}",
        data: SHARED,
        want: b"ok",
    },
    Case {
        src: "{{ if not (hasKey (dict \"a\" 1) \"b\") }}nokey{{ end }}",
        data: SHARED,
        want: b"nokey",
    },
    Case {
        src: "{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}",
        data: SHARED,
        want: b"21",
    },
    Case {
        src: "{{ $x := 1 }}{{ range list 1 2 }}{{ $x = . }}{{ end }}{{ $x }}",
        data: SHARED,
        want: b"2",
    },
    Case {
        src: "{{ .a | }}",
        data: SHARED,
        want: b"hello",
    },
    Case {
        src: "{{ 3.0 }} {{ 2.50 }} {{ 1e3 }} {{ -1e-7 }}",
        data: SHARED,
        want: b"3 2.5 1000 -1e-07",
    },
    Case {
        src: "{{ printf \"%v|%s|%d\" (list \"a\" \"b\") (list \"a\" \"b\") (list 1 2) }}",
        data: SHARED,
        want: b"[a b]|[a b]|[1 2]",
    },
    Case {
        src: "{{ printf \"%x\" \"hi\" }} {{ printf \"%q\" \"a\\tb\\\"é\\x01\" }}",
        data: SHARED,
        want: b"6869 \"a\\tb\\\"\xc3\xa9\\x01\"",
    },
    Case {
        src: "{{ printf \"%6.2f|%-8.3e|%+.1e\" 3.14159 1234.5678 -0.000123 }}",
        data: SHARED,
        want: b"  3.14|1.235e+03|-1.2e-04",
    },
    Case {
        src: "{{ printf \"%10.4v|%-10v|\" 3.14159 \"x\" }}",
        data: SHARED,
        want: b"     3.142|x         |",
    },
    Case {
        src: "{{ printf \"%%|%5t|%v\" true 1e100 }}",
        data: SHARED,
        want: b"%| true|1e+100",
    },
];

const SPRIG: &[Case] = &[
    Case { src: "{{ .sp | trim }}|{{ trimAll \"x\" \"xxaxx\" }}|{{ trimPrefix \"he\" .a }}|{{ trimSuffix \"lo\" .a }}", data: SHARED, want: b"pad|a|llo|hel" },
    Case { src: "{{ upper .a }} {{ lower .b }} {{ title \"hello world-foo bar_baz\" }} {{ untitle \"Hello World\" }}", data: SHARED, want: b"HELLO world Hello World-Foo Bar_baz hello world" },
    Case { src: "{{ replace \"l\" \"L\" .a }} {{ .a | replace \"\" \"-\" }}", data: SHARED, want: b"heLLo -h-e-l-l-o-" },
    Case { src: "{{ (split \",\" \"a,b\")._1 }}", data: SHARED, want: b"b" },
    Case { src: "{{ splitList \",\" \"a,b,c\" }} {{ splitn \",\" 2 \"a,b,c\" }} {{ join \"-\" (list \"a\" 1 nil \"b\") }} {{ join \",\" \"single\" }}", data: SHARED, want: b"[a b c] map[_0:a _1:b,c] a-1-b single" },
    Case { src: "{{ contains \"ell\" .a }} {{ hasPrefix \"he\" .a }} {{ hasSuffix \"x\" .a }}", data: SHARED, want: b"true true false" },
    Case { src: "{{ quote .a 1 nil \"x\\\"y\" }} {{ squote .a 1 }} {{ cat \"a\" 1 nil \"b\" }}", data: SHARED, want: b"\"hello\" \"1\" \"x\\\"y\" 'hello' '1' a 1 b" },
    Case { src: "{{ indent 4 .multi }}|{{ nindent 2 \"a\\nb\" }}", data: SHARED, want: b"    line1\n    line2\n    |\n  a\n  b" },
    Case { src: "{{ repeat 3 \"ab\" }} {{ substr 1 3 .a }} {{ substr -1 3 .a }} {{ substr 2 99 .a }}", data: SHARED, want: b"ababab el hel llo" },
    Case { src: "{{ trunc 3 .a }} {{ trunc -2 .a }} {{ trunc 99 .a }}", data: SHARED, want: b"hel lo hello" },
    Case { src: "{{ .a | b64enc }} {{ .b64 | b64dec }} {{ \"!!!\" | b64dec }} {{ \"aGVsbG8\" | b64dec }}", data: SHARED, want: b"aGVsbG8= hello illegal base64 data at input byte 0 illegal base64 data at input byte 4" },
    Case { src: "{{ .a | b32enc }} {{ \"NBSWY3DP\" | b32dec }} {{ \"x\" | b32enc }} {{ \"ab\" | b32enc }} {{ \"abc\" | b32enc }} {{ \"abcd\" | b32enc }}", data: SHARED, want: b"NBSWY3DP hello PA====== MFRA==== MFRGG=== MFRGGZA=" },
    Case { src: "{{ sha1sum .a }} {{ sha256sum .a }}", data: SHARED, want: b"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" },
    Case { src: "{{ sha512sum .a }} {{ adler32sum .a }}", data: SHARED, want: b"9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043 103547413" },
    Case { src: "{{ toJson . }}", data: SHARED, want: b"{\"a\":\"hello\",\"b\":\"World\",\"b64\":\"aGVsbG8=\",\"bin\":\"\xc3\xbf\xc3\xbe\",\"json\":\"{\\\"x\\\":1,\\\"y\\\":[1,2,\\\"z\\\"],\\\"s\\\":\\\"v\\u003c\\u003e\\u0026\\\",\\\"f\\\":1.5,\\\"big\\\":1e21,\\\"neg\\\":-0.000001,\\\"n\\\":null,\\\"t\\\":true}\",\"multi\":\"line1\\nline2\\n\",\"n\":\"42\",\"sp\":\"  pad  \",\"tls.crt\":\"CERT\",\"yaml\":\"a: 1\\nb:\\n  - x\\n  - y\\nc: \\\"str\\\"\\nd: 1.5\\ne: true\\nf: null\\n\"}" },
    Case { src: "{{ toPrettyJson (dict \"a\" (list 1 2) \"b\" (dict) \"c\" (list) \"d\" nil) }}", data: SHARED, want: b"{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": null\n}" },
    Case { src: "{{ toRawJson (dict \"h\" \"<&>\") }}", data: SHARED, want: b"{\"h\":\"<&>\"}" },
    Case { src: "{{ $j := fromJson .json }}{{ $j.x }} {{ $j.y }} {{ $j.f }} {{ $j.big }} {{ $j.neg }} {{ $j.n }} {{ $j.t }} {{ index $j.y 2 }}", data: SHARED, want: b"1 [1 2 z] 1.5 1e+21 -1e-06 <no value> true z" },
    Case { src: "{{ $j := fromJson .json }}{{ toJson $j }}", data: SHARED, want: b"{\"big\":1e+21,\"f\":1.5,\"n\":null,\"neg\":-0.000001,\"s\":\"v\\u003c\\u003e\\u0026\",\"t\":true,\"x\":1,\"y\":[1,2,\"z\"]}" },
    Case { src: "{{ fromJson \"{bad\" }}", data: SHARED, want: b"<no value>" },
    Case { src: "{{ fromJson \"[1,2]\" }}", data: SHARED, want: b"[1 2]" },
    Case { src: "{{ default \"d\" \"\" }} {{ default \"d\" .a }} {{ default \"d\" 0 }} {{ default \"d\" (list) }} {{ \"\" | default \"z\" }}", data: SHARED, want: b"d hello d d z" },
    Case { src: "{{ empty \"\" }} {{ empty 0 }} {{ empty .a }} {{ empty (dict) }} {{ empty nil }} {{ empty false }}", data: SHARED, want: b"true true false true true true" },
    Case { src: "{{ coalesce \"\" 0 \"x\" \"y\" }} {{ coalesce \"\" }} {{ ternary \"y\" \"n\" true }} {{ ternary \"y\" \"n\" false }} {{ true | ternary 1 2 }}", data: SHARED, want: b"x <no value> y n 1" },
    Case { src: "{{ list 1 \"a\" 2.5 nil }} {{ dict \"a\" 1 \"b\" \"x\" }} {{ dict \"odd\" }}", data: SHARED, want: b"[1 a 2.5 <nil>] map[a:1 b:x] map[odd:]" },
    Case { src: "{{ $d := dict \"a\" 1 }}{{ get $d \"a\" }} {{ get $d \"z\" }} {{ $_ := set $d \"b\" 2 }}{{ $d }} {{ hasKey $d \"a\" }} {{ keys $d | sortAlpha }}", data: SHARED, want: b"1  map[a:1 b:2] true [a b]" },
    Case { src: "{{ pluck \"a\" (dict \"a\" 1) (dict \"b\" 2) (dict \"a\" 3) }} {{ pick (dict \"a\" 1 \"b\" 2) \"a\" }} {{ omit (dict \"a\" 1 \"b\" 2) \"a\" }}", data: SHARED, want: b"[1 3] map[a:1] map[b:2]" },
    Case { src: "{{ merge (dict \"a\" 1 \"n\" (dict \"x\" 1)) (dict \"a\" 2 \"b\" 3 \"n\" (dict \"y\" 2)) }} {{ mergeOverwrite (dict \"a\" 1 \"c\" \"\") (dict \"a\" 2 \"c\" \"z\") }}", data: SHARED, want: b"map[a:1 b:3 n:map[x:1 y:2]] map[a:2 c:z]" },
    Case { src: "{{ values (dict \"a\" 1 \"b\" 2) }} {{ dig \"a\" \"b\" \"def\" (dict \"a\" (dict \"b\" \"found\")) }} {{ dig \"x\" \"y\" \"def\" (dict) }}", data: SHARED, want: b"[1 2] found def" },
    Case { src: "{{ first (list 1 2 3) }} {{ last (list 1 2 3) }} {{ rest (list 1 2 3) }} {{ initial (list 1 2 3) }} {{ reverse (list 1 2 3) }}", data: SHARED, want: b"1 3 [2 3] [1 2] [3 2 1]" },
    Case { src: "{{ uniq (list 1 1 2 \"a\" \"a\") }} {{ without (list 1 2 3) 2 }} {{ has 2 (list 1 2) }} {{ append (list 1) 2 }} {{ prepend (list 1) 0 }}", data: SHARED, want: b"[1 2 a] [1 3] true [1 2] [0 1]" },
    Case { src: "{{ concat (list 1) (list 2 3) }} {{ compact (list 0 1 \"\" \"a\") }} {{ chunk 2 (list 1 2 3 4 5) }} {{ slice (list 1 2 3) 1 }}", data: SHARED, want: b"[1 2 3] [1 a] [[1 2] [3 4] [5]] [2 3]" },
    Case { src: "{{ sortAlpha (list \"b\" \"a\" \"C\") }} {{ first (list) }} {{ rest (list) }}", data: SHARED, want: b"[C a b] <no value> []" },
    Case { src: "{{ regexMatch \"^h.*o$\" .a }} {{ regexFind \"l+\" .a }} {{ regexFindAll \"l\" .a -1 }} {{ regexReplaceAll \"l(.)\" .a \"${1}X\" }}", data: SHARED, want: b"true ll [l l] helXo" },
    Case { src: "{{ regexReplaceAllLiteral \"l\" .a \"$1\" }} {{ regexSplit \"l\" .a -1 }} {{ regexSplit \"\" \"abc\" -1 }} {{ regexQuoteMeta \"a.b*c\" }}", data: SHARED, want: b"he$1$1o [he  o] [a b c] a\\.b\\*c" },
    Case { src: "{{ regexReplaceAll \"a*\" \"baaac\" \"X\" }} {{ regexFindAll \"a*\" \"baaac\" -1 }}", data: SHARED, want: b"XbXcX [ aaa ]" },
    Case { src: "{{ regexMatch \"(\" \"x\" }}", data: SHARED, want: b"false" },
    Case { src: "{{ add 1 2 \"3\" }} {{ add1 5 }} {{ sub 5 2 }} {{ div 7 2 }} {{ mod 7 3 }} {{ mul 2 3 4 }} {{ max 1 5 3 }} {{ min 4 2 8 }}", data: SHARED, want: b"6 6 3 3 1 24 5 2" },
    Case { src: "{{ addf 1.1 2.2 }} {{ subf 5.5 1.1 }} {{ mulf 1.1 3 }} {{ divf 10 3 }} {{ add1f 1.5 }} {{ maxf 1.5 2.5 }} {{ minf 1.5 2.5 }}", data: SHARED, want: b"3.3 4.4 3.3 3.3333333333333335 2.5 2.5 1.5" },
    Case { src: "{{ floor 1.7 }} {{ ceil 1.2 }} {{ round 3.14159 2 }} {{ round 2.5 0 }} {{ int \"42\" }} {{ int64 \"0x10\" }} {{ float64 \"1.5\" }} {{ atoi \"12\" }} {{ int \"1.0\" }} {{ int 3.9 }}", data: SHARED, want: b"1 2 3.14 3 42 16 1.5 12 1 3" },
    Case { src: "{{ until 3 }} {{ untilStep 0 10 3 }} {{ seq 3 }} {{ seq 2 5 }} {{ seq 5 2 }} {{ seq 0 2 6 }} {{ toDecimal \"777\" }}", data: SHARED, want: b"[0 1 2] [0 3 6 9] 1 2 3 2 3 4 5 5 4 3 2 0 2 4 6 511" },
    Case { src: "{{ toString 1.5 }} {{ toString nil }} {{ toStrings (list 1 \"a\" nil) }}", data: SHARED, want: b"1.5 <nil> [1 a]" },
    Case { src: "{{ typeOf 1 }} {{ typeOf \"a\" }} {{ typeOf (list) }} {{ typeOf (dict) }} {{ typeOf 1.5 }} {{ kindOf (list) }} {{ kindIs \"map\" (dict) }} {{ typeIs \"int\" 1 }} {{ deepEqual (list 1) (list 1) }}", data: SHARED, want: b"int string []interface {} map[string]interface {} float64 slice true true true" },
    Case { src: "{{ base \"/a/b.txt\" }} {{ dir \"/a/b.txt\" }} {{ ext \"x.tar.gz\" }} {{ clean \"a//b/../c/.\" }} {{ isAbs \"/x\" }}", data: SHARED, want: b"b.txt /a .gz a/c true" },
    Case { src: "{{ snakecase \"HTTPServerName\" }} {{ snakecase \"fooBar baz\" }} {{ kebabcase \"FooBarBaz\" }} {{ camelcase \"foo_bar_baz\" }} {{ camelcase \"http_server\" }}", data: SHARED, want: b"http_server_name foo_bar_baz foo-bar-baz FooBarBaz HttpServer" },
    Case { src: "{{ swapcase \"Hello World\" }} {{ initials \"hello big world\" }} {{ nospace \" a b  c \" }} {{ plural \"one\" \"many\" 1 }} {{ plural \"one\" \"many\" 2 }}", data: SHARED, want: b"hELLO wORLD hbw abc one many" },
    Case { src: "{{ abbrev 5 \"hello world\" }} {{ abbrevboth 5 10 \"1234 5678 9123\" }} {{ wrap 5 \"hello world foo\" }} {{ wrapWith 5 \"\\t\" \"hello world\" }}", data: SHARED, want: b"he... ...5678... hello\nworld\nfoo hello\tworld" },
    Case { src: "{{ uuidv4 | len }} {{ randAlphaNum 10 | len }} {{ randNumeric 5 | regexMatch \"^[0-9]{5}$\" }}", data: SHARED, want: b"36 10 true" },
    Case { src: "{{ date \"2006-01-02\" 0 }} {{ date \"Jan 2, 2006 at 3:04pm (MST)\" 1700000000 }} {{ dateInZone \"2006-01-02T15:04:05Z07:00\" 1700000000 \"UTC\" }}", data: SHARED, want: b"1970-01-01 Nov 14, 2023 at 10:13pm (UTC) 2023-11-14T22:13:20Z" },
    Case { src: "{{ toDate \"2006-01-02\" \"2024-03-05\" }} {{ (toDate \"2006-01-02\" \"2024-03-05\").Unix }} {{ toDate \"2006-01-02 15:04:05 -0700\" \"2024-03-05 10:20:30 +0200\" | date \"2006-01-02T15:04:05.000Z07:00\" }}", data: SHARED, want: b"2024-03-05 00:00:00 +0000 UTC 1709596800 2024-03-05T08:20:30.000Z" },
    Case { src: "{{ htmlDate 1700000000 }} {{ now | date \"2006\" | len }}", data: SHARED, want: b"2023-11-14 4" },
    Case { src: "{{ date \"Monday Mon January Jan 01 1 02 _2 2 15 03 3 04 4 05 5 06 2006 PM pm .000 .999 Z07:00 -0700 MST 002\" 1700000123 }}", data: SHARED, want: b"Tuesday Tue November Nov 11 11 14 14 14 22 10 10 15 15 23 23 23 2023 PM pm .000  Z +0000 UTC 318" },
    Case { src: "{{ urlParse \"https://user:pw@host.com:8080/p/a?q=1#frag\" }}", data: SHARED, want: b"map[fragment:frag host:host.com:8080 hostname:host.com opaque: path:/p/a query:q=1 scheme:https userinfo:user:pw]" },
    Case { src: "{{ urlJoin (dict \"scheme\" \"https\" \"host\" \"h.com\" \"path\" \"/x\" \"query\" \"a=b\") }}", data: SHARED, want: b"https://h.com/x?a=b" },
    Case { src: "{{ .bin | b64enc }} {{ .bin | toString | b64enc }} {{ printf \"%s\" .bin | b64enc }}", data: SHARED, want: b"w7/Dvg== w7/Dvg== w7/Dvg==" },
    Case { src: "{{ toYaml (fromJson .json) }}", data: SHARED, want: b"big: 1e+21\nf: 1.5\n\"n\": null\nneg: -1e-06\ns: v<>&\nt: true\nx: 1\n\"y\":\n- 1\n- 2\n- z" },
    Case { src: "{{ toYaml (dict \"s\" \"true\" \"n\" \"123\" \"e\" \"\" \"c\" \"a: b\" \"h\" \"#x\" \"m\" \"l1\\nl2\" \"m2\" \"l1\\nl2\\n\" \"sp\" \" x\" \"q\" \"it's\" \"t\" \"a\\tb\" \"list\" (list 1 (dict \"a\" 1 \"b\" 2) (list 3 4)) \"em\" (list) \"ed\" (dict) \"y\" \"yes\" \"f\" 1.5 \"k10\" 1 \"k9\" 2 \"uni\" \"é\") }}", data: SHARED, want: b"c: 'a: b'\ne: \"\"\ned: {}\nem: []\nf: 1.5\nh: '#x'\nk9: 2\nk10: 1\nlist:\n- 1\n- a: 1\n  b: 2\n- - 3\n  - 4\nm: |-\n  l1\n  l2\nm2: |\n  l1\n  l2\n\"n\": \"123\"\nq: it's\ns: \"true\"\nsp: ' x'\nt: \"a\\tb\"\nuni: \xc3\xa9\n\"y\": \"yes\"" },
    Case { src: "{{ toYaml \"plain\" }}|{{ toYaml 1 }}|{{ toYaml nil }}|{{ toYaml (list) }}|{{ toYaml \"multi\\nline\" }}", data: SHARED, want: b"plain|1|null|[]||-\n  multi\n  line" },
    Case { src: "{{ toYaml (dict \"long\" \"aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq rrrr ssss tttt uuuu\") }}", data: SHARED, want: b"long: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp\n  qqqq rrrr ssss tttt uuuu" },
];

const ESO_EXAMPLES: &[Case] = &[
    Case { src: "{{ .secret | b64dec }}", data: &[("secret", "MTIzNA==")], want: b"1234" },
    Case { src: "{{ $var := .secret | fromJson }}{{ $var.foo }}", data: &[("secret", "{\"foo\": \"bar\"}")], want: b"bar" },
    Case { src: "{{ $var := .secret | fromJson }}{{ $var.foo | toJson }}", data: &[("secret", "{\"foo\": {\"baz\":\"bang\"}}")], want: b"{\"baz\":\"bang\"}" },
    Case { src: "{{ $var := .secret | fromJson | toYaml }}{{ $var }}", data: &[("secret", "{\"foo\": \"bar\"}")], want: b"foo: bar" },
    Case { src: "{{ $var := .secret | fromYaml | toJson }}{{ $var }}", data: &[("secret", "foo: bar")], want: b"{\"foo\":\"bar\"}" },
    Case { src: "{{ .path | ext }}", data: &[("path", "foo/bar/baz.exe")], want: b".exe" },
    Case { src: "{{ .conn | replace \"postgres://\" \"db+postgresql://\"}}", data: &[("conn", "postgres://user:pass@db.host:5432/dbname")], want: b"db+postgresql://user:pass@db.host:5432/dbname" },
    Case { src: "{{ .value | upper }}", data: &[("value", "username")], want: b"USERNAME" },
    Case { src: "\ndatasources:\n- name: Graphite\n  type: graphite\n  access: proxy\n  url: http://localhost:8080\n  password: \"{{ .password }}\"\n  user: \"{{ .user }}\"\n", data: &[("password", "harharhar"), ("user", "foobert")], want: b"\ndatasources:\n- name: Graphite\n  type: graphite\n  access: proxy\n  url: http://localhost:8080\n  password: \"harharhar\"\n  user: \"foobert\"\n" },
    Case { src: "{{ \"123412341234\" | b64enc | b64dec }}", data: &[], want: b"123412341234" },
    Case { src: "{{ .example | b64dec }}", data: &[("example", "iam_no_base64")], want: b"illegal base64 data at input byte 3" },
    Case { src: "{{ .example | sha256sum | hexdec | b64enc }}", data: &[("example", "example")], want: b"UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw=" },
    Case { src: "{{ .example | hexdec }}|{{ \"zz\" | hexdec }}|{{ \"abc\" | hexdec }}|{{ \"abg\" | hexdec }}", data: &[("example", "68656c6c6f")], want: b"hello|encoding/hex: invalid byte: U+007A 'z'|encoding/hex: odd length hex string|encoding/hex: invalid byte: U+0067 'g'" },
    Case { src: "{{ \"{ # no json # }\" | fromJson }}", data: &[], want: b"<no value>" },
    Case { src: "{\"auths\": {\"{{ .registry }}\": {\"auth\": \"{{ printf \"%s:%s\" .username .password | b64enc }}\"}}}", data: &[("password", "s3cr3t"), ("registry", "ghcr.io"), ("username", "bob")], want: b"{\"auths\": {\"ghcr.io\": {\"auth\": \"Ym9iOnMzY3IzdA==\"}}}" },
    Case { src: "{{ .config | fromJson | toYaml }}", data: &[("config", "{\"db\":{\"host\":\"h\",\"port\":5432,\"opts\":[\"a\",\"b\"]},\"debug\":false}")], want: b"db:\n  host: h\n  opts:\n  - a\n  - b\n  port: 5432\ndebug: false" },
    Case { src: "{{- range $k, $v := . }}\n{{ $k | upper }}={{ $v | quote }}\n{{- end }}", data: &[("db_pass", "p@ss\"w"), ("db_user", "app")], want: b"\nDB_PASS=\"p@ss\\\"w\"\nDB_USER=\"app\"" },
    Case { src: "{{ index . \"tls.crt\" | b64enc }}", data: &[("tls.crt", "CERTDATA")], want: b"Q0VSVERBVEE=" },
    Case { src: "amqp://{{ .user }}:{{ .password | urlquery }}@{{ .host }}:5672/", data: &[("host", "rabbit"), ("password", "p@ss w/rd&"), ("user", "u")], want: b"amqp://u:p%40ss+w%2Frd%26@rabbit:5672/" },
    Case { src: "{{ .json | fromJson | dig \"a\" \"b\" \"none\" }}", data: &[("json", "{\"a\":{\"b\":\"deep\"}}")], want: b"deep" },
    Case { src: "{{ .keys | fromJson | toPrettyJson }}", data: &[("keys", "{\"z\":1,\"a\":[true,null,\"x\"],\"m\":{}}")], want: b"{\n  \"a\": [\n    true,\n    null,\n    \"x\"\n  ],\n  \"m\": {},\n  \"z\": 1\n}" },
    Case { src: "{{ .value | trim | lower | replace \" \" \"-\" | trunc 10 }}", data: &[("value", "  My Fancy Name  ")], want: b"my-fancy-n" },
    Case { src: "{{ if hasPrefix \"-----BEGIN\" .cert }}pem{{ else }}der{{ end }}", data: &[("cert", "-----BEGIN CERTIFICATE-----")], want: b"pem" },
    Case { src: "{{ .list | splitList \",\" | join \";\" }}", data: &[("list", "a,b,c")], want: b"a;b;c" },
    Case { src: "{{ .value | default \"fallback\" }}/{{ .empty | default \"fallback\" }}", data: &[("empty", ""), ("value", "set")], want: b"set/fallback" },
    Case { src: "{{ .raw | toYaml }}", data: &[("raw", "line one\nline two\n")], want: b"|\n  line one\n  line two" },
    Case { src: "{{ dict \"user\" .user \"pass\" .pass | toJson }}", data: &[("pass", "<&>"), ("user", "u")], want: b"{\"pass\":\"\\u003c\\u0026\\u003e\",\"user\":\"u\"}" },
];
