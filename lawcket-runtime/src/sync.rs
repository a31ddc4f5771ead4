//! Sync fields: what is stored with each connection besides what lawcket writes
//! itself. Fixed values come from the attribute; dynamic ones from the
//! `$connect` request, validated before anything is stored.

use crate::config::SyncValue;
use crate::{Error, Event};

/// Where a sync field's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The same value for every connection (`sync(channel = "#general")`).
    Fixed(SyncValue),
    /// Taken from the `$connect` request (`sync(channel = query("channel"))`).
    Dynamic(Dynamic),
}

/// A sync field read from the `$connect` request's query string or headers.
///
/// ```
/// use lawcket::Dynamic;
/// let channel = Dynamic::query("channel").default("#general").max_len(32).chars("a-z0-9#-");
/// assert!(channel.check("channel", "#rust-lang").is_ok());
/// let err = channel.check("channel", "#Rust").unwrap_err();
/// assert_eq!(err.to_string(), "refused with status 400: sync field `channel`: `R` is not allowed (allowed: a-z0-9#-)");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dynamic {
    origin: Origin,
    key: String,
    default: Option<String>,
    max_len: usize,
    chars: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Origin {
    Query,
    Header,
}

/// Longest dynamic value accepted unless configured.
pub const DEFAULT_MAX_LEN: usize = 128;

/// Characters a dynamic value may hold unless configured.
pub const DEFAULT_CHARS: &str = "a-zA-Z0-9-_.#@:";

impl Dynamic {
    /// The value of the query-string parameter `param`.
    pub fn query(param: &str) -> Self {
        Self::new(Origin::Query, param)
    }

    /// The value of the request header `name` (case-insensitive).
    pub fn header(name: &str) -> Self {
        Self::new(Origin::Header, name)
    }

    fn new(origin: Origin, key: &str) -> Self {
        Dynamic {
            origin,
            key: key.to_owned(),
            default: None,
            max_len: DEFAULT_MAX_LEN,
            chars: DEFAULT_CHARS.to_owned(),
        }
    }

    /// The value used when the request has none; without it the field is required.
    pub fn default(mut self, value: &str) -> Self {
        self.default = Some(value.to_owned());
        self
    }

    /// Longest value accepted, in characters (default [`DEFAULT_MAX_LEN`]).
    pub fn max_len(mut self, chars: usize) -> Self {
        self.max_len = chars;
        self
    }

    /// The characters a value may hold, `a-z` meaning a range (default
    /// [`DEFAULT_CHARS`]). A `-` first or last stands for itself.
    pub fn chars(mut self, allowed: &str) -> Self {
        self.chars = allowed.to_owned();
        self
    }

    /// The value for `field` from `event`, checked; a 400 rejection naming the
    /// field when it is missing or invalid.
    pub fn value(&self, field: &str, event: &Event) -> Result<String, Error> {
        let found = match self.origin {
            Origin::Query => event.query(&self.key),
            Origin::Header => event.header(&self.key),
        };
        match found.or(self.default.as_deref()) {
            Some(value) => {
                self.check(field, value)?;
                Ok(value.to_owned())
            }
            None => Err(Error::reject(
                400,
                format!(
                    "missing sync field `{field}`: connect with the {} `{}`",
                    match self.origin {
                        Origin::Query => "query parameter",
                        Origin::Header => "header",
                    },
                    self.key
                ),
            )),
        }
    }

    /// Checks `value` against the length bound and the allowed characters.
    pub fn check(&self, field: &str, value: &str) -> Result<(), Error> {
        let length = value.chars().count();
        if length == 0 {
            return Err(Error::reject(
                400,
                format!("sync field `{field}`: the value is empty"),
            ));
        }
        if length > self.max_len {
            return Err(Error::reject(
                400,
                format!(
                    "sync field `{field}`: {length} characters, over the limit of {}",
                    self.max_len
                ),
            ));
        }
        if let Some(bad) = value.chars().find(|c| !allowed(&self.chars, *c)) {
            return Err(Error::reject(
                400,
                format!(
                    "sync field `{field}`: `{bad}` is not allowed (allowed: {})",
                    self.chars
                ),
            ));
        }
        Ok(())
    }
}

/// Whether `c` is in the set `spec` (`a-z` ranges, other characters as such).
fn allowed(spec: &str, c: char) -> bool {
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            if (chars[i]..=chars[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if chars[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// A declared sync field.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncField {
    pub(crate) name: String,
    pub(crate) source: Source,
}

impl SyncField {
    /// The value stored on `$connect`.
    pub(crate) fn value(&self, event: &Event) -> Result<SyncValue, Error> {
        match &self.source {
            Source::Fixed(value) => Ok(value.clone()),
            Source::Dynamic(dynamic) => dynamic.value(&self.name, event).map(SyncValue::Str),
        }
    }

    /// Whether `value` may be written to this field later (same type as the
    /// fixed value; a dynamic field's rules).
    pub(crate) fn check(&self, value: &SyncValue) -> Result<(), Error> {
        let field = &self.name;
        match (&self.source, value) {
            (Source::Dynamic(dynamic), SyncValue::Str(s)) => dynamic.check(field, s),
            (Source::Fixed(SyncValue::Str(_)), SyncValue::Str(_))
            | (Source::Fixed(SyncValue::Int(_)), SyncValue::Int(_))
            | (Source::Fixed(SyncValue::Bool(_)), SyncValue::Bool(_)) => Ok(()),
            _ => Err(Error::reject(
                400,
                format!("sync field `{field}` cannot hold {value:?}: it has another type"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_sets() {
        assert!(allowed("a-z", 'q'));
        assert!(!allowed("a-z", 'Q'));
        assert!(allowed("a-z-", '-'));
        assert!(allowed("-a", '-'));
        assert!(allowed(DEFAULT_CHARS, '#'));
        assert!(allowed(DEFAULT_CHARS, '_'));
        assert!(!allowed(DEFAULT_CHARS, ' '));
        assert!(!allowed(DEFAULT_CHARS, '<'));
    }

    #[test]
    fn length_and_emptiness() {
        let d = Dynamic::query("c").max_len(3);
        assert!(d.check("c", "abc").is_ok());
        assert!(d
            .check("c", "abcd")
            .unwrap_err()
            .to_string()
            .contains("4 characters, over the limit of 3"));
        assert!(d.check("c", "").unwrap_err().to_string().contains("empty"));
    }
}
