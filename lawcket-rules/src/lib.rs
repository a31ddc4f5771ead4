//! What `#[lawcket::handler]` checks at compile time and lawcket's runtime
//! checks at run time, written once. Rocket's codegen depends on `rocket_http`
//! for the same reason: a rule has one home, so the compile-time check and the
//! run-time check cannot drift apart.
//!
//! - [`RESERVED_ATTRIBUTES`]: the item attributes lawcket writes itself.
//! - [`CharSet`]: the `chars = "a-z0-9#"` notation, parsed and matched.
//! - [`ValueRules`]: the checks a dynamic sync value passes before it is stored.
//! - [`check_subprotocol`]: what a WebSocket subprotocol name may be.
//!
//! The macro turns a violation into a compile error spanned on the user's
//! token; the runtime turns it into a 400 refusal (or, for the configuration
//! itself, into a start-up error).

#![warn(missing_docs)]

use std::fmt;

/// The names of the registry item attributes lawcket writes itself.
pub mod attributes {
    /// The connection id: the table's hash key (a string).
    pub const CONNECTION_ID: &str = "connectionId";
    /// `requestContext.domainName` of the `$connect` event.
    pub const DOMAIN_NAME: &str = "domainName";
    /// `requestContext.stage` of the `$connect` event.
    pub const STAGE: &str = "stage";
    /// When the connection opened, epoch milliseconds.
    pub const CONNECTED_AT: &str = "connectedAt";
    /// When a sync field was last changed, epoch milliseconds.
    pub const UPDATED_AT: &str = "updatedAt";
    /// When DynamoDB may reap the item (its TTL attribute), epoch seconds.
    pub const TTL: &str = "ttl";
    /// On a refused connection's marker: when it was refused, epoch
    /// milliseconds. A store never overwrites a marker.
    pub const REFUSED_AT: &str = "refusedAt";
}

/// The registry item attributes lawcket writes itself; a sync field may not
/// take one of these names.
pub const RESERVED_ATTRIBUTES: &[&str] = &[
    attributes::CONNECTION_ID,
    attributes::DOMAIN_NAME,
    attributes::STAGE,
    attributes::CONNECTED_AT,
    attributes::UPDATED_AT,
    attributes::TTL,
    attributes::REFUSED_AT,
];

/// Whether `name` is one of the [`RESERVED_ATTRIBUTES`].
pub fn is_reserved(name: &str) -> bool {
    RESERVED_ATTRIBUTES.contains(&name)
}

/// Why a name cannot be a WebSocket subprotocol: RFC 6455 (section 4.1) makes
/// each one a `token` of RFC 2616, printable ASCII without separators.
pub fn check_subprotocol(name: &str) -> Result<(), String> {
    const SEPARATORS: &str = "()<>@,;:\\\"/[]?={} \t";
    if name.is_empty() {
        return Err("a subprotocol name cannot be empty".into());
    }
    match name
        .chars()
        .find(|&c| !c.is_ascii() || c.is_ascii_control() || SEPARATORS.contains(c))
    {
        Some(bad) => Err(format!(
            "subprotocol {name:?} holds {bad:?}; a subprotocol is a token (RFC 6455 section 4.1): \
             printable ASCII without spaces or any of ()<>@,;:\\\"/[]?={{}}"
        )),
        None => Ok(()),
    }
}

/// Longest dynamic sync value accepted unless configured, in characters.
pub const DEFAULT_MAX_LEN: usize = 128;

/// Characters a dynamic sync value may hold unless configured.
pub const DEFAULT_CHARS: &str = "a-zA-Z0-9-_.#@:";

/// A set of characters written as in `chars = "a-z0-9#-"`: `x-y` is the
/// inclusive range from `x` to `y`, any other character stands for itself (so
/// a `-` first or last is a plain `-`).
///
/// ```
/// use lawcket_rules::CharSet;
/// let set = CharSet::parse("a-z0-9#-").unwrap();
/// assert!(set.contains('q') && set.contains('#') && set.contains('-'));
/// assert!(!set.contains('Q'));
/// assert_eq!(
///     CharSet::parse("z-a").unwrap_err().to_string(),
///     "`z-a` is a backwards range; write `a-z`"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharSet {
    spec: String,
    /// Inclusive ranges; a single character is the range `c..=c`.
    ranges: Vec<(char, char)>,
}

/// Why a character-set spec was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CharSetError {
    /// The spec is empty, so no value could pass.
    Empty,
    /// A range whose start comes after its end, such as `z-a`.
    Backwards {
        /// The range's first character.
        from: char,
        /// The range's last character.
        to: char,
    },
}

impl fmt::Display for CharSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CharSetError::Empty => {
                f.write_str("`chars` lists the allowed characters, e.g. `chars = \"a-z0-9#\"`")
            }
            CharSetError::Backwards { from, to } => {
                write!(f, "`{from}-{to}` is a backwards range; write `{to}-{from}`")
            }
        }
    }
}

impl std::error::Error for CharSetError {}

impl CharSet {
    /// Parses a spec such as `a-zA-Z0-9_`.
    pub fn parse(spec: &str) -> Result<Self, CharSetError> {
        if spec.is_empty() {
            return Err(CharSetError::Empty);
        }
        let chars: Vec<char> = spec.chars().collect();
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if i + 2 < chars.len() && chars[i + 1] == '-' {
                let (from, to) = (chars[i], chars[i + 2]);
                if from > to {
                    return Err(CharSetError::Backwards { from, to });
                }
                ranges.push((from, to));
                i += 3;
            } else {
                ranges.push((chars[i], chars[i]));
                i += 1;
            }
        }
        Ok(CharSet {
            spec: spec.to_owned(),
            ranges,
        })
    }

    /// The built-in set, [`DEFAULT_CHARS`].
    pub fn default_set() -> Self {
        Self::parse(DEFAULT_CHARS).expect("DEFAULT_CHARS is a valid set")
    }

    /// Whether `c` is in the set.
    pub fn contains(&self, c: char) -> bool {
        self.ranges
            .iter()
            .any(|&(from, to)| (from..=to).contains(&c))
    }

    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.spec
    }
}

/// The rules a dynamic sync value must pass: not empty, at most `max_len`
/// characters, every character in `chars`.
///
/// ```
/// use lawcket_rules::{CharSet, ValueError, ValueRules};
/// let rules = ValueRules::new(3, CharSet::parse("a-z").unwrap());
/// assert_eq!(rules.check("abc"), Ok(()));
/// assert_eq!(rules.check("abcd"), Err(ValueError::TooLong { length: 4 }));
/// assert_eq!(rules.check("aB"), Err(ValueError::Disallowed('B')));
/// assert_eq!(rules.check(""), Err(ValueError::Empty));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueRules {
    /// Longest value accepted, in characters.
    pub max_len: usize,
    /// The characters a value may hold.
    pub chars: CharSet,
}

/// Why a value broke its [`ValueRules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueError {
    /// The value is empty.
    Empty,
    /// The value has `length` characters, more than `max_len`.
    TooLong {
        /// The value's length in characters.
        length: usize,
    },
    /// The value holds a character outside the set (the first one found).
    Disallowed(char),
}

impl Default for ValueRules {
    fn default() -> Self {
        ValueRules::new(DEFAULT_MAX_LEN, CharSet::default_set())
    }
}

/// A `max_len` of zero: no value could pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroMaxLen;

impl fmt::Display for ZeroMaxLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`max_len` is a number of characters, at least 1")
    }
}

impl std::error::Error for ZeroMaxLen {}

impl ValueRules {
    /// Rules with this length bound and character set (a `max_len` of 0 is
    /// taken as it is; see [`ValueRules::try_new`]).
    pub fn new(max_len: usize, chars: CharSet) -> Self {
        ValueRules { max_len, chars }
    }

    /// Rules with this length bound and character set, refusing a bound of
    /// zero, which no value could meet.
    pub fn try_new(max_len: usize, chars: CharSet) -> Result<Self, ZeroMaxLen> {
        match max_len {
            0 => Err(ZeroMaxLen),
            _ => Ok(ValueRules::new(max_len, chars)),
        }
    }

    /// Checks `value`, reporting the first rule it breaks.
    pub fn check(&self, value: &str) -> Result<(), ValueError> {
        let length = value.chars().count();
        if length == 0 {
            return Err(ValueError::Empty);
        }
        if length > self.max_len {
            return Err(ValueError::TooLong { length });
        }
        match value.chars().find(|c| !self.chars.contains(*c)) {
            Some(bad) => Err(ValueError::Disallowed(bad)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(spec: &str) -> CharSet {
        CharSet::parse(spec).unwrap()
    }

    #[test]
    fn ranges_and_literals() {
        assert!(set("a-z").contains('q'));
        assert!(!set("a-z").contains('Q'));
        assert!(set("a-z-").contains('-'));
        assert!(set("-a").contains('-'));
        assert!(!set("-a").contains('b'));
        assert!(set("a-").contains('-'));
        let default = CharSet::default_set();
        for c in ['a', 'Z', '0', '9', '-', '_', '.', '#', '@', ':'] {
            assert!(default.contains(c), "{c}");
        }
        for c in [' ', '<', '/', '?', '&', 'é'] {
            assert!(!default.contains(c), "{c}");
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        assert_eq!(CharSet::parse(""), Err(CharSetError::Empty));
        assert_eq!(
            CharSet::parse("a-z9-0"),
            Err(CharSetError::Backwards { from: '9', to: '0' })
        );
        // A single-character range is fine.
        assert!(CharSet::parse("a-a").is_ok());
    }

    #[test]
    fn values_report_the_first_broken_rule() {
        let rules = ValueRules::new(4, set("a-z"));
        assert_eq!(rules.check(""), Err(ValueError::Empty));
        assert_eq!(rules.check("abcde"), Err(ValueError::TooLong { length: 5 }));
        assert_eq!(rules.check("ab!"), Err(ValueError::Disallowed('!')));
        assert_eq!(rules.check("abcd"), Ok(()));
        // Length counts characters, not bytes.
        let wide = ValueRules::new(2, set("é"));
        assert_eq!(wide.check("éé"), Ok(()));
    }

    #[test]
    fn a_zero_max_len_is_refused() {
        assert_eq!(ValueRules::try_new(0, set("a")), Err(ZeroMaxLen));
        assert!(ValueRules::try_new(1, set("a")).is_ok());
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved("ttl") && is_reserved("connectionId"));
        assert!(!is_reserved("channel"));
    }

    #[test]
    fn subprotocols_are_tokens() {
        assert!(check_subprotocol("graphql-transport-ws").is_ok());
        assert!(check_subprotocol("v12.stomp").is_ok());
        assert!(check_subprotocol("").is_err());
        for bad in ["a b", "a,b", "chat/1", "é", "a\tb"] {
            assert!(check_subprotocol(bad).is_err(), "{bad:?}");
        }
    }
}
