//! The scanner: one file's syntax tree, walked with the context of every
//! call (the function it is in, loops, async, request handlers, one-time
//! initialisers), calls matched against `patterns`.

use std::collections::{HashMap, HashSet};

use syn::spanned::Spanned;
use syn::visit::{self, Visit};

use crate::patterns::{self, Pattern};
use crate::score;

/// Where a finding sits, which raises its score.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Context {
    /// Inside a loop (`for`, `while`, `loop`, or an iterator's `for_each`,
    /// `map`, …).
    pub in_loop: bool,
    /// Inside an `async fn` or an `async` block.
    pub in_async: bool,
    /// Why the enclosing function looks like a request handler (an
    /// attribute, a name, an extractor parameter), if it does.
    pub handler: Option<String>,
}

/// One creation found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The enclosing function, `Type::method` inside an `impl`.
    pub function: String,
    /// The rule.
    pub rule: &'static str,
    /// What the call creates, and why that is a problem here.
    pub reason: String,
    /// What replaces it.
    pub replacement: &'static str,
    /// Where it sits.
    pub context: Context,
    /// Its score (see `score.rs`).
    pub score: u32,
}

/// Why a file could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Finds the creations in one file's source.
///
/// # Errors
/// [`ParseError`] when the source is not Rust syntax `syn` can parse.
pub fn scan(source: &str) -> Result<Vec<Finding>, ParseError> {
    let file = syn::parse_file(source).map_err(|e| {
        let at = e.span().start();
        ParseError {
            line: at.line,
            column: at.column + 1,
            message: e.to_string(),
        }
    })?;
    let mut names = Names::default();
    names.visit_file(&file);
    let mut v = Scanner {
        names,
        fns: Vec::new(),
        impl_types: Vec::new(),
        exempt: 0,
        tests: 0,
        async_blocks: 0,
        findings: Vec::new(),
    };
    v.visit_file(&file);
    Ok(v.findings)
}

/// The file's `use` items (alias → full path) and the crates it names.
#[derive(Default)]
struct Names {
    aliases: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    crates: HashSet<String>,
}

impl Names {
    fn add_use(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.add_use(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                if name == "self" {
                    if let Some(last) = prefix.last() {
                        self.aliases.insert(last.clone(), prefix.clone());
                    }
                } else {
                    let mut full = prefix.clone();
                    full.push(name.clone());
                    self.aliases.insert(name, full);
                }
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.aliases.insert(r.rename.to_string(), full);
            }
            syn::UseTree::Glob(_) => self.globs.push(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.add_use(prefix, t);
                }
            }
        }
    }

    /// `path` with its first segment replaced by what a `use` item made it
    /// stand for.
    fn resolve(&self, path: &[String]) -> Vec<String> {
        match path.first().and_then(|first| self.aliases.get(first)) {
            Some(full) => full.iter().chain(&path[1..]).cloned().collect(),
            None => path.to_vec(),
        }
    }

    /// Whether the file names crate `krate` (a `use` or a path).
    fn imports(&self, krate: &str) -> bool {
        self.crates.contains(krate)
    }
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if let Some(first) = first_use_segment(&u.tree) {
            self.crates.insert(first);
        }
        self.add_use(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.segments.len() > 1 {
            self.crates.insert(p.segments[0].ident.to_string());
        }
        visit::visit_path(self, p);
    }
}

fn first_use_segment(tree: &syn::UseTree) -> Option<String> {
    match tree {
        syn::UseTree::Path(p) => Some(p.ident.to_string()),
        syn::UseTree::Name(n) => Some(n.ident.to_string()),
        syn::UseTree::Rename(r) => Some(r.ident.to_string()),
        _ => None,
    }
}

/// The function being walked.
struct FnCtx {
    name: String,
    is_async: bool,
    handler: Option<String>,
    /// Built once by design: constructors, `main`, pool managers' `connect`.
    constructor: bool,
    loops: usize,
}

struct Scanner {
    names: Names,
    fns: Vec<FnCtx>,
    /// The `Self` type of each enclosing `impl`, and whether it implements a
    /// pool manager trait (whose job is to connect) or a tonic service.
    impl_types: Vec<ImplCtx>,
    /// Inside a one-time initialiser (`static`, `const`, `OnceLock`, …).
    exempt: usize,
    /// Inside test code.
    tests: usize,
    async_blocks: usize,
    findings: Vec<Finding>,
}

struct ImplCtx {
    self_type: String,
    manager: bool,
    service: bool,
}

/// Names of functions that build what they return once: what they create is
/// the thing to share, not a per-call client.
fn is_constructor(name: &str) -> bool {
    matches!(
        name,
        "new" | "default" | "build" | "builder" | "init" | "setup" | "main" | "try_new" | "connect"
    ) || [
        "new_", "build_", "init_", "setup_", "from_", "with_", "try_from",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Traits whose implementations create connections by design.
const MANAGER_TRAITS: &[&str] = &["Manager", "ManageConnection"];

/// Attributes that mark a request handler (axum has none; actix-web, rocket,
/// poem, salvo use these names).
const HANDLER_ATTRS: &[&str] = &[
    "get",
    "post",
    "put",
    "delete",
    "patch",
    "head",
    "options",
    "route",
    "routes",
    "handler",
    "debug_handler",
    "endpoint",
];

/// Extractor types that only request handlers take, counted only in files
/// that use a web framework (`WEB_CRATES`): elsewhere `Query` or `State` are
/// just names.
const EXTRACTORS: &[&str] = &[
    "Json",
    "Query",
    "Form",
    "State",
    "Extension",
    "HttpRequest",
    "Multipart",
    "WebSocketUpgrade",
];

/// Web frameworks whose handlers take the extractors above.
const WEB_CRATES: &[&str] = &[
    "axum",
    "actix_web",
    "rocket",
    "poem",
    "salvo",
    "warp",
    "tide",
];

/// Methods whose closure argument runs once per item.
const PER_ITEM: &[&str] = &[
    "for_each",
    "for_each_concurrent",
    "try_for_each",
    "try_for_each_concurrent",
    "map",
    "filter_map",
    "flat_map",
    "then",
];

/// Methods and constructors whose closure runs once for the process.
const ONCE_METHODS: &[&str] = &[
    "get_or_init",
    "get_or_try_init",
    "call_once",
    "get_or_insert_with",
];
const ONCE_TYPES: &[&str] = &["LazyLock", "Lazy", "LazyCell", "OnceLock", "OnceCell"];

fn attr_last(a: &syn::Attribute) -> String {
    a.path()
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

fn is_test_attr(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let last = attr_last(a);
        last == "test" || (last == "cfg" && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
    })
}

fn path_strings(p: &syn::Path) -> Vec<String> {
    p.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn type_last(t: &syn::Type) -> Option<String> {
    match t {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        syn::Type::Reference(r) => type_last(&r.elem),
        _ => None,
    }
}

impl Scanner {
    fn handler_reason(&self, sig: &syn::Signature, attrs: &[syn::Attribute]) -> Option<String> {
        if let Some(a) = attrs
            .iter()
            .find(|a| HANDLER_ATTRS.contains(&attr_last(a).as_str()))
        {
            return Some(format!(
                "#[{}] attribute",
                path_strings(a.path()).join("::")
            ));
        }
        if self.impl_types.last().is_some_and(|i| i.service) {
            return Some("a method of a tonic service".into());
        }
        let name = sig.ident.to_string();
        if name.starts_with("handle") || name.ends_with("handler") {
            return Some(format!("named `{name}`"));
        }
        if !WEB_CRATES.iter().any(|k| self.names.imports(k)) {
            return None;
        }
        for input in &sig.inputs {
            if let syn::FnArg::Typed(t) = input {
                if let Some(ty) = type_last(&t.ty) {
                    if EXTRACTORS.contains(&ty.as_str()) {
                        return Some(format!("takes the extractor `{ty}`"));
                    }
                }
            }
        }
        None
    }

    fn enter_fn(&mut self, sig: &syn::Signature, attrs: &[syn::Attribute]) -> bool {
        if is_test_attr(attrs) {
            return false;
        }
        let name = sig.ident.to_string();
        let manager = self.impl_types.last().is_some_and(|i| i.manager);
        let full = match self.impl_types.last() {
            Some(i) => format!("{}::{name}", i.self_type),
            None => name.clone(),
        };
        self.fns.push(FnCtx {
            handler: self.handler_reason(sig, attrs),
            constructor: is_constructor(&name) || manager,
            is_async: sig.asyncness.is_some(),
            loops: 0,
            name: full,
        });
        true
    }

    fn report(&mut self, span: proc_macro2::Span, pattern: Pattern) {
        if self.exempt > 0 || self.tests > 0 {
            return;
        }
        let Some(f) = self.fns.last() else {
            return;
        };
        let context = Context {
            in_loop: f.loops > 0,
            in_async: f.is_async || self.async_blocks > 0,
            handler: f.handler.clone(),
        };
        // Built once where it should be: a constructor's client is the one
        // to share — unless it is made in a loop there.
        if f.constructor && !context.in_loop && context.handler.is_none() {
            return;
        }
        let mut reason = format!("creates {} on every call of `{}`", pattern.what, f.name);
        if context.in_loop {
            reason.push_str(", inside a loop");
        }
        if let Some(h) = &context.handler {
            reason.push_str(&format!(", a request handler ({h})"));
        }
        let at = span.start();
        let score = score::of(pattern.is_pool, &context);
        self.findings.push(Finding {
            line: at.line,
            column: at.column + 1,
            function: f.name.clone(),
            rule: pattern.id,
            reason,
            replacement: pattern.replacement,
            context,
            score,
        });
    }

    fn in_loop<T>(&mut self, walk: impl FnOnce(&mut Self) -> T) -> T {
        if let Some(f) = self.fns.last_mut() {
            f.loops += 1;
        }
        let out = walk(self);
        if let Some(f) = self.fns.last_mut() {
            f.loops -= 1;
        }
        out
    }

    fn exempted<T>(&mut self, walk: impl FnOnce(&mut Self) -> T) -> T {
        self.exempt += 1;
        let out = walk(self);
        self.exempt -= 1;
        out
    }
}

impl<'ast> Visit<'ast> for Scanner {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let test = is_test_attr(&m.attrs);
        self.tests += usize::from(test);
        visit::visit_item_mod(self, m);
        self.tests -= usize::from(test);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let trait_last = i
            .trait_
            .as_ref()
            .and_then(|(_, p, _)| p.segments.last().map(|s| s.ident.to_string()));
        let tonic = i
            .attrs
            .iter()
            .any(|a| path_strings(a.path()).iter().any(|s| s == "tonic"));
        self.impl_types.push(ImplCtx {
            self_type: type_last(&i.self_ty).unwrap_or_else(|| "_".into()),
            manager: trait_last
                .as_deref()
                .is_some_and(|t| MANAGER_TRAITS.contains(&t)),
            service: tonic && trait_last.is_some(),
        });
        let test = is_test_attr(&i.attrs);
        self.tests += usize::from(test);
        visit::visit_item_impl(self, i);
        self.tests -= usize::from(test);
        self.impl_types.pop();
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if self.enter_fn(&f.sig, &f.attrs) {
            visit::visit_item_fn(self, f);
            self.fns.pop();
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if self.enter_fn(&f.sig, &f.attrs) {
            visit::visit_impl_item_fn(self, f);
            self.fns.pop();
        }
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if self.enter_fn(&f.sig, &f.attrs) {
            visit::visit_trait_item_fn(self, f);
            self.fns.pop();
        }
    }

    fn visit_item_static(&mut self, s: &'ast syn::ItemStatic) {
        self.exempted(|v| visit::visit_item_static(v, s));
    }

    fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
        self.exempted(|v| visit::visit_item_const(v, c));
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        self.visit_expr(&e.expr);
        self.in_loop(|v| v.visit_block(&e.body));
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        self.in_loop(|v| visit::visit_expr_while(v, e));
    }

    fn visit_expr_loop(&mut self, e: &'ast syn::ExprLoop) {
        self.in_loop(|v| visit::visit_expr_loop(v, e));
    }

    fn visit_expr_async(&mut self, e: &'ast syn::ExprAsync) {
        self.async_blocks += 1;
        visit::visit_expr_async(self, e);
        self.async_blocks -= 1;
    }

    fn visit_expr_call(&mut self, e: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*e.func {
            let path = self.names.resolve(&path_strings(&p.path));
            let once = path.len() >= 2
                && ONCE_TYPES.contains(&path[path.len() - 2].as_str())
                && path[path.len() - 1] == "new";
            if once {
                return self.exempted(|v| visit::visit_expr_call(v, e));
            }
            let found = patterns::call(&path).or_else(|| {
                // `use reqwest::*;` and the like.
                self.names.globs.iter().find_map(|g| {
                    let mut full = g.clone();
                    full.extend(path.iter().cloned());
                    patterns::call(&full)
                })
            });
            if let Some(pattern) = found {
                self.report(e.span(), pattern);
            }
        }
        visit::visit_expr_call(self, e);
    }

    fn visit_expr_method_call(&mut self, e: &'ast syn::ExprMethodCall) {
        let name = e.method.to_string();
        let names = &self.names;
        let found = patterns::method(&name, &|k| names.imports(k))
            .filter(|p| p.id != "zmq-socket" || e.args.len() == 1);
        if let Some(pattern) = found {
            self.report(e.method.span(), pattern);
        }
        if ONCE_METHODS.contains(&name.as_str()) {
            self.visit_expr(&e.receiver);
            return self.exempted(|v| {
                for a in &e.args {
                    v.visit_expr(a);
                }
            });
        }
        if PER_ITEM.contains(&name.as_str()) {
            self.visit_expr(&e.receiver);
            return self.in_loop(|v| {
                for a in &e.args {
                    v.visit_expr(a);
                }
            });
        }
        visit::visit_expr_method_call(self, e);
    }
}
