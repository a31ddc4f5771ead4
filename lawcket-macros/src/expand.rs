//! Writes the user's fn back unchanged plus a thin `main` that hands everything
//! to `::lawcket::__private_<version>::main`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

use crate::args::{self, Args, SyncValue};
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    // On any error the item is given back (so only the real errors show, and
    // IDEs keep seeing it) with a stub `main`, which stops a second "`main`
    // function not found" error.
    let stub = quote! { fn main() {} };
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = syn::Error::new(
                error.span(),
                "`#[lawcket::handler]` goes on an `async fn`, not on this item",
            )
            .to_compile_error();
            return quote! { #error #item #stub };
        }
    };
    let args = args::parse(&mut cx, args);
    check::arguments(&mut cx, &args);
    check::function(&mut cx, &function);
    match cx.finish() {
        Some(errors) => {
            // A fn named `main` (already reported) is renamed so rustc says
            // nothing about it clashing with the stub or being `async`.
            if function.sig.ident == "main" {
                function.sig.ident = Ident::new("__lawcket_main", function.sig.ident.span());
            }
            quote! { #errors #function #stub }
        }
        None => {
            let main = main(&args, &function);
            quote! { #function #main }
        }
    }
}

/// The facade's hidden module for generated code, named after this crate's
/// version (as serde and thiserror name theirs), so generated code only
/// compiles against the facade of the same release.
fn private_module() -> Ident {
    let version = env!("CARGO_PKG_VERSION").replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    Ident::new(&format!("__private_{version}"), Span::call_site())
}

fn main(args: &Args, function: &ItemFn) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map(ToTokens::to_token_stream)
        .unwrap_or_else(|| quote!(::lawcket));
    // `#krate::__private_<version>` located at `span`: interpolated tokens keep their own
    // spans, so without this a trait error's label would stretch from the
    // attribute to the user's token. Call-site hygiene is kept.
    let module = private_module();
    let private_at = |span: Span| -> TokenStream {
        let span = Span::call_site().located_at(span);
        quote!(#krate::#module)
            .into_iter()
            .map(|mut token| {
                token.set_span(span);
                token
            })
            .collect()
    };
    let private = private_at(Span::call_site());

    let table = args.table.as_ref().expect("checked in args::parse");
    let table = {
        let private = private_at(table.span());
        quote_spanned! {table.span()=> #private::IntoTable::into_table(#table) }
    };
    let sync = args.sync.iter().map(|field| {
        let key = field.key.to_string();
        let value = match &field.value {
            SyncValue::Str(s) => {
                quote!(#private::SyncValue::Str(::std::string::String::from(#s)))
            }
            SyncValue::Int(i) => quote!(#private::SyncValue::Int(#i)),
            SyncValue::Bool(b) => quote!(#private::SyncValue::Bool(#b)),
            SyncValue::Dynamic(d) => {
                let (origin, from) = (&d.origin, &d.key);
                let default = d.default.iter();
                let max_len = d.max_len.iter();
                let chars = d.chars.iter();
                let dynamic = quote! {
                    #private::Dynamic::#origin(#from) #(.default(#default))* #(.max_len(#max_len))* #(.chars(#chars))*
                };
                return quote!(.sync_dynamic(#key, #dynamic));
            }
        };
        quote!(.sync_field(#key, #value))
    });
    let index = args.index.iter().map(|(field, name)| {
        let field = field.to_string();
        quote!(.index(#field, #name))
    });
    let manual_sync = args.manual_sync.then(|| quote!(.manual_sync()));
    // The builder takes the fn itself (`impl IntoMiddleware` / `impl IntoPlugin`),
    // whose `on_unimplemented` message explains the expected shape; the call is
    // spanned on the user's path so that is where the error points. (Calling
    // `into_middleware` here instead hands the builder a `Box<dyn Middleware>`,
    // which is not `IntoMiddleware`: tests/ui/pass/new_arguments.rs pins this.)
    let middleware = args.middleware.iter().map(|path| {
        let name = args::spelled(path);
        quote_spanned! {path.span()=> .middleware(#name, #path) }
    });
    let plugins = args.plugins.iter().map(|path| {
        let name = args::spelled(path);
        quote_spanned! {path.span()=> .plugin(#name, #path) }
    });
    let concurrency = args.concurrency.as_ref().map(|n| quote!(.concurrency(#n)));
    let subprotocols = (!args.subprotocols.is_empty()).then(|| {
        let names = &args.subprotocols;
        quote!(.subprotocols([#(#names),*]))
    });
    // As for middleware: the builder's bound explains a fn of the wrong shape,
    // on the user's path.
    let authorizer = args
        .authorizer
        .as_ref()
        .map(|path| quote_spanned! {path.span()=> .authorizer(#path) });
    // include_str! resolves the path against the file holding the attribute, and
    // a missing file is rustc's error on the user's string.
    let local_page = args
        .local_page
        .as_ref()
        .map(|page| quote_spanned! {page.span()=> .local_page(::core::include_str!(#page)) });
    let ttl = args
        .ttl
        .as_ref()
        .map(|secs| quote!(.ttl(::std::time::Duration::from_secs(#secs))));

    let name = &function.sig.ident;
    let invocation = quote!(__lawcket_invocation);
    let params = function.sig.inputs.iter().map(|input| match input {
        FnArg::Typed(param) => {
            let ty = &param.ty;
            let private = private_at(ty.span());
            quote_spanned! {ty.span()=>
                <#ty as #private::FromInvocation>::from_invocation(&#invocation)
            }
        }
        FnArg::Receiver(_) => unreachable!("rejected in check::function"),
    });
    // A parameter only an authorizer provides (`Identity`, under any name)
    // without `authorizer = ..`: a compile error on the user's type.
    let needs_authorizer = function.sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(param) if args.authorizer.is_none() => {
            let ty = &param.ty;
            let private = private_at(ty.span());
            Some(quote_spanned! {ty.span()=>
                const _: () = ::core::assert!(
                    !<#ty as #private::FromInvocation>::NEEDS_AUTHORIZER,
                    "this parameter is what the authorizer returned, and the handler has none: \
                     add `authorizer = your_fn` to the attribute, or take `Option<lawcket::Identity>`"
                );
            })
        }
        _ => None,
    });
    // The output is checked on the user's return type, not on the attribute.
    let output_span = match &function.sig.output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let output = Ident::new("__lawcket_output", output_span);
    let into_result = {
        let private = private_at(output_span);
        quote_spanned! {output_span=> #private::HandlerOutput::into_result(#output) }
    };

    quote! {
        fn main() {
            #(#needs_authorizer)*
            #private::main(
                #private::Config::new(#table) #(#sync)* #(#index)* #ttl #manual_sync
                    #(#middleware)* #(#plugins)* #concurrency #subprotocols #authorizer #local_page,
                |#invocation: #private::Invocation| async move {
                    let #output = #name(#(#params),*).await;
                    #into_result
                },
            )
        }
    }
}
