//! Resource limits: hostile templates fail with an error naming the limit they exceeded.
//! No assertion is about time; each test only has to terminate.

use std::collections::BTreeMap;
use std::time::Duration;

use esox_template::{LimitKind, Limits, Template, TemplateError, Value};

fn run(src: &str) -> Result<Vec<u8>, TemplateError> {
    Template::parse("t", src)
        .expect("template parses")
        .execute(&Value::Nil)
}

fn run_with(src: &str, limits: &Limits) -> Result<Vec<u8>, TemplateError> {
    Template::parse("t", src)
        .expect("template parses")
        .execute_with(&Value::Nil, limits)
}

fn limit_error(r: Result<Vec<u8>, TemplateError>, kind: LimitKind, text: &str) -> TemplateError {
    let e = r.expect_err("the template must fail");
    assert_eq!(e.limit(), Some(kind), "{e}");
    assert!(e.to_string().contains(text), "{e}");
    e
}

const OUTPUT: &str = "template exceeded its output limit of 1048576 bytes";

#[test]
fn defaults_are_documented_values() {
    let l = Limits::default();
    assert_eq!(l.max_steps, 10_000_000);
    assert_eq!(l.max_output_bytes, 1 << 20);
    assert_eq!(l.timeout, Duration::from_secs(1));
    assert_eq!(l.max_template_depth, 100);
}

#[test]
fn a_huge_repeat_is_refused_before_allocating() {
    limit_error(
        run(r#"{{range 64}}{{repeat 16777216 "x"}}{{end}}"#),
        LimitKind::Output,
        OUTPUT,
    );
}

#[test]
fn output_built_from_many_small_pieces_hits_the_output_limit() {
    // Each piece is exactly the cap; the second one overflows the total.
    let e = limit_error(
        run(r#"{{range 64}}{{repeat 1048576 "x"}}{{end}}"#),
        LimitKind::Output,
        OUTPUT,
    );
    assert!(!e.to_string().contains("xxxx"), "{e}");
    // Plain text counts too.
    let text = "y".repeat(1024);
    limit_error(
        run(&format!("{{{{range 2000}}}}{text}{{{{end}}}}")),
        LimitKind::Output,
        OUTPUT,
    );
}

/// Under the defaults a slow (debug) build may reach the 1 s deadline before 10^7 steps.
fn steps_or_time(r: Result<Vec<u8>, TemplateError>) {
    let e = r.expect_err("the template must fail");
    match e.limit() {
        Some(LimitKind::Steps) => assert!(
            e.to_string()
                .contains("template exceeded its step limit of 10000000 steps"),
            "{e}"
        ),
        Some(LimitKind::Time) => assert!(
            e.to_string()
                .contains("template exceeded its time limit of 1000 ms"),
            "{e}"
        ),
        other => panic!("unexpected limit {other:?}: {e}"),
    }
}

/// A step budget that is reached long before a generous deadline.
fn steps_only(max_steps: u64) -> Limits {
    Limits {
        max_steps,
        timeout: Duration::from_secs(3600),
        ..Limits::default()
    }
}

const NESTED_RANGES: &str = "{{range 1048576}}{{range 1048576}}{{end}}{{end}}";
const DOUBLING: &str = r#"{{define "r"}}{{if gt . 0}}{{template "r" (sub . 1)}}{{template "r" (sub . 1)}}{{end}}{{end}}{{template "r" 60}}"#;

#[test]
fn nested_ranges_hit_the_step_limit() {
    steps_or_time(run(NESTED_RANGES));
    limit_error(
        run_with(NESTED_RANGES, &steps_only(100_000)),
        LimitKind::Steps,
        "template exceeded its step limit of 100000 steps",
    );
}

#[test]
fn a_doubling_recursive_template_hits_the_step_limit() {
    steps_or_time(run(DOUBLING));
    limit_error(
        run_with(DOUBLING, &steps_only(100_000)),
        LimitKind::Steps,
        "step limit of 100000",
    );
}

#[test]
fn unbounded_recursion_hits_the_nesting_limit() {
    let src = r#"{{define "r"}}{{template "r" .}}{{end}}{{template "r" 1}}"#;
    let e = run(src).unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::TemplateDepth), "{e}");
    let small = Limits {
        max_template_depth: 5,
        ..Limits::default()
    };
    limit_error(
        run_with(src, &small),
        LimitKind::TemplateDepth,
        "template exceeded its nesting limit of 5 template calls",
    );
}

#[test]
fn the_deadline_stops_a_slow_render() {
    let limits = Limits {
        timeout: Duration::ZERO,
        ..Limits::default()
    };
    limit_error(
        run_with("{{range 1048576}}{{end}}", &limits),
        LimitKind::Time,
        "template exceeded its time limit of 0 ms",
    );
    // Every function call reads the clock.
    limit_error(
        run_with(r#"{{ upper "a" }}"#, &limits),
        LimitKind::Time,
        "time limit",
    );
}

#[test]
fn amplifying_functions_are_refused_before_allocating() {
    for src in [
        r#"{{ randAlpha 2000000 }}"#,
        r#"{{ repeat 1048577 "x" }}"#,
        r#"{{ $x := repeat 1000000 "\n" }}{{ indent 65536 $x }}"#,
        r#"{{ $x := repeat 1000000 "\n" }}{{ nindent 65536 $x }}"#,
        r#"{{ $x := repeat 1000000 "a" }}{{ replace "" $x $x }}"#,
        r#"{{ $x := repeat 1000000 "a" }}{{ replace "a" $x $x }}"#,
        r#"{{ $x := repeat 1000000 "a" }}{{ wrapWith 1 $x $x }}"#,
        r#"{{ $x := repeat 1000000 "a" }}{{ join $x (list 1 2 3) }}"#,
        r#"{{ $x := repeat 1000000 "a" }}{{ regexReplaceAll "a" $x $x }}"#,
        r#"{{ $f := repeat 100000 "%999999d" }}{{ printf $f 1 }}"#,
        r#"{{ until 100000000 }}"#,
        r#"{{ untilStep 0 100000000 1 }}"#,
        r#"{{ seq 100000000 }}"#,
    ] {
        limit_error(run(src), LimitKind::Output, OUTPUT);
    }
}

#[test]
fn doubling_values_hit_the_output_limit() {
    // Strings and lists that double each iteration never get far past the cap.
    limit_error(
        run(r#"{{ $x := "xx" }}{{ range 64 }}{{ $x = print $x $x }}{{ end }}"#),
        LimitKind::Output,
        OUTPUT,
    );
    limit_error(
        run(r#"{{ $x := list 1 2 }}{{ range 64 }}{{ $x = concat $x $x }}{{ end }}"#),
        LimitKind::Output,
        OUTPUT,
    );
}

#[test]
fn deeply_nested_values_are_refused_before_they_overflow_the_stack() {
    let e = run(r#"{{ $x := list }}{{ range 100000 }}{{ $x = list $x }}{{ end }}{{ len $x }}"#)
        .unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::TemplateDepth), "{e}");
    assert!(
        e.to_string()
            .contains("template exceeded its value nesting limit of 1000 levels"),
        "{e}"
    );
    // Ordinary nesting is fine.
    let out = run(r#"{{ $x := list }}{{ range 50 }}{{ $x = list $x }}{{ end }}{{ len $x }}"#);
    assert_eq!(out.unwrap(), b"1");
}

#[test]
fn limits_can_be_raised_and_lowered() {
    let src = r#"{{ repeat 10 "ab" }}"#;
    let tight = Limits {
        max_output_bytes: 8,
        ..Limits::default()
    };
    limit_error(
        run_with(src, &tight),
        LimitKind::Output,
        "template exceeded its output limit of 8 bytes",
    );
    let steps = Limits {
        max_steps: 3,
        ..Limits::default()
    };
    limit_error(
        run_with("{{range 10}}.{{end}}", &steps),
        LimitKind::Steps,
        "template exceeded its step limit of 3 steps",
    );
    let roomy = Limits {
        max_output_bytes: 4 << 20,
        ..Limits::default()
    };
    let out = run_with(r#"{{ repeat 2097152 "x" }}"#, &roomy).unwrap();
    assert_eq!(out.len(), 2 << 20);
}

#[test]
fn ordinary_templates_are_unaffected() {
    let mut data = BTreeMap::new();
    data.insert("user".to_string(), b"admin".to_vec());
    data.insert("password".to_string(), b"s3cr3t".to_vec());
    let out = esox_template::render_bytes(
        "t",
        r#"{{ range $i := until 100 }}{{ $i }}{{ end }}|{{ .user }}:{{ .password | b64enc }}|{{ repeat 3 "ab" | indent 2 }}"#,
        &data,
    )
    .unwrap();
    let expected = format!(
        "{}|admin:czNjcjN0|  ababab",
        (0..100).map(|i| i.to_string()).collect::<String>()
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    // A 1 MiB value, exactly the cap, still renders.
    let out = run(r#"{{ repeat 1048576 "x" }}"#).unwrap();
    assert_eq!(out.len(), 1 << 20);
}

#[test]
fn render_transform_is_bounded_too() {
    let e = esox_template::render_transform(r#"{{ repeat 16777216 .value }}"#, "key")
        .expect_err("must fail");
    assert_eq!(e.limit(), Some(LimitKind::Output), "{e}");
    let e = esox_template::render_transform(NESTED_RANGES, "key").expect_err("must fail");
    assert!(
        matches!(e.limit(), Some(LimitKind::Steps | LimitKind::Time)),
        "{e}"
    );
}

#[test]
fn non_limit_errors_have_no_limit_kind() {
    let e = run("{{ .missing }}").unwrap_err();
    assert_eq!(e.limit(), None);
}
