//! The attribute's arguments:
//! `table = <expr>`, `sync(key = literal | query(..) | header(..), ...)`,
//! `index(key = "index-name")`, `ttl = <seconds>`, `manual_sync`,
//! `middleware = [path, ...]`, `plugins = [path, ...]`, `concurrency = <n>`,
//! `subprotocols = ["name", ...]`, `authorizer = path`,
//! `local(page = "file.html")`, `crate = "path"`.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Ident, Lit, LitInt, LitStr, Path};

use crate::ctxt::Ctxt;

const KNOWN: &str = "`table`, `sync`, `index`, `ttl`, `manual_sync`, `middleware`, `plugins`, \
                     `concurrency`, `subprotocols`, `authorizer`, `local` and `crate`";

/// Arguments given at most once (`sync(...)` and `index(...)` may be split).
const SINGLE: &[&str] = &[
    "table",
    "ttl",
    "crate",
    "manual_sync",
    "middleware",
    "plugins",
    "concurrency",
    "subprotocols",
    "authorizer",
    "local",
];

#[derive(Default)]
pub(crate) struct Args {
    pub(crate) table: Option<Expr>,
    pub(crate) sync: Vec<SyncField>,
    pub(crate) index: Vec<(Ident, LitStr)>,
    pub(crate) ttl: Option<LitInt>,
    pub(crate) manual_sync: bool,
    pub(crate) middleware: Vec<Path>,
    pub(crate) plugins: Vec<Path>,
    pub(crate) concurrency: Option<LitInt>,
    pub(crate) subprotocols: Vec<LitStr>,
    pub(crate) authorizer: Option<Path>,
    pub(crate) local_page: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    /// Every key written in `sync(...)`, valid or not (for `index` and the
    /// reserved-name and duplicate checks).
    pub(crate) sync_keys: Vec<Ident>,
}

pub(crate) struct SyncField {
    pub(crate) key: Ident,
    pub(crate) value: SyncValue,
}

pub(crate) enum SyncValue {
    Str(LitStr),
    Int(Expr),
    Bool(syn::LitBool),
    /// `query("param", ...)`, `header("name", ...)` or `authorizer("key", ...)`.
    Dynamic(Dynamic),
}

pub(crate) struct Dynamic {
    pub(crate) origin: Ident,
    pub(crate) key: LitStr,
    pub(crate) default: Option<LitStr>,
    pub(crate) max_len: Option<LitInt>,
    pub(crate) chars: Option<LitStr>,
}

pub(crate) fn parse(cx: &mut Ctxt, tokens: TokenStream) -> Args {
    let mut args = Args::default();
    let mut seen = Vec::new();
    let parser = syn::meta::parser(|meta| argument(cx, &mut args, &mut seen, meta));
    // The checks below need every argument: a syntax error may have stopped
    // parsing before `table` or before the `sync(...)` an index names.
    if let Err(error) = parser.parse2(tokens) {
        cx.push(error);
        return args;
    }
    if args.table.is_none() {
        cx.push(syn::Error::new(
            Span::call_site(),
            "missing `table = ...`: name the DynamoDB connections table, e.g. \
             `#[lawcket::handler(table = env!(\"CONNECTIONS_TABLE\"))]`",
        ));
    }
    for (field, _) in &args.index {
        // Against every key written, even one whose value was rejected:
        // that mistake is already reported.
        if !args.sync_keys.contains(field) {
            cx.error_spanned_by(
                field,
                format!("`index({field} = ...)` names no sync field; declare it in `sync({field} = ...)`"),
            );
        }
    }
    args
}

fn argument(
    cx: &mut Ctxt,
    args: &mut Args,
    seen: &mut Vec<String>,
    meta: ParseNestedMeta,
) -> syn::Result<()> {
    let path = meta.path.clone();
    let name = path.get_ident().map(|i| i.to_string()).unwrap_or_default();
    // `sync(...)` may be split over several groups; the others are single values.
    if SINGLE.contains(&name.as_str()) {
        if seen.contains(&name) {
            cx.error_spanned_by(&path, format!("duplicate `{name}` argument; give it once"));
            return skip_value(&meta);
        }
        seen.push(name.clone());
    }
    match name.as_str() {
        "table" => args.table = Some(meta.value()?.parse()?),
        "sync" => {
            if !group(&meta) {
                cx.error_spanned_by(&path, "expected `sync(key = value, ...)`");
                return skip_value(&meta);
            }
            meta.parse_nested_meta(|field| sync_field(cx, args, field))?;
        }
        "ttl" => match meta.value()?.parse()? {
            Lit::Int(int) => match int.base10_parse::<u64>() {
                Ok(0) => cx.error_spanned_by(&int, "`ttl` must be at least 1 second"),
                // Re-written unsuffixed: `600u32` would not fit `Duration::from_secs`.
                Ok(secs) => args.ttl = Some(LitInt::new(&secs.to_string(), int.span())),
                Err(e) => cx.push(e),
            },
            other => cx.error_spanned_by(other, "`ttl` is a number of seconds, e.g. `ttl = 7800`"),
        },
        "index" => {
            if !group(&meta) {
                cx.error_spanned_by(&path, "expected `index(sync_key = \"index-name\")`");
                return skip_value(&meta);
            }
            meta.parse_nested_meta(|entry| index_entry(cx, args, entry))?;
        }
        "manual_sync" => {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                cx.error_spanned_by(&path, "`manual_sync` is a flag: write it alone, without a value");
                return skip_value(&meta);
            }
            args.manual_sync = true;
        }
        "middleware" | "plugins" => {
            let list: Expr = meta.value()?.parse()?;
            let paths = paths(cx, &name, &list);
            if name == "middleware" {
                args.middleware = paths;
            } else {
                args.plugins = paths;
            }
        }
        "concurrency" => match meta.value()?.parse()? {
            Lit::Int(int) => match int.base10_parse::<usize>() {
                Ok(0) => cx.error_spanned_by(&int, "`concurrency` must be at least 1"),
                Ok(n) => args.concurrency = Some(LitInt::new(&n.to_string(), int.span())),
                Err(e) => cx.push(e),
            },
            other => cx.error_spanned_by(
                other,
                "`concurrency` is the number of posts in flight during a mass publish, e.g. `concurrency = 32`",
            ),
        },
        "subprotocols" => {
            let list: Expr = meta.value()?.parse()?;
            args.subprotocols = subprotocols(cx, &list);
        }
        "authorizer" => match meta.value()?.parse()? {
            Expr::Path(p) if p.qself.is_none() => args.authorizer = Some(p.path),
            other => {
                let example = match &other {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) if s.parse::<Path>().is_ok() => s.value(),
                    _ => "check".to_owned(),
                };
                cx.error_spanned_by(
                    other,
                    format!("`authorizer` names an async fn: write `authorizer = {example}`"),
                );
            }
        },
        "local" => {
            if !group(&meta) {
                cx.error_spanned_by(&path, "expected `local(page = \"index.html\")`");
                return skip_value(&meta);
            }
            let mut given = false;
            meta.parse_nested_meta(|entry| {
                if !entry.path.is_ident("page") {
                    cx.error_spanned_by(&entry.path, "`local(...)` takes `page = \"file.html\"`");
                    return skip_value(&entry);
                }
                let page: LitStr = entry.value()?.parse()?;
                if given {
                    cx.error_spanned_by(&entry.path, "duplicate `page`; give it once");
                } else if page.value().is_empty() {
                    cx.error_spanned_by(&page, "`page` is a file path relative to this source file");
                }
                given = true;
                args.local_page.get_or_insert(page);
                Ok(())
            })?;
        }
        "crate" => {
            let lit: LitStr = meta.value()?.parse()?;
            match lit.parse::<Path>() {
                Ok(krate) => args.krate = Some(krate),
                Err(_) => cx
                    .error_spanned_by(&lit, "`crate` must be a path, e.g. `crate = \"::lawcket\"`"),
            }
        }
        _ => {
            cx.error_spanned_by(
                &path,
                format!(
                    "unknown argument `{}`; lawcket::handler takes {KNOWN}",
                    spelled(&path)
                ),
            );
            skip_value(&meta)?;
        }
    }
    Ok(())
}

fn sync_field(cx: &mut Ctxt, args: &mut Args, field: ParseNestedMeta) -> syn::Result<()> {
    let Some(key) = field.path.get_ident().cloned() else {
        cx.error_spanned_by(&field.path, "a sync key is a plain name, e.g. `channel`");
        return skip_value(&field);
    };
    let value: Expr = field.value()?.parse()?;
    args.sync_keys.push(key.clone());
    let parsed = match &value {
        Expr::Call(call) => dynamic(cx, call).map(SyncValue::Dynamic),
        _ => literal(&value)
            .map_err(|message| cx.error_spanned_by(&value, message))
            .ok(),
    };
    if let Some(value) = parsed {
        args.sync.push(SyncField { key, value });
    }
    Ok(())
}

fn index_entry(cx: &mut Ctxt, args: &mut Args, entry: ParseNestedMeta) -> syn::Result<()> {
    let Some(field) = entry.path.get_ident().cloned() else {
        cx.error_spanned_by(
            &entry.path,
            "an index is named for a sync key, e.g. `index(channel = \"channel-index\")`",
        );
        return skip_value(&entry);
    };
    let value: Expr = entry.value()?.parse()?;
    match value {
        Expr::Lit(ExprLit { lit: Lit::Str(name), .. }) if !name.value().is_empty() => {
            if args.index.iter().any(|(f, _)| *f == field) {
                cx.error_spanned_by(&field, format!("duplicate index for `{field}`"));
            } else {
                args.index.push((field, name));
            }
        }
        other => cx.error_spanned_by(
            other,
            "the index name is a non-empty string literal, e.g. `index(channel = \"channel-index\")`",
        ),
    }
    Ok(())
}

/// `[a, b::c]`: each a path to an async fn, none twice.
fn paths(cx: &mut Ctxt, argument: &str, list: &Expr) -> Vec<Path> {
    let Expr::Array(array) = list else {
        let example = match list {
            // A single fn, or its name in a string: show it in brackets.
            Expr::Path(p) => spelled(&p.path),
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) if s.parse::<Path>().is_ok() => s.value(),
            _ => "auth, audit".to_owned(),
        };
        cx.error_spanned_by(
            list,
            format!("`{argument}` is a list of async fns: write `{argument} = [{example}]`"),
        );
        return Vec::new();
    };
    let mut paths: Vec<Path> = Vec::new();
    for element in &array.elems {
        match element {
            Expr::Path(p) if p.qself.is_none() => {
                // Compared as written: `syn::Path: PartialEq` needs syn's
                // "extra-traits" feature, which this crate does not enable.
                let name = spelled(&p.path);
                if paths.iter().any(|seen| spelled(seen) == name) {
                    cx.error_spanned_by(element, format!("`{name}` is listed twice"));
                } else {
                    paths.push(p.path.clone());
                }
            }
            other => cx.error_spanned_by(
                other,
                format!(
                    "`{argument}` lists async fns by name (a path), e.g. `{argument} = [auth]`"
                ),
            ),
        }
    }
    paths
}

/// `subprotocols = ["a", "b"]`: each a token, none twice, at least one.
fn subprotocols(cx: &mut Ctxt, list: &Expr) -> Vec<LitStr> {
    const EXAMPLE: &str = "`subprotocols = [\"graphql-transport-ws\"]`";
    let Expr::Array(array) = list else {
        cx.error_spanned_by(
            list,
            format!("`subprotocols` is a list of string literals, e.g. {EXAMPLE}"),
        );
        return Vec::new();
    };
    if array.elems.is_empty() {
        cx.error_spanned_by(
            list,
            format!("`subprotocols` needs at least one name, e.g. {EXAMPLE}"),
        );
    }
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array.elems {
        match element {
            Expr::Lit(ExprLit {
                lit: Lit::Str(name),
                ..
            }) => {
                if let Err(problem) = lawcket_rules::check_subprotocol(&name.value()) {
                    cx.error_spanned_by(name, problem);
                } else if names.iter().any(|n| n.value() == name.value()) {
                    cx.error_spanned_by(name, format!("{:?} is listed twice", name.value()));
                } else {
                    names.push(name.clone());
                }
            }
            other => cx.error_spanned_by(
                other,
                format!("`subprotocols` lists string literals, e.g. {EXAMPLE}"),
            ),
        }
    }
    names
}

/// `query("param", default = "x", max_len = 32, chars = "a-z0-9")`,
/// `header(...)` or `authorizer(...)`.
fn dynamic(cx: &mut Ctxt, call: &syn::ExprCall) -> Option<Dynamic> {
    let origin = match &*call.func {
        Expr::Path(p)
            if p.path.is_ident("query")
                || p.path.is_ident("header")
                || p.path.is_ident("authorizer") =>
        {
            p.path.get_ident().cloned()?
        }
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "unknown sync value `{}(...)`; a sync value is a string, integer or bool \
                     literal, `query(\"param\", ...)`, `header(\"name\", ...)` or \
                     `authorizer(\"principalId\", ...)`",
                    spelled(other)
                ),
            );
            return None;
        }
    };
    let mut args = call.args.iter();
    let key = match args.next() {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(key), ..
        })) if !key.value().is_empty() => key.clone(),
        other => {
            let (what, example) = if origin == "query" {
                ("the query parameter's name", "channel")
            } else if origin == "header" {
                ("the header's name", "x-channel")
            } else {
                (
                    "`principalId` or a key of the authorizer's context",
                    "principalId",
                )
            };
            let message = format!(
                "`{origin}(...)` starts with {what}, a non-empty string, e.g. `{origin}(\"{example}\")`"
            );
            match other {
                Some(other) => cx.error_spanned_by(other, message),
                None => cx.error_spanned_by(call, message),
            }
            return None;
        }
    };
    let mut dynamic = Dynamic {
        origin,
        key,
        default: None,
        max_len: None,
        chars: None,
    };
    let mut ok = true;
    for option in args {
        let Expr::Assign(assign) = option else {
            cx.error_spanned_by(
                option,
                "expected `default = \"..\"`, `max_len = N` or `chars = \"..\"`",
            );
            ok = false;
            continue;
        };
        let name = match &*assign.left {
            Expr::Path(p) => p
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        match (name.as_str(), &*assign.right) {
            (
                "default",
                Expr::Lit(ExprLit {
                    lit: Lit::Str(v), ..
                }),
            ) if dynamic.default.is_none() => dynamic.default = Some(v.clone()),
            (
                "chars",
                Expr::Lit(ExprLit {
                    lit: Lit::Str(v), ..
                }),
            ) if dynamic.chars.is_none() => dynamic.chars = Some(v.clone()),
            (
                "max_len",
                Expr::Lit(ExprLit {
                    lit: Lit::Int(v), ..
                }),
            ) if dynamic.max_len.is_none() => match v.base10_parse::<usize>() {
                Err(_) => {
                    cx.error_spanned_by(v, "`max_len` is a number of characters, at least 1");
                    ok = false;
                }
                Ok(n) => dynamic.max_len = Some(LitInt::new(&n.to_string(), v.span())),
            },
            ("default", _) if dynamic.default.is_some() => {
                cx.error_spanned_by(&assign.left, "duplicate `default`; give it once");
                ok = false;
            }
            ("chars", _) if dynamic.chars.is_some() => {
                cx.error_spanned_by(&assign.left, "duplicate `chars`; give it once");
                ok = false;
            }
            ("max_len", _) if dynamic.max_len.is_some() => {
                cx.error_spanned_by(&assign.left, "duplicate `max_len`; give it once");
                ok = false;
            }
            ("default" | "chars", value) => {
                cx.error_spanned_by(value, format!("`{name}` is a string literal"));
                ok = false;
            }
            ("max_len", value) => {
                cx.error_spanned_by(
                    value,
                    "`max_len` is an integer literal, e.g. `max_len = 32`",
                );
                ok = false;
            }
            _ => {
                cx.error_spanned_by(
                    &assign.left,
                    format!(
                        "unknown option `{}`; expected `default`, `max_len` or `chars`",
                        spelled(&assign.left)
                    ),
                );
                ok = false;
            }
        }
    }
    // A field with a rejected option is dropped here, so `check` never
    // checks its default against the built-in rules instead of the user's.
    ok.then_some(dynamic)
}

fn literal(expr: &Expr) -> Result<SyncValue, &'static str> {
    const NOT_LITERAL: &str = "a sync value must be a string, integer or bool literal, \
         `query(\"param\", ...)`, `header(\"name\", ...)` or `authorizer(\"principalId\", ...)`, \
         e.g. `channel = \"#general\"`";
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(s) => Ok(SyncValue::Str(s.clone())),
            Lit::Bool(b) => Ok(SyncValue::Bool(b.clone())),
            Lit::Int(i) if matches!(i.suffix(), "" | "i64") => Ok(SyncValue::Int(expr.clone())),
            Lit::Int(_) => Err("an integer sync value is stored as i64: drop the suffix"),
            _ => Err(NOT_LITERAL),
        },
        // A negative integer is a unary minus on a literal.
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: inner,
            ..
        }) if matches!(
            &**inner,
            Expr::Lit(ExprLit {
                lit: Lit::Int(_),
                ..
            })
        ) =>
        {
            literal(inner).map(|_| SyncValue::Int(expr.clone()))
        }
        _ => Err(NOT_LITERAL),
    }
}

/// Whether a non-empty `(...)` follows: `sync()` would otherwise be syn's
/// "unexpected end of input", which also stops parsing the other arguments.
fn group(meta: &ParseNestedMeta) -> bool {
    match meta.input.fork().parse::<proc_macro2::Group>() {
        Ok(group) => {
            group.delimiter() == proc_macro2::Delimiter::Parenthesis && !group.stream().is_empty()
        }
        Err(_) => false,
    }
}

/// Tokens as the user wrote them, for messages: `a :: b` becomes `a::b`.
pub(crate) fn spelled(tokens: &impl quote::ToTokens) -> String {
    tokens.to_token_stream().to_string().replace(' ', "")
}

/// Consumes `= value` or `(...)` after an argument we reported, so parsing can
/// go on and report the next mistake too.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}
