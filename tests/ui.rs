//! Compile-time behaviour of `#[lawcket::handler]`: every accepted form builds,
//! every mistake is reported on the user's own tokens (tests/ui/fail/*.stderr).

#[test]
fn ui() {
    // trybuild runs each pass case's binary. It builds them with `--cfg
    // trybuild`, under which the generated `main` returns at once.
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
