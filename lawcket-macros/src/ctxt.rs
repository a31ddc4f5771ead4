//! Collects every error so the user sees them all at once (serde_derive's `Ctxt`).

use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Option<syn::Error>,
}

impl Ctxt {
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&mut self, tokens: T, message: M) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    /// The collected errors as `compile_error!` invocations, if there are any.
    pub(crate) fn finish(self) -> Option<TokenStream> {
        self.errors.map(|e| e.to_compile_error())
    }
}
