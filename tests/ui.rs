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

/// The macro names the facade's hidden module after its own version; the
/// facade must carry that name.
#[test]
fn the_private_module_is_named_after_the_version() {
    let version = env!("CARGO_PKG_VERSION").replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let module = format!("pub mod __private_{version} {{");
    assert!(
        include_str!("../src/lib.rs").contains(&module),
        "src/lib.rs must declare `{module}`"
    );
}
