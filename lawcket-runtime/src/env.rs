//! Reading lawcket's environment variables: one reader, so an empty value
//! means unset everywhere and every bad value is an [`Error::Env`] naming it.

use std::time::Duration;

use crate::error::Error;

/// The variable's value, or `None` when it is unset or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable's value read by `parse` when it is set; a value `parse`
/// refuses is an [`Error::Env`] saying what was `expected`.
fn parsed<T>(
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, Error> {
    let Some(value) = var(name) else {
        return Ok(None);
    };
    match parse(value.trim()) {
        Some(parsed) => Ok(Some(parsed)),
        None => Err(Error::Env {
            var: name.into(),
            problem: format!("{value:?}: expected {expected}"),
        }),
    }
}

/// A positive number of seconds (fractions allowed, at most a day), when the
/// variable is set.
pub(crate) fn seconds(name: &str) -> Result<Option<Duration>, Error> {
    const DAY: f64 = 86_400.0;
    let parse = |value: &str| {
        let seconds = value
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && *s <= DAY)?;
        Duration::try_from_secs_f64(seconds).ok()
    };
    parsed(
        name,
        parse,
        &format!("a number of seconds above 0 and at most {DAY}"),
    )
}

/// A whole number in `min..=max`, when the variable is set.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) fn count(name: &str, min: usize, max: usize) -> Result<Option<usize>, Error> {
    let parse = |value: &str| value.parse().ok().filter(|n| (min..=max).contains(n));
    parsed(name, parse, &format!("a whole number from {min} to {max}"))
}

/// `true`/`1` or `false`/`0`, when the variable is set.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) fn flag(name: &str) -> Result<Option<bool>, Error> {
    let parse = |value: &str| match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    };
    parsed(name, parse, "`true` or `false`")
}
