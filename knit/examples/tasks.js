// The JS side of `cargo run -p knit --example js_tasks`: every exported
// function is a task, called from Rust as pool.js("tasks", "<name>").
import { price_of } from "knit:host"; // a Rust #[knit::task] (JsOptions::expose)

export const add = (a, b) => a + b;

// Async: many of these wait on one worker at once.
export async function slowDouble(x, ms) {
    await sleep(ms); // defined by the bootstrap script
    return 2 * x;
}

// A Rust struct arrives as a plain object; the object returned goes back
// into a Rust struct.
export function quote(order) {
    let total = 0;
    const missing = [];
    for (const item of order.items) {
        const cents = price_of(item); // runs synchronously on this worker
        if (cents === null) missing.push(item);
        else total += cents * order.qty;
    }
    console.info(`quoted ${order.items.length} items`); // to tracing, not stdout
    return { total, missing };
}

export function checkQty(qty) {
    if (!Number.isInteger(qty) || qty <= 0) throw new RangeError(`bad quantity ${qty}`);
    return qty;
}
