//! Sync fields: what is stored with each connection besides what lawcket writes
//! itself. Fixed values come from the attribute; dynamic ones from the
//! `$connect` request, checked by the same rules the macro applies at compile
//! time (`lawcket_rules`) before anything is stored.

use std::borrow::Cow;
use std::time::Duration;

use lawcket_rules::{CharSet, CharSetError, ValueError, ValueRules};

use crate::error::Error;
use crate::event::Event;
use serde_json::Value;

/// A value stored with every connection (`sync(channel = "#general")`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncValue {
    /// Stored as a DynamoDB string.
    Str(String),
    /// Stored as a DynamoDB number.
    Int(i64),
    /// Stored as a DynamoDB boolean.
    Bool(bool),
}

impl From<&str> for SyncValue {
    fn from(value: &str) -> Self {
        SyncValue::Str(value.to_owned())
    }
}

impl From<i64> for SyncValue {
    fn from(value: i64) -> Self {
        SyncValue::Int(value)
    }
}

impl From<bool> for SyncValue {
    fn from(value: bool) -> Self {
        SyncValue::Bool(value)
    }
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
    /// Parsed once; a bad spec is kept so the field refuses to start.
    chars: Result<CharSet, CharSetError>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Origin {
    Query,
    Header,
    Authorizer,
}

impl Dynamic {
    /// The value of the query-string parameter `param`.
    pub fn query(param: &str) -> Self {
        Self::new(Origin::Query, param)
    }

    /// The value of the request header `name` (case-insensitive).
    pub fn header(name: &str) -> Self {
        Self::new(Origin::Header, name)
    }

    /// A value the authorizer returned: `"principalId"` or a key of its
    /// context (`requestContext.authorizer`); a number or boolean is stored
    /// as its text.
    pub fn authorizer(key: &str) -> Self {
        Self::new(Origin::Authorizer, key)
    }

    /// Whether the value comes from the authorizer.
    pub(crate) fn needs_authorizer(&self) -> bool {
        self.origin == Origin::Authorizer
    }

    fn new(origin: Origin, key: &str) -> Self {
        let rules = ValueRules::default();
        Dynamic {
            origin,
            key: key.to_owned(),
            default: None,
            max_len: rules.max_len,
            chars: Ok(rules.chars),
        }
    }

    /// The value used when the request has none; without it the field is required.
    pub fn default(mut self, value: &str) -> Self {
        self.default = Some(value.to_owned());
        self
    }

    /// Longest value accepted, in characters (default [`DEFAULT_MAX_LEN`](crate::DEFAULT_MAX_LEN)).
    pub fn max_len(mut self, chars: usize) -> Self {
        self.max_len = chars;
        self
    }

    /// The characters a value may hold, `a-z` meaning a range (default
    /// [`DEFAULT_CHARS`](crate::DEFAULT_CHARS)). A `-` first or last stands for
    /// itself. An empty set or a backwards range (`z-a`) is a configuration
    /// error: the process refuses to start with it.
    pub fn chars(mut self, allowed: &str) -> Self {
        self.chars = CharSet::parse(allowed);
        self
    }

    /// The value for `field` from `event`, checked; a 400 rejection naming the
    /// field when it is missing or invalid.
    pub fn value(&self, field: &str, event: &Event) -> Result<String, Error> {
        let found = match self.origin {
            Origin::Query => event.query(&self.key).map(Cow::Borrowed),
            Origin::Header => event.header(&self.key).map(Cow::Borrowed),
            Origin::Authorizer => {
                let fields = &event.request().request_context.authorizer.fields;
                match fields.get(&self.key) {
                    Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                        Some(Cow::Owned(v.to_string()))
                    }
                    _ => None,
                }
            }
        };
        let Some(value) = found.or(self.default.as_deref().map(Cow::Borrowed)) else {
            let origin = match self.origin {
                Origin::Query => "query parameter",
                Origin::Header => "header",
                // The server's own mistake, not the client's.
                Origin::Authorizer => {
                    return Err(Error::Config(format!(
                        "sync field `{field}`: the authorizer returned no `{}` (in \
                         `requestContext.authorizer`)",
                        self.key
                    )))
                }
            };
            return Err(Error::reject(
                400,
                format!(
                    "missing sync field `{field}`: connect with the {origin} `{}`",
                    self.key
                ),
            ));
        };
        self.check(field, &value)?;
        Ok(value.into_owned())
    }

    /// Checks `value` against the length bound and the allowed characters: a
    /// 400 rejection naming the field and the rule it breaks.
    pub fn check(&self, field: &str, value: &str) -> Result<(), Error> {
        let rules = self.rules(field)?;
        let problem = match rules.check(value) {
            Ok(()) => return Ok(()),
            Err(ValueError::Empty) => "the value is empty".to_owned(),
            Err(ValueError::TooLong { length }) => {
                format!("{length} characters, over the limit of {}", rules.max_len)
            }
            Err(ValueError::Disallowed(bad)) => {
                format!("`{bad}` is not allowed (allowed: {})", rules.chars.as_str())
            }
        };
        Err(Error::reject(
            400,
            format!("sync field `{field}`: {problem}"),
        ))
    }

    fn rules(&self, field: &str) -> Result<ValueRules, Error> {
        match &self.chars {
            Ok(chars) => Ok(ValueRules::new(self.max_len, chars.clone())),
            Err(error) => Err(Error::Config(format!("sync field `{field}`: {error}"))),
        }
    }

    /// The configuration's own mistakes: a bad character set, a zero length,
    /// a default its own rules would refuse.
    fn validate(&self, field: &str) -> Result<(), Error> {
        let rules = self.rules(field)?;
        ValueRules::try_new(rules.max_len, rules.chars)
            .map_err(|e| Error::Config(format!("sync field `{field}`: {e}")))?;
        match &self.default {
            Some(default) => self.check(field, default).map_err(|e| {
                Error::Config(format!(
                    "the default of sync field `{field}` is refused: {e}"
                ))
            }),
            None => Ok(()),
        }
    }
}

/// Where a sync field's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    /// The same value for every connection (`sync(channel = "#general")`).
    Fixed(SyncValue),
    /// Taken from the `$connect` request (`sync(channel = query("channel"))`).
    Dynamic(Dynamic),
}

/// A declared sync field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SyncField {
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

    /// Whether `value` may be written to this field later: only a dynamic
    /// field changes, and only to a string its rules accept. A fixed field is
    /// the same for every connection.
    pub(crate) fn check(&self, value: &SyncValue) -> Result<(), Error> {
        let field = &self.name;
        match (&self.source, value) {
            // What the authorizer vouched for is not the handler's to change.
            // The handler's mistake, not the client's.
            (Source::Dynamic(dynamic), _) if dynamic.needs_authorizer() => Err(Error::Config(
                format!("sync field `{field}` comes from the authorizer; it cannot be changed"),
            )),
            (Source::Dynamic(dynamic), SyncValue::Str(s)) => dynamic.check(field, s),
            (Source::Dynamic(_), _) => Err(Error::reject(
                400,
                format!("sync field `{field}` holds text; it cannot hold {value:?}"),
            )),
            (Source::Fixed(fixed), _) => Err(Error::reject(
                400,
                format!(
                    "sync field `{field}` is fixed ({fixed:?} for every connection); only \
                     fields taken from the request (`query(..)`, `header(..)`) change"
                ),
            )),
        }
    }
}

/// What is stored with each connection: the sync fields and the item's lifetime.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Schema {
    pub(crate) fields: Vec<SyncField>,
    pub(crate) ttl: Duration,
}

impl Schema {
    /// The declared field `name`, or a 400 naming the declared ones.
    pub(crate) fn field(&self, name: &str) -> Result<&SyncField, Error> {
        self.fields.iter().find(|f| f.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
            Error::reject(
                400,
                format!(
                    "`{name}` is not a declared sync field (declared: {})",
                    names.join(", ")
                ),
            )
        })
    }

    /// The mistakes `#[lawcket::handler]` refuses at compile time, refused again
    /// for configurations built by hand.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (i, field) in self.fields.iter().enumerate() {
            let name = &field.name;
            if lawcket_rules::is_reserved(name) {
                return Err(Error::Config(format!(
                    "sync field `{name}` is written by lawcket itself (reserved: {})",
                    lawcket_rules::RESERVED_ATTRIBUTES.join(", ")
                )));
            }
            if self.fields[..i].iter().any(|f| f.name == *name) {
                return Err(Error::Config(format!(
                    "sync field `{name}` is declared twice"
                )));
            }
            if let Source::Dynamic(dynamic) = &field.source {
                dynamic.validate(name)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: Vec<(&str, Source)>) -> Schema {
        Schema {
            fields: fields
                .into_iter()
                .map(|(name, source)| SyncField {
                    name: name.to_owned(),
                    source,
                })
                .collect(),
            ttl: crate::limits::DEFAULT_TTL,
        }
    }

    #[test]
    fn what_the_authorizer_vouched_for_cannot_be_changed() {
        let field = SyncField {
            name: "user".into(),
            source: Source::Dynamic(Dynamic::authorizer("principalId")),
        };
        let refused = field.check(&SyncValue::from("mallory")).unwrap_err();
        assert!(matches!(refused, Error::Config(_)), "{refused}");
        assert!(
            refused.to_string().contains("comes from the authorizer"),
            "{refused}"
        );
    }

    #[test]
    fn length_and_emptiness() {
        let d = Dynamic::query("c").max_len(3);
        assert!(d.check("c", "abc").is_ok());
        let err = d.check("c", "abcd").unwrap_err();
        assert!(err
            .to_string()
            .contains("4 characters, over the limit of 3"));
        assert_eq!(err.status(), 400);
        assert!(d.check("c", "").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn a_backwards_range_is_refused_at_start_and_never_accepts() {
        let dynamic = Dynamic::query("c").chars("z-a");
        let err = dynamic.check("c", "m").unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        let err = schema(vec![("c", Source::Dynamic(dynamic))])
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: sync field `c`: `z-a` is a backwards range; write `a-z`"
        );
    }

    #[test]
    fn configurations_the_macro_refuses_are_refused_at_start() {
        let fixed = || Source::Fixed(SyncValue::from("x"));
        let reserved = schema(vec![("ttl", fixed())]).validate().unwrap_err();
        assert!(reserved.to_string().contains("written by lawcket itself"));
        let twice = schema(vec![("a", fixed()), ("a", fixed())])
            .validate()
            .unwrap_err();
        assert!(twice.to_string().contains("declared twice"));
        let default = Dynamic::query("c").chars("a-z").default("ABC");
        let err = schema(vec![("c", Source::Dynamic(default))])
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("the default of sync field `c`"),
            "{err}"
        );
        let ok = Dynamic::query("c").default("#general");
        assert!(schema(vec![("c", Source::Dynamic(ok)), ("d", fixed())])
            .validate()
            .is_ok());
    }
}
