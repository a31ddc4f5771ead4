//! The attribute's arguments:
//! `table = <expr>`, `sync(key = literal, ...)`, `ttl = <seconds>`, `crate = "path"`.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Ident, Lit, LitInt, LitStr, Path};

use crate::ctxt::Ctxt;

/// Attributes the runtime writes itself (keep in step with
/// `lawcket_runtime::RESERVED_ATTRIBUTES`; tests/ui.rs checks them).
const RESERVED: &[&str] = &[
    "connectionId",
    "domainName",
    "stage",
    "connectedAt",
    "updatedAt",
    "ttl",
];

const KNOWN: &str = "`table`, `sync`, `ttl` and `crate`";

pub(crate) struct Args {
    pub(crate) table: Option<Expr>,
    pub(crate) sync: Vec<SyncField>,
    pub(crate) ttl: Option<LitInt>,
    pub(crate) krate: Option<Path>,
}

pub(crate) struct SyncField {
    pub(crate) key: Ident,
    pub(crate) value: SyncValue,
}

pub(crate) enum SyncValue {
    Str(LitStr),
    Int(Expr),
    Bool(syn::LitBool),
}

pub(crate) fn parse(cx: &mut Ctxt, tokens: TokenStream) -> Args {
    let mut args = Args {
        table: None,
        sync: Vec::new(),
        ttl: None,
        krate: None,
    };
    let mut seen = Vec::new();
    let parser = syn::meta::parser(|meta| argument(cx, &mut args, &mut seen, meta));
    match parser.parse2(tokens) {
        Err(error) => cx.push(error),
        // Only when every argument was read: a syntax error may have stopped
        // parsing before `table`.
        Ok(()) if args.table.is_none() => cx.push(syn::Error::new(
            Span::call_site(),
            "missing `table = ...`: name the DynamoDB connections table, e.g. \
             `#[lawcket::handler(table = env!(\"CONNECTIONS_TABLE\"))]`",
        )),
        Ok(()) => {}
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
    if matches!(name.as_str(), "table" | "ttl" | "crate") {
        if seen.contains(&name) {
            cx.error_spanned_by(&path, format!("duplicate `{name}` argument; give it once"));
            return skip_value(&meta);
        }
        seen.push(name.clone());
    }
    match name.as_str() {
        "table" => args.table = Some(meta.value()?.parse()?),
        "sync" => {
            if !meta.input.peek(syn::token::Paren) {
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
                    quote::ToTokens::to_token_stream(&path)
                        .to_string()
                        .replace(' ', "")
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
    let name = key.to_string();
    if RESERVED.contains(&name.as_str()) {
        cx.error_spanned_by(
            &key,
            format!(
                "`{name}` is written by lawcket itself; choose another sync key (reserved: {})",
                RESERVED.join(", ")
            ),
        );
    } else if args.sync.iter().any(|f| f.key == key) {
        cx.error_spanned_by(&key, format!("duplicate sync key `{name}`"));
    }
    match literal(&value) {
        Ok(value) => args.sync.push(SyncField { key, value }),
        Err(message) => cx.error_spanned_by(&value, message),
    }
    Ok(())
}

fn literal(expr: &Expr) -> Result<SyncValue, &'static str> {
    const NOT_LITERAL: &str =
        "a sync value must be a string, integer or bool literal, e.g. `channel = \"#general\"`";
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
