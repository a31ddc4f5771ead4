//! Reading lawcket's environment variables: one reader, so an empty value
//! means unset everywhere and every bad value is an [`Error::Env`] naming it.

use std::time::Duration;

use crate::error::Error;

/// The variable's value, or `None` when it is unset or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A positive number of seconds (fractions allowed, at most a day), when the
/// variable is set.
pub(crate) fn seconds(name: &str) -> Result<Option<Duration>, Error> {
    const DAY: f64 = 86_400.0;
    let Some(value) = var(name) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= DAY)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(Some)
        .ok_or_else(|| Error::Env {
            var: name.into(),
            problem: format!("{value:?} is not a number of seconds above 0 and at most {DAY}"),
        })
}

/// A whole number in `min..=max`, when the variable is set.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) fn count(name: &str, min: usize, max: usize) -> Result<Option<usize>, Error> {
    let Some(value) = var(name) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| Error::Env {
            var: name.into(),
            problem: format!("{value:?} is not a whole number from {min} to {max}"),
        })
}

/// `true`/`1` or `false`/`0`, when the variable is set.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) fn flag(name: &str) -> Result<Option<bool>, Error> {
    let Some(value) = var(name) else {
        return Ok(None);
    };
    match value.trim() {
        "true" | "1" => Ok(Some(true)),
        "false" | "0" => Ok(Some(false)),
        _ => Err(Error::Env {
            var: name.into(),
            problem: format!("{value:?}: expected `true` or `false`"),
        }),
    }
}
