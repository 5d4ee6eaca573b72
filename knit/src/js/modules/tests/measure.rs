//! Figures, not assertions: source vs bytecode vs cache for a ~200-line module (`--ignored --nocapture`, release).

use std::hint::black_box;
use std::time::{Duration, Instant};

use rquickjs::{Context, Module, Runtime, WriteOptions};

use super::{compiled, on_worker, options};
use crate::js::modules::JsOptions;

/// A module of about 200 lines: 40 small exported functions.
fn big_module() -> String {
    let mut src = String::new();
    for i in 0..40 {
        src.push_str(&format!(
            "export function f{i}(a, b) {{\n  let s = 0;\n  for (let k = 0; k < a; k++) s += k * {i};\n  return s + b;\n}}\n"
        ));
    }
    src
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Source (or bytecode) to a callable export, on a warm context.
fn to_callable(ctx: &rquickjs::Ctx<'_>, i: usize, src: Option<&str>, bytecode: &[u8]) -> Duration {
    let name = format!("big{i}");
    let start = Instant::now();
    let module = match src {
        Some(s) => Module::declare(ctx.clone(), name, s).unwrap(),
        // SAFETY: `bytecode` was written by this process's engine just before.
        None => unsafe { Module::load(ctx.clone(), bytecode).unwrap() },
    };
    let (module, promise) = module.eval().unwrap();
    promise.finish::<()>().unwrap();
    let f: rquickjs::Function = module.get("f3").unwrap();
    let r: i32 = f.call((3, 1)).unwrap();
    let took = start.elapsed();
    assert_eq!(r, 10);
    black_box(took)
}

#[test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
fn measure_source_bytecode_and_cache() {
    let src = big_module();
    assert!(src.lines().count() >= 200);
    let rt = Runtime::new().unwrap();
    let context = Context::full(&rt).unwrap();
    let runs = 50;
    context.with(|ctx| {
        // Bytecode the way `compile` writes it, with and without debug info.
        let m = Module::declare(ctx.clone(), "big", src.as_str()).unwrap();
        let write = |strip_debug| {
            m.write(WriteOptions {
                strip_debug,
                strip_source: true,
                ..Default::default()
            })
            .unwrap()
        };
        let (full, stripped) = (write(false), write(true));
        // Module names must differ (each load adds a module to the context);
        // the bytecode's own name is "big", which loading does not check.
        let source: Vec<_> = (0..runs)
            .map(|i| to_callable(&ctx, i, Some(&src), &[]))
            .collect();
        let from_full: Vec<_> = (0..runs)
            .map(|i| to_callable(&ctx, runs + i, None, &full))
            .collect();
        let from_stripped: Vec<_> = (0..runs)
            .map(|i| to_callable(&ctx, 2 * runs + i, None, &stripped))
            .collect();
        println!(
            "{}-line module to a callable export, warm context, median of {runs}:",
            src.lines().count()
        );
        println!("  from source:              {:?}", median(source));
        println!(
            "  from bytecode ({} B):   {:?}",
            full.len(),
            median(from_full)
        );
        println!(
            "  from stripped ({} B):   {:?}",
            stripped.len(),
            median(from_stripped)
        );
    });
    // The whole compile step, with a cold and a warm cache.
    let dir = tempfile::tempdir().unwrap();
    let cached = JsOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..options(&[("big", &src)])
    };
    let plain = options(&[("big", &src)]);
    let time = |o: &JsOptions| {
        let start = Instant::now();
        let c = compiled(o);
        (start.elapsed(), c)
    };
    let (miss, _) = time(&cached);
    let mut no_cache = Vec::new();
    let mut hits = Vec::new();
    for _ in 0..runs {
        no_cache.push(time(&plain).0);
        let (t, c) = time(&cached);
        assert!(c.get("big").unwrap().cached());
        hits.push(t);
    }
    println!("compile step (runtime, context, compile or cache read, cache write):");
    println!("  no cache:   {:?}", median(no_cache));
    println!("  cache miss: {miss:?} (one run: compile + key + write)");
    println!("  cache hit:  {:?} (no engine at all)", median(hits));
    let c = compiled(&plain);
    let mut worker = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        on_worker(&c, |ctx, loaded| {
            let r: i32 = loaded
                .export(ctx, "big", "f3")
                .unwrap()
                .call((3, 1))
                .unwrap();
            assert_eq!(r, 10);
        });
        worker.push(start.elapsed());
    }
    println!(
        "worker: new runtime + full context + load + call: {:?}",
        median(worker)
    );
}
