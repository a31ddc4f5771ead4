//! What the user's fn must be: `async`, not generic, no `self`, not `main`.

use syn::{FnArg, ItemFn};

use crate::ctxt::Ctxt;

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
