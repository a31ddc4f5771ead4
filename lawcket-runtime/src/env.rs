//! Reading lawcket's environment variables: one reader, so an empty value
//! means unset everywhere and every bad value is an [`Error::Env`] naming it.

use std::time::Duration;

use crate::error::Error;

/// The variable's value, or `None` when it is unset or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A positive number of seconds (fractions allowed), when the variable is set.
pub(crate) fn seconds(name: &str) -> Result<Option<Duration>, Error> {
    let Some(value) = var(name) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && s.is_finite())
        .map(|s| Some(Duration::from_secs_f64(s)))
        .ok_or_else(|| Error::Env {
            var: name.into(),
            problem: format!("{value:?} is not a positive number of seconds"),
        })
}
