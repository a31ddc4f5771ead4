//! The runtime's modules form no import cycle: every `crate::`, `super::`,
//! `self::` and child-module path in lawcket-runtime/src (in `use` items, in
//! code, and in the tokens of macro calls) is resolved to the module (file) it
//! reaches into: the longest module prefix of the path, or, for `crate::Name`,
//! the module lib.rs re-exports `Name` from. The resulting graph must be
//! acyclic. Test code (`tests.rs` files, `#[cfg(test)]` and `#[cfg(all(test, ..))]`
//! items) is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use syn::visit::Visit;

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn the_runtime_has_no_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("lawcket-runtime/src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 20, "found only {} modules", files.len());
    let graph = graph(&files);
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between runtime modules: {}",
            cycle.join(" -> ")
        );
    }
    // The layering the crate documents: nothing low depends on what is above it.
    for low in [
        "crate::error",
        "crate::limits",
        "crate::clock",
        "crate::sync",
    ] {
        for high in [
            "crate::config",
            "crate::pipeline",
            "crate::publisher",
            "crate::host",
        ] {
            assert!(
                !reaches(&graph, low, high),
                "{low} depends on {high}; it must stay below it"
            );
        }
    }
}

/// The checker finds a cycle when there is one (two files importing each other
/// through a child-module path and a `super::` path).
#[test]
fn the_checker_sees_cycles() {
    let files = BTreeMap::from([
        ("crate".to_owned(), "mod a; mod b;".to_owned()),
        ("crate::a".to_owned(), "mod c; use c::Thing;".to_owned()),
        (
            "crate::a::c".to_owned(),
            "pub struct Thing; fn f() { super::Other::new(); }".to_owned(),
        ),
        ("crate::b".to_owned(), "pub struct Quiet;".to_owned()),
    ]);
    let cycle = find_cycle(&graph(&files)).expect("a -> a::c -> a is a cycle");
    assert!(cycle.contains(&"crate::a::c".to_owned()), "{cycle:?}");
    let mut acyclic = files.clone();
    acyclic.insert("crate::a::c".to_owned(), "pub struct Thing;".to_owned());
    assert_eq!(find_cycle(&graph(&acyclic)), None);

    // The same cycle through a glob import, through a macro call, and through
    // a root re-export.
    for child in [
        "use super::*; pub struct Thing;",
        "pub struct Thing; fn f() { tracing::info!(x = ?super::Other::new()); }",
        "pub struct Thing; macro_rules! m { () => { crate::a::Other }; }",
        "pub struct Thing; fn f() -> crate::Other { todo!() }",
    ] {
        let mut files = acyclic.clone();
        files.insert("crate::a::c".to_owned(), child.to_owned());
        files.insert(
            "crate".to_owned(),
            "mod a; mod b; pub use a::Other;".to_owned(),
        );
        assert!(
            find_cycle(&graph(&files)).is_some(),
            "missed a cycle in {child:?}"
        );
    }
}

/// Module path (`crate::a::b`) → source, for every non-test file under `dir`.
fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(root, &path, files);
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap();
        if !name.ends_with(".rs") || name == "tests.rs" {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap().with_extension("");
        let mut segments: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_str().unwrap().to_owned())
            .collect();
        if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
            segments.pop();
        }
        let module = std::iter::once("crate".to_owned())
            .chain(segments)
            .collect::<Vec<_>>()
            .join("::");
        files.insert(module, std::fs::read_to_string(&path).unwrap());
    }
}

/// Edges from each module to the modules its paths name.
fn graph(files: &BTreeMap<String, String>) -> Graph {
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let exports = files
        .get("crate")
        .map(|lib| root_exports(lib))
        .unwrap_or_default();
    let mut graph = Graph::new();
    for (module, source) in files {
        let file = syn::parse_file(source).unwrap_or_else(|e| panic!("{module}: {e}"));
        let mut paths = Paths::default();
        paths.visit_file(&file);
        let edges = graph.entry(module.clone()).or_default();
        for path in paths.found {
            if let Some(target) = resolve(module, &path, &modules, &exports) {
                if target != *module {
                    edges.insert(target);
                }
            }
        }
    }
    graph
}

/// Which module a path written in `module` points into, if it is this crate's.
fn resolve(
    module: &str,
    path: &[String],
    modules: &BTreeSet<String>,
    exports: &BTreeMap<String, String>,
) -> Option<String> {
    let mut absolute: Vec<String> = module.split("::").map(str::to_owned).collect();
    let mut rest = path;
    match path.first()?.as_str() {
        "crate" => {
            absolute = vec!["crate".to_owned()];
            rest = &path[1..];
        }
        _ => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        absolute.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
            let Some(first) = rest.first() else {
                // `use super::*` and the like: the module itself.
                return Some(absolute.join("::"));
            };
            // A plain path is this crate's only when it starts at a child module.
            let child = format!("{}::{}", absolute.join("::"), first);
            if path[0] != "super" && path[0] != "self" && !modules.contains(&child) {
                return None;
            }
        }
    }
    absolute.extend(rest.iter().cloned());
    // The longest prefix that is a module is the one the path reaches into.
    for end in (1..=absolute.len()).rev() {
        let candidate = absolute[..end].join("::");
        if candidate == "crate" {
            // `crate::Name` goes through a root re-export: follow it.
            let name = absolute.get(1)?;
            return Some(
                exports
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "crate".to_owned()),
            );
        }
        if modules.contains(&candidate) {
            return Some(candidate);
        }
    }
    None
}

/// `pub use module::{A, B}` in lib.rs: name → `crate::module`.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let file = syn::parse_file(lib).unwrap();
    let mut exports = BTreeMap::new();
    for item in file.items {
        if let syn::Item::Use(item) = item {
            let mut paths = Vec::new();
            flatten(&item.tree, Vec::new(), &mut paths);
            for path in paths {
                if let (Some(module), Some(name)) = (path.first(), path.last()) {
                    exports.insert(name.clone(), format!("crate::{module}"));
                }
            }
        }
    }
    exports
}

fn flatten(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut prefix = prefix;
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix;
            path.push(n.ident.to_string());
            out.push(path);
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix;
            path.push(r.ident.to_string());
            out.push(path);
        }
        syn::UseTree::Glob(_) => out.push(prefix),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix.clone(), out);
            }
        }
    }
}

/// Every path in a file's non-test code: `use` trees and paths in items.
#[derive(Default)]
struct Paths {
    found: Vec<Vec<String>>,
}

/// `#[cfg(test)]`, or `#[cfg(all(test, ...))]`: compiled only for tests.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    fn test_only(meta: &syn::Meta) -> bool {
        match meta {
            syn::Meta::Path(path) => path.is_ident("test"),
            syn::Meta::List(list) if list.path.is_ident("all") => list
                .parse_args_with(
                    syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
                )
                .is_ok_and(|all| all.iter().any(test_only)),
            _ => false,
        }
    }
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg") && attr.parse_args::<syn::Meta>().is_ok_and(|m| test_only(&m))
    })
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Impl(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        flatten(&item.tree, Vec::new(), &mut self.found);
    }

    /// Macro calls (`tracing::info!`, `format!`, `macro_rules!` bodies) are
    /// token streams syn does not parse: take every `crate::`/`super::`/
    /// `self::` path out of their tokens.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        paths_in_tokens(mac.tokens.clone(), &mut self.found);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.segments.len() > 1 {
            self.found
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }
}

fn paths_in_tokens(tokens: proc_macro2::TokenStream, found: &mut Vec<Vec<String>>) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(group) => paths_in_tokens(group.stream(), found),
            TokenTree::Ident(ident)
                if ["crate", "super", "self"].contains(&ident.to_string().as_str()) =>
            {
                // ident (`::` ident)*
                let mut path = vec![ident.to_string()];
                let mut j = i + 1;
                while let (
                    Some(TokenTree::Punct(a)),
                    Some(TokenTree::Punct(b)),
                    Some(TokenTree::Ident(next)),
                ) = (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
                {
                    if a.as_char() != ':' || b.as_char() != ':' {
                        break;
                    }
                    path.push(next.to_string());
                    j += 3;
                }
                if path.len() > 1 {
                    found.push(path);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    let mut stack = vec![from.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(module) = stack.pop() {
        if module == to {
            return true;
        }
        if seen.insert(module.clone()) {
            stack.extend(graph.get(&module).into_iter().flatten().cloned());
        }
    }
    false
}

/// A cycle as the list of modules on it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}
