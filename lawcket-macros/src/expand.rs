//! Writes the user's fn back unchanged plus a thin `main` that hands everything
//! to `::lawcket::__private::main`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

use crate::args::{self, Args, SyncValue};
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            // Not a fn at all: report that and give the item back untouched.
            let error = syn::Error::new(
                error.span(),
                "#[lawcket::handler] goes on an `async fn`",
            )
            .to_compile_error();
            return quote! { #error #item };
        }
    };
    let args = args::parse(&mut cx, args);
    check::function(&mut cx, &function);
    match cx.finish() {
        Some(errors) => {
            // Keep the user's fn so only the real errors show; a stub `main`
            // stops a second "no main" error (unless the fn itself is `main`).
            let stub = (function.sig.ident != "main").then(|| quote! { fn main() {} });
            quote! { #errors #function #stub }
        }
        None => {
            let main = main(&args, &function);
            quote! { #function #main }
        }
    }
}

fn main(args: &Args, function: &ItemFn) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map(ToTokens::to_token_stream)
        .unwrap_or_else(|| quote!(::lawcket));
    let private = quote!(#krate::__private);

    let table = args.table.as_ref().expect("checked in args::parse");
    let table = quote_spanned! {table.span()=>
        #private::IntoTable::into_table(#table)
    };
    let sync = args.sync.iter().map(|field| {
        let key = field.key.to_string();
        let value = match &field.value {
            SyncValue::Str(s) => quote!(#private::SyncValue::Str(::std::string::String::from(#s))),
            SyncValue::Int(i) => quote!(#private::SyncValue::Int(#i)),
            SyncValue::Bool(b) => quote!(#private::SyncValue::Bool(#b)),
        };
        quote!(.sync_field(#key, #value))
    });
    let ttl = args
        .ttl
        .as_ref()
        .map(|secs| quote!(.ttl(::std::time::Duration::from_secs(#secs))));

    let name = &function.sig.ident;
    let invocation = quote!(__lawcket_invocation);
    let params = function.sig.inputs.iter().map(|input| match input {
        FnArg::Typed(param) => {
            let ty = &param.ty;
            quote_spanned! {ty.span()=>
                <#ty as #private::FromInvocation>::from_invocation(&#invocation)
            }
        }
        FnArg::Receiver(_) => unreachable!("rejected in check::function"),
    });
    let output_span = match &function.sig.output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let output = quote!(__lawcket_output);
    let into_result = quote_spanned! {output_span=>
        #private::HandlerOutput::into_result(#output)
    };

    quote! {
        fn main() {
            #private::main(
                #private::Config::new(#table) #(#sync)* #ttl,
                |#invocation: #private::Invocation| async move {
                    let #output = #name(#(#params),*).await;
                    #into_result
                },
            )
        }
    }
}
