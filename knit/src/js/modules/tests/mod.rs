//! Tests of compiling modules, loading them on a fresh engine as a worker would, and calling their exports.

#[cfg(unix)]
mod cache;
mod measure;

use std::sync::Arc;

use rquickjs::{Context, Ctx, Runtime};

use super::{
    compile, install_loader, load, load_with, JsModule, JsModuleError, JsOptions, LoadedModules,
};
use crate::js::modules::compile::{compile_modules, CompiledModules};
use crate::{CallError, PoolError};

/// Options with these `(name, source)` modules.
pub(super) fn options(modules: &[(&str, &str)]) -> JsOptions {
    JsOptions {
        modules: modules
            .iter()
            .map(|(n, s)| JsModule::source(*n, *s))
            .collect(),
        ..Default::default()
    }
}

/// Compiles `options`, failing the test on an error.
pub(super) fn compiled(options: &JsOptions) -> Arc<CompiledModules> {
    Arc::new(compile_modules(options).unwrap_or_else(|e| panic!("compile failed: {e}")))
}

/// Loads `compiled` on a fresh runtime and context, as a worker does, and
/// runs `f` with the loaded modules.
pub(super) fn on_worker<R>(
    compiled: &Arc<CompiledModules>,
    f: impl FnOnce(&Ctx<'_>, &LoadedModules) -> R,
) -> R {
    let rt = Runtime::new().unwrap();
    install_loader(&rt, compiled);
    let context = Context::full(&rt).unwrap();
    context.with(|ctx| {
        let loaded = load(&ctx, compiled).unwrap_or_else(|e| panic!("load failed: {e}"));
        f(&ctx, &loaded)
    })
}

/// The error loading `compiled` on a fresh engine gives.
fn load_error(compiled: &Arc<CompiledModules>) -> JsModuleError {
    let rt = Runtime::new().unwrap();
    install_loader(&rt, compiled);
    let context = Context::full(&rt).unwrap();
    context.with(|ctx| match load(&ctx, compiled) {
        Ok(_) => panic!("the modules loaded"),
        Err(e) => e,
    })
}

/// Calls `module`'s export `name` with no arguments.
fn call0<T: for<'js> rquickjs::FromJs<'js>>(
    ctx: &Ctx<'_>,
    loaded: &LoadedModules,
    module: &str,
    name: &str,
) -> T {
    let f = loaded
        .export(ctx, module, name)
        .unwrap_or_else(|| panic!("no export {module}.{name}"));
    f.call(()).unwrap()
}

/// Calls `module`'s export `name` with two numbers.
pub(super) fn call2(
    ctx: &Ctx<'_>,
    loaded: &LoadedModules,
    module: &str,
    name: &str,
    a: i32,
    b: i32,
) -> i32 {
    let f = loaded
        .export(ctx, module, name)
        .unwrap_or_else(|| panic!("no export {module}.{name}"));
    f.call((a, b)).unwrap()
}

const MATH: &str = "export const add = (a, b) => a + b;\nexport default function times10(x) { return x * 10; }\nexport const answer = 42;\n";

#[test]
fn exports_are_callable_and_imports_resolve_by_name() {
    let tasks = "import { add } from \"math\";\nimport times10 from \"./math.js\";\nexport function both(a, b) { return times10(add(a, b)); }\n";
    // The importing module first: the order must come from the imports.
    let c = compiled(&options(&[("tasks", tasks), ("math", MATH)]));
    let names: Vec<&str> = c.modules().iter().map(|m| m.name()).collect();
    assert_eq!(names, ["math", "tasks"]);
    let tasks_m = c.get("tasks").unwrap();
    assert_eq!(tasks_m.imports(), ["math"]);
    assert_eq!(tasks_m.specifiers(), ["math", "./math.js"]);
    assert!(!tasks_m.cached());
    on_worker(&c, |ctx, loaded| {
        assert_eq!(call2(ctx, loaded, "math", "add", 1, 2), 3);
        assert_eq!(call2(ctx, loaded, "math", "default", 4, 0), 40);
        assert_eq!(call2(ctx, loaded, "tasks", "both", 1, 2), 30);
        let mut exports = loaded.export_names(ctx, "math").unwrap();
        exports.sort();
        assert_eq!(exports, ["add", "answer", "default"]);
        assert_eq!(loaded.names().collect::<Vec<_>>(), ["math", "tasks"]);
    });
}

#[test]
fn unknown_exports_are_reportable() {
    let c = compiled(&options(&[("math", MATH)]));
    on_worker(&c, |ctx, loaded| {
        assert!(loaded.export(ctx, "math", "nope").is_none());
        assert!(loaded.export(ctx, "nope", "add").is_none());
        // A value that is not a function is not a task.
        assert!(loaded.export(ctx, "math", "answer").is_none());
        assert!(loaded.namespace(ctx, "math").is_some());
        match loaded.export_task(ctx, "math", "nope") {
            Err(CallError::UnknownTask(name)) => assert_eq!(name, "math::nope"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("an unknown export was found"),
        }
        assert!(loaded.export_task(ctx, "math", "add").is_ok());
    });
}

#[test]
fn a_syntax_error_names_module_line_and_column() {
    let bad = "export const a = 1;\nexport const b = ;\n";
    match compile(&options(&[("math", MATH), ("bad", bad)])) {
        Err(PoolError::JsModule(JsModuleError::Syntax {
            module,
            line,
            column,
            message,
        })) => {
            assert_eq!((module.as_str(), line, column), ("bad", 2, 18), "{message}");
            assert!(!message.is_empty());
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a syntax error compiled"),
    }
}

#[test]
fn a_syntax_error_in_an_imported_module_names_that_module() {
    let tasks = "import { f } from './lib.js';\nexport const g = () => f();\n";
    let lib = "export const f = () => 1;\n\n   let let = 3;\n";
    match compile_modules(&options(&[("tasks", tasks), ("lib", lib)])) {
        Err(JsModuleError::Syntax {
            module,
            line,
            column,
            ..
        }) => {
            assert_eq!((module.as_str(), line, column), ("lib", 3, 8));
        }
        other => panic!("wrong result: {other:?}"),
    }
}

#[test]
fn an_unregistered_import_names_the_module_and_the_specifier() {
    let tasks = "import { add } from './math.js';\nimport { x } from './nope.js';\nexport const f = () => add(x, 1);\n";
    match compile(&options(&[("math", MATH), ("tasks", tasks)])) {
        Err(PoolError::JsModule(e @ JsModuleError::Import { .. })) => {
            let JsModuleError::Import { module, specifier } = &e else {
                unreachable!()
            };
            assert_eq!(
                (module.as_str(), specifier.as_str()),
                ("tasks", "./nope.js")
            );
            assert!(e.to_string().contains("tasks") && e.to_string().contains("./nope.js"));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("an unregistered import compiled"),
    }
}

#[test]
fn names_are_checked_and_unique() {
    let dup = compile_modules(&options(&[("math", MATH), ("math", MATH)]));
    assert!(matches!(dup, Err(JsModuleError::DuplicateName { name }) if name == "math"));
    let bad = compile_modules(&options(&[(".math", MATH)]));
    assert!(matches!(bad, Err(JsModuleError::BadName { .. })));
    let nul = compile_modules(&options(&[("ma\0th", MATH)]));
    assert!(matches!(nul, Err(JsModuleError::BadName { .. })));
}

#[test]
fn file_modules_are_named_by_their_stem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.js");
    std::fs::write(&path, "export const hi = () => 'hi';\n").unwrap();
    let m = JsModule::file(&path).unwrap();
    assert_eq!((m.name(), m.path()), ("tasks", Some(path.as_path())));
    let c = compiled(&JsOptions {
        modules: vec![m],
        ..Default::default()
    });
    on_worker(&c, |ctx, loaded| {
        let hi: String = call0(ctx, loaded, "tasks", "hi");
        assert_eq!(hi, "hi");
    });
    let missing = JsModule::file(dir.path().join("missing.js"));
    assert!(
        matches!(missing, Err(JsModuleError::Read { path, .. }) if path.ends_with("missing.js"))
    );
}

#[test]
fn the_bootstrap_runs_first_and_its_globals_reach_the_modules() {
    let m = "export const seen = globalThis.base + 1;\nexport const get = () => seen + globalThis.later;\n";
    let c = compiled(&JsOptions {
        bootstrap: Some("var base = 100;\nglobalThis.later = 1000;".into()),
        ..options(&[("m", m)])
    });
    assert_eq!(
        c.bootstrap(),
        Some("var base = 100;\nglobalThis.later = 1000;")
    );
    on_worker(&c, |ctx, loaded| {
        let got: i32 = call0(ctx, loaded, "m", "get");
        assert_eq!(got, 1101);
    });
}

#[test]
fn bootstrap_errors_are_typed() {
    let syntax = compile(&JsOptions {
        bootstrap: Some("var ok = 1;\nvar = 2;".into()),
        ..options(&[("math", MATH)])
    });
    match syntax {
        Err(PoolError::JsModule(JsModuleError::Bootstrap { line, column, .. })) => {
            assert_eq!((line, column), (Some(2), Some(5)));
        }
        other => panic!("wrong result: {:?}", other.err()),
    }
    // It parses, so compiling passes; it throws on the worker.
    let c = compiled(&JsOptions {
        bootstrap: Some("\nthrow new Error('no host here');".into()),
        ..options(&[("math", MATH)])
    });
    match load_error(&c) {
        JsModuleError::Bootstrap { line, message, .. } => {
            assert_eq!((line, message.as_str()), (Some(2), "no host here"));
        }
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn top_level_await_settles_before_the_exports_are_used() {
    let m = "const a = await Promise.resolve(5);\nconst b = await (async () => { await null; await null; return a * 2; })();\nexport const get = () => a + b;\n";
    let user = "import { get } from 'slow';\nexport const twice = () => 2 * get();\n";
    let c = compiled(&options(&[("user", user), ("slow", m)]));
    on_worker(&c, |ctx, loaded| {
        let got: i32 = call0(ctx, loaded, "user", "twice");
        assert_eq!(got, 30);
    });
}

#[test]
fn a_top_level_await_nothing_settles_is_unsettled_unless_idle_progresses() {
    let m = "await new Promise((resolve) => { globalThis.release = resolve; });\nexport const ok = () => 1;\n";
    let c = compiled(&options(&[("waits", m)]));
    assert!(matches!(load_error(&c), JsModuleError::Unsettled { module } if module == "waits"));
    // An idle hook (a worker's timers) that settles it.
    let rt = Runtime::new().unwrap();
    install_loader(&rt, &c);
    let context = Context::full(&rt).unwrap();
    context.with(|ctx| {
        let mut rounds = 0;
        let loaded = load_with(&ctx, &c, &mut |ctx| {
            rounds += 1;
            let release: rquickjs::Function = ctx.globals().get("release").unwrap();
            release.call::<_, ()>(()).unwrap();
            true
        })
        .unwrap();
        assert_eq!(rounds, 1);
        let ok: i32 = call0(&ctx, &loaded, "waits", "ok");
        assert_eq!(ok, 1);
    });
}

#[test]
fn a_throwing_module_fails_with_its_place() {
    let m = "export const a = 1;\nthrow new Error('boom');\n";
    let c = compiled(&options(&[("m", m)]));
    match load_error(&c) {
        JsModuleError::Evaluate {
            module,
            line,
            message,
            ..
        } => {
            assert_eq!(
                (module.as_str(), line, message.as_str()),
                ("m", Some(2), "boom")
            );
        }
        e => panic!("wrong error: {e}"),
    }
    // An import of a name the other module does not export fails to link.
    let user = "import { nope } from 'math';\nexport const f = () => nope;\n";
    let c = compiled(&options(&[("math", MATH), ("user", user)]));
    assert!(matches!(load_error(&c), JsModuleError::Evaluate { module, .. } if module == "user"));
}

#[test]
fn import_cycles_link() {
    let a = "import { fromB } from './b.js';\nexport const fromA = () => 'a';\nexport const viaB = () => fromB();\n";
    let b = "import { fromA } from './a.js';\nexport const fromB = () => 'b' + fromA();\n";
    let c = compiled(&options(&[("a", a), ("b", b)]));
    assert_eq!(c.get("a").unwrap().imports(), ["b"]);
    assert_eq!(c.get("b").unwrap().imports(), ["a"]);
    on_worker(&c, |ctx, loaded| {
        let got: String = call0(ctx, loaded, "a", "viaB");
        assert_eq!(got, "ba");
    });
}

#[test]
fn dynamic_import_reaches_registered_modules_only() {
    let m =
        "export async function dyn(name) { const m = await import(name); return m.add(2, 3); }\n";
    let c = compiled(&options(&[("math", MATH), ("m", m)]));
    on_worker(&c, |ctx, loaded| {
        let dyn_fn = loaded.export(ctx, "m", "dyn").unwrap();
        let ok: rquickjs::Promise = dyn_fn.call(("./math.js",)).unwrap();
        assert_eq!(ok.finish::<i32>().unwrap(), 5);
        let bad: rquickjs::Promise = dyn_fn.call(("fs",)).unwrap();
        assert!(bad.finish::<i32>().is_err());
        let thrown = ctx.catch();
        let message = thrown
            .as_exception()
            .and_then(|e| e.message())
            .unwrap_or_default();
        assert!(message.contains("fs"), "{message}");
    });
}
