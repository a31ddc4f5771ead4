//! What the user's fn must be (`async`, not generic, no `self`, not `main`),
//! and the parsed arguments checked by the rules the runtime applies too
//! (`lawcket_rules`).

use lawcket_rules::{CharSet, ValueError, ValueRules};
use syn::{FnArg, ItemFn};

use crate::args::{Args, Dynamic, SyncValue};
use crate::ctxt::Ctxt;

/// The sync keys and dynamic values by the rules the runtime applies too:
/// reserved and repeated keys, the `chars` notation, `max_len`, and a default
/// that breaks its field's own rules (it would refuse every connection without
/// the parameter: say so now, on the default, rather than at run time).
pub(crate) fn arguments(cx: &mut Ctxt, args: &Args) {
    for (i, key) in args.sync_keys.iter().enumerate() {
        let name = key.to_string();
        if lawcket_rules::is_reserved(&name) {
            cx.error_spanned_by(
                key,
                format!(
                    "`{name}` is written by lawcket itself; choose another sync key (reserved: {})",
                    lawcket_rules::RESERVED_ATTRIBUTES.join(", ")
                ),
            );
        } else if args.sync_keys[..i].contains(key) {
            cx.error_spanned_by(key, format!("duplicate sync key `{name}`"));
        }
    }
    for field in &args.sync {
        if let SyncValue::Dynamic(dynamic) = &field.value {
            dynamic_rules(cx, dynamic);
            if dynamic.origin == "authorizer" && args.authorizer.is_none() {
                cx.error_spanned_by(
                    &dynamic.origin,
                    "`authorizer(..)` reads what the authorizer returned, and there is none: \
                     add `authorizer = your_fn` to the attribute",
                );
            }
        }
    }
}

fn dynamic_rules(cx: &mut Ctxt, dynamic: &Dynamic) {
    let chars = match &dynamic.chars {
        Some(lit) => CharSet::parse(&lit.value()).map_err(|e| cx.error_spanned_by(lit, e)),
        None => Ok(CharSet::default_set()),
    };
    let max_len = match &dynamic.max_len {
        Some(lit) => lit.base10_parse::<usize>().unwrap_or(0),
        None => lawcket_rules::DEFAULT_MAX_LEN,
    };
    let Ok(chars) = chars else { return };
    let rules = match ValueRules::try_new(max_len, chars) {
        Ok(rules) => rules,
        Err(error) => {
            if let Some(lit) = &dynamic.max_len {
                cx.error_spanned_by(lit, error);
            }
            return;
        }
    };
    if let Some(default) = &dynamic.default {
        if let Err(message) = check_default(dynamic, &rules, &default.value()) {
            cx.error_spanned_by(default, message);
        }
    }
}

pub(crate) fn function(cx: &mut Ctxt, function: &ItemFn) {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "the lawcket handler must be an `async fn`; write `async fn`",
        );
    }
    if sig.ident == "main" {
        cx.error_spanned_by(
            &sig.ident,
            "the lawcket handler cannot be named `main`: the attribute generates `main` itself; rename it (e.g. `handler`)",
        );
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics,
            "the lawcket handler cannot be generic: it is called with concrete types only",
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            "the lawcket handler cannot have a `where` clause",
        );
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            cx.error_spanned_by(
                receiver,
                "the lawcket handler cannot take `self`: it must be a free function",
            );
        }
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "the lawcket handler cannot be a `const fn`");
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(unsafety, "the lawcket handler cannot be an `unsafe fn`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "the lawcket handler cannot have an `extern` ABI");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "the lawcket handler cannot be variadic");
    }
}

/// The default checked by the runtime's own rules (`lawcket_rules`), the
/// message naming the rule the user wrote or the built-in one they can change.
fn check_default(dynamic: &Dynamic, rules: &ValueRules, value: &str) -> Result<(), String> {
    let max_len = rules.max_len;
    let message = match rules.check(value) {
        Ok(()) => return Ok(()),
        Err(ValueError::Empty) => "an empty default is refused like an empty value; leave \
             `default` out to make the field required"
            .to_owned(),
        Err(ValueError::TooLong { length }) => {
            let rule = match &dynamic.max_len {
                Some(_) => format!("`max_len = {max_len}`"),
                None => format!("the built-in `max_len` of {max_len}; raise it with `max_len = N`"),
            };
            format!("the default is {length} characters long, over {rule}")
        }
        Err(ValueError::Disallowed(bad)) => {
            let rule = match &dynamic.chars {
                Some(c) => format!("`chars = \"{}\"`", c.value()),
                None => format!(
                    "the built-in `chars = \"{}\"`; widen it with `chars = \"..\"`",
                    lawcket_rules::DEFAULT_CHARS
                ),
            };
            format!("the default holds {bad:?}, which is not allowed by {rule}")
        }
    };
    Err(message)
}
