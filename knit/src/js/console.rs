//! `console` on a worker: `log`, `info`, `warn`, `error` and `debug` go to
//! `tracing` (target `knit::js`, with the lane and the call), never to stdout.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rquickjs::function::Rest;
use rquickjs::{Ctx, Function, Object, Value};

/// The target console lines are logged under.
pub(crate) const TARGET: &str = "knit::js";

/// The longest line kept (longer ones are cut, and say so): a script must
/// not be able to make the host log megabytes per call.
const MAX_LINE: usize = 16 * 1024;

/// Where console lines come from: the worker's lane, and the call running
/// JS now (set by the worker around each call).
#[derive(Clone, Default)]
pub(crate) struct ConsoleSource {
    pub lane: usize,
    pub call: Rc<Cell<Option<u64>>>,
    /// The module whose export runs now (`eval` for a script).
    pub module: Rc<RefCell<Option<Rc<str>>>>,
    /// How many more lines may be written (a strict call's cap; `None`:
    /// no cap). The line that reaches the cap says the rest are dropped.
    pub quota: Option<Rc<Cell<u32>>>,
}

/// Installs `console` as a global of `ctx`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, source: &ConsoleSource) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for (name, level) in [
        ("log", tracing::Level::INFO),
        ("info", tracing::Level::INFO),
        ("warn", tracing::Level::WARN),
        ("error", tracing::Level::ERROR),
        ("debug", tracing::Level::DEBUG),
    ] {
        let source = source.clone();
        let write = move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
            if let Some(quota) = &source.quota {
                match quota.get() {
                    0 => return,
                    1 => {
                        quota.set(0);
                        let module = source.module.borrow().clone();
                        let line = "(console output capped: the call's further lines are dropped)";
                        emit(
                            level,
                            source.lane,
                            source.call.get(),
                            module.as_deref(),
                            line,
                        );
                        return;
                    }
                    n => quota.set(n - 1),
                }
            }
            let line = line_of(&ctx, args.0);
            let module = source.module.borrow().clone();
            emit(
                level,
                source.lane,
                source.call.get(),
                module.as_deref(),
                &line,
            );
        };
        console.set(name, Function::new(ctx.clone(), write)?.with_name(name)?)?;
    }
    ctx.globals().set("console", console)
}

/// The arguments as one line, as a browser prints them: strings as they
/// are, other values as JSON where they have a JSON form, else `String(v)`.
fn line_of<'js>(ctx: &Ctx<'js>, args: Vec<Value<'js>>) -> String {
    let mut line = String::new();
    for (i, arg) in args.into_iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        let text = if let Some(s) = arg.as_string() {
            s.to_string().unwrap_or_default()
        } else if let Some(symbol) = arg.as_symbol() {
            let description: Option<String> = symbol.description().ok().and_then(|d| d.get().ok());
            format!("Symbol({})", description.unwrap_or_default())
        } else if let Some(error) = arg.as_exception() {
            // An Error's JSON is `{}`: its name, message and stack instead.
            let field = |k: &str| error.get::<_, Option<String>>(k).ok().flatten();
            let head = format!(
                "{}: {}",
                field("name").unwrap_or_else(|| "Error".into()),
                field("message").unwrap_or_default()
            );
            match field("stack") {
                Some(stack) if !stack.is_empty() => format!("{head}\n{}", stack.trim_end()),
                _ => head,
            }
        } else if arg.is_object() && !arg.is_function() {
            match ctx.json_stringify(arg.clone()) {
                Ok(Some(json)) => json.to_string().unwrap_or_default(),
                _ => coerce(arg),
            }
        } else {
            coerce(arg)
        };
        line.push_str(&text);
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" … (cut)");
            break;
        }
    }
    line
}

/// `String(value)`, or a placeholder when even that throws.
fn coerce(value: Value<'_>) -> String {
    value
        .get::<rquickjs::convert::Coerced<String>>()
        .map(|c| c.0)
        .unwrap_or_else(|_| "<unprintable>".to_string())
}

fn emit(level: tracing::Level, lane: usize, call: Option<u64>, module: Option<&str>, line: &str) {
    // `tracing`'s macros need the level as a constant.
    match level {
        tracing::Level::ERROR => tracing::error!(target: TARGET, lane, call, module, "{line}"),
        tracing::Level::WARN => tracing::warn!(target: TARGET, lane, call, module, "{line}"),
        tracing::Level::DEBUG => tracing::debug!(target: TARGET, lane, call, module, "{line}"),
        _ => tracing::info!(target: TARGET, lane, call, module, "{line}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use rquickjs::{Context, Runtime};
    use tracing::field::{Field, Visit};

    use super::*;

    /// What a thread-local subscriber saw: (level, target, fields).
    type Seen = Arc<Mutex<Vec<(tracing::Level, String, String)>>>;

    struct Lines(Seen);

    impl tracing::Subscriber for Lines {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Text(String);
            impl Visit for Text {
                fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{}={:?};", field.name(), value));
                }
            }
            let mut text = Text(String::new());
            event.record(&mut text);
            let meta = event.metadata();
            self.0
                .lock()
                .unwrap()
                .push((*meta.level(), meta.target().to_string(), text.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn console_lines_go_to_tracing_with_lane_and_call() {
        let seen = Seen::default();
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        let source = ConsoleSource {
            lane: 3,
            call: Rc::new(Cell::new(Some(42))),
            module: Rc::new(RefCell::new(Some("tasks".into()))),
            quota: None,
        };
        tracing::subscriber::with_default(Lines(seen.clone()), || {
            ctx.with(|ctx| {
                install(&ctx, &source).unwrap();
                ctx.eval::<(), _>(
                    "console.log('a', 1, {b: [2]}, undefined, null);
                     console.warn('w'); console.error(new Error('e')); console.debug(Symbol('s'));
                     console.info('x'.repeat(20000));",
                )
                .unwrap();
            })
        });
        let seen = seen.lock().unwrap();
        let levels: Vec<_> = seen.iter().map(|s| s.0).collect();
        use tracing::Level;
        assert_eq!(
            levels,
            [
                Level::INFO,
                Level::WARN,
                Level::ERROR,
                Level::DEBUG,
                Level::INFO
            ]
        );
        assert!(seen.iter().all(|s| s.1 == TARGET));
        assert!(
            seen[0].2.contains(r#"lane=3;call=42;module="tasks";"#),
            "{seen:?}"
        );
        assert!(
            seen[0].2.contains(r#"a 1 {"b":[2]} undefined null"#),
            "{}",
            seen[0].2
        );
        assert!(seen[2].2.contains("Error: e"), "{}", seen[2].2);
        assert!(seen[3].2.contains("Symbol(s)"), "{}", seen[3].2);
        assert!(seen[4].2.len() < MAX_LINE + 200 && seen[4].2.contains("(cut)"));
    }
}
