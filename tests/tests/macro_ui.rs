//! Compile-time checks of `#[nextgen_event]`: each mistake a handler author can make is one
//! clear error at the offending tokens, and every accepted form compiles.

#[test]
fn macro_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
