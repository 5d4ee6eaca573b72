//! Micro-benchmark: a 5-field struct to JS and back, per wire design.
//!
//! `cargo run -p knit --release --example js_values_bench`. Each figure is
//! the median over 31 rounds of the per-iteration time (thread CPU noise
//! included), in nanoseconds, on an in-process QuickJS context:
//!
//! - knit wire: `to_wire` + `to_js` + `from_js` + `from_wire` (the hot path),
//!   the engine halves through one [`Converter`] (key atoms cached, as a
//!   worker keeps one); the one-shot free functions `to_js` / `from_js`
//!   (nothing cached between calls) are measured too.
//! - serde_json + `JSON.parse` / `JSON.stringify` through rquickjs.
//! - MessagePack (rmp-serde, structs as maps): its serde halves only, next
//!   to knit wire's serde halves; the engine walk would be the same C calls.
//!
//! The JS call itself (`x => x`) is measured alone and left out of the rest.

use std::hint::black_box;
use std::time::Instant;

use knit::js::{from_js, from_wire, to_js, to_wire, Converter, WireLimits};
use rquickjs::{Context, Function, Runtime, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    tags: Vec<String>,
    price: f64,
    active: bool,
}

const ITERS: u32 = 20_000;
const ROUNDS: usize = 31;

fn median_ns(mut f: impl FnMut()) -> f64 {
    for _ in 0..ITERS / 4 {
        f();
    }
    let mut per: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(ITERS)
        })
        .collect();
    per.sort_by(f64::total_cmp);
    per[ROUNDS / 2]
}

fn main() {
    let item = Item {
        id: 123_456,
        name: "fountain pen".into(),
        tags: vec!["office".into(), "gift".into(), "ink".into()],
        price: 19.99,
        active: true,
    };
    let rt = Runtime::new().unwrap();
    let ctx = Context::full(&rt).unwrap();
    ctx.with(|ctx| {
        let id: Function = ctx.eval("x => x").unwrap();
        let mut conv = Converter::new(&ctx);
        let limits = WireLimits::default();
        let mut arg = Vec::with_capacity(256);
        let mut res = Vec::with_capacity(256);

        let call = median_ns(|| {
            let v: Value = id.call((black_box(1),)).unwrap();
            black_box(v);
        });

        // Check once that each path gives the struct back.
        arg.clear();
        to_wire(&item, &mut arg).unwrap();
        let v = to_js(&ctx, &arg).unwrap();
        res.clear();
        from_js(&ctx, &v, &mut res, &limits).unwrap();
        assert_eq!(from_wire::<Item>(&res).unwrap(), item);
        let v = conv.to_js(&arg).unwrap();
        res.clear();
        conv.from_js(&v, &mut res, &limits).unwrap();
        assert_eq!(from_wire::<Item>(&res).unwrap(), item);

        let knit_ser = median_ns(|| {
            arg.clear();
            to_wire(black_box(&item), &mut arg).unwrap();
        });
        let knit_de = median_ns(|| {
            black_box(from_wire::<Item>(black_box(&res)).unwrap());
        });
        let knit_to_js = median_ns(|| {
            black_box(conv.to_js(black_box(&arg)).unwrap());
        });
        let knit_from_js = median_ns(|| {
            res.clear();
            conv.from_js(black_box(&v), &mut res, &limits).unwrap();
        });
        let knit_engine = median_ns(|| {
            let v = conv.to_js(black_box(&arg)).unwrap();
            res.clear();
            conv.from_js(&v, &mut res, &limits).unwrap();
        });
        let knit_engine_once = median_ns(|| {
            let v = to_js(&ctx, black_box(&arg)).unwrap();
            res.clear();
            from_js(&ctx, &v, &mut res, &limits).unwrap();
        });
        let knit_all = median_ns(|| {
            arg.clear();
            to_wire(black_box(&item), &mut arg).unwrap();
            let v = conv.to_js(&arg).unwrap();
            res.clear();
            conv.from_js(&v, &mut res, &limits).unwrap();
            black_box(from_wire::<Item>(&res).unwrap());
        });
        let json_all = median_ns(|| {
            let s = serde_json::to_string(black_box(&item)).unwrap();
            let v = ctx.json_parse(s).unwrap();
            let back = ctx.json_stringify(v).unwrap().unwrap().to_string().unwrap();
            black_box(serde_json::from_str::<Item>(&back).unwrap());
        });
        let mut mp = Vec::with_capacity(256);
        let rmp_ser = median_ns(|| {
            mp.clear();
            let mut s = rmp_serde::Serializer::new(&mut mp).with_struct_map();
            black_box(&item).serialize(&mut s).unwrap();
        });
        let rmp_de = median_ns(|| {
            black_box(rmp_serde::from_slice::<Item>(black_box(&mp)).unwrap());
        });
        assert_eq!(rmp_serde::from_slice::<Item>(&mp).unwrap(), item);

        println!("5-field struct, ns per operation (median of {ROUNDS} x {ITERS}):");
        println!("  JS call x => x alone              {call:8.0}");
        println!(
            "  knit wire: to_wire                {knit_ser:8.0}  ({} bytes)",
            arg.len()
        );
        println!("  knit wire: to_js                  {knit_to_js:8.0}");
        println!("  knit wire: from_js                {knit_from_js:8.0}");
        println!("  knit wire: from_wire              {knit_de:8.0}");
        println!("  knit wire: to_js + from_js        {knit_engine:8.0}");
        println!("    (free fns, nothing cached)      {knit_engine_once:8.0}");
        println!("  knit wire: all four               {knit_all:8.0}");
        println!("  serde_json + JSON.parse/stringify {json_all:8.0}");
        println!(
            "  msgpack (rmp-serde) serialize     {rmp_ser:8.0}  ({} bytes)",
            mp.len()
        );
        println!("  msgpack (rmp-serde) deserialize   {rmp_de:8.0}");
    });
}
