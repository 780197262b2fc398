//! Compile-time behaviour of `#[cached]` and `#[derive(KeyPart)]`: what must compile
//! (`tests/ui/pass`) and the exact errors for what must not (`tests/ui/fail`, one `.stderr` each).
//!
//! Regenerate the expected errors with `TRYBUILD=overwrite cargo test -p cachette-tests --test ui`, then read every
//! changed `.stderr`: each should point at the offending token and say how to fix it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
