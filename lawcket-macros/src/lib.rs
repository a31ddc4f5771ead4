//! The `#[lawcket::handler]` attribute. Depend on `lawcket` and use it from there;
//! the generated code names items through `::lawcket`.
//!
//! Layout, as in tokio-macros and serde_derive: `args` parses the attribute,
//! `check` validates the user's fn and checks the parsed arguments by the
//! rules the runtime applies too (the `lawcket-rules` crate), `expand` writes
//! the tokens; every error is collected in `ctxt` and reported together,
//! spanned on the user's own tokens.

mod args;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

/// See `lawcket::handler` for the documentation.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::handler(args.into(), item.into()).into()
}
