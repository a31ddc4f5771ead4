//! Compile-time behaviour of `#[lawcket::handler]`: every accepted form builds,
//! every mistake is reported on the user's own tokens (tests/ui/fail/*.stderr).

#[test]
fn ui() {
    // trybuild runs each pass case's binary; the generated `main` returns at
    // once with this set instead of serving (`cargo run` passes our env on).
    std::env::set_var("LAWCKET_CHECK_ONLY", "1");
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

/// The macro keeps its own copy of these names; tests/ui/fail/reserved_sync_keys.rs
/// pins that it rejects each of them.
#[test]
fn reserved_attributes_match_the_macro() {
    assert_eq!(
        lawcket::RESERVED_ATTRIBUTES,
        [
            "connectionId",
            "domainName",
            "stage",
            "connectedAt",
            "updatedAt",
            "ttl"
        ],
    );
}
