//! Payloads: one round trip echoing a `Vec<u8>` of 8 B … 8 MiB (result
//! `payloads`, in bytes/s; knit also with the bytes in a struct's field, plain
//! and marked `serde_bytes`), and the same echo for each kind of type:
//! primitive, string, struct, bytes (result `types`).
//!
//! `cargo bench --bench payloads [-- --quick] [--filter NAME] [--json] [--out DIR]`
//!
//! Every system has one worker pinned to core 1 and the caller on core 0. The
//! caller clones the payload for every call (the same work for every system);
//! knit encodes it into shared memory and decodes it on the worker, and back,
//! while the peers move the `Vec`'s pointer.

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/peers/mod.rs"]
mod peers;
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use knit_bench::cli::Args;
use knit_bench::results::{fmt_bytes, Chart};
use peers::{add_echo_group, add_group, Contender, Group, Shape, Work};
use serde::{Deserialize, Serialize};
use suite::{Bench, Meta};

#[knit::task]
fn echo_bytes(v: Vec<u8>) -> Vec<u8> {
    v
}

#[knit::task]
fn echo_u64(v: u64) -> u64 {
    v
}

#[knit::task]
fn echo_string(v: String) -> String {
    v
}

/// A typical small record.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    quantity: u32,
    price: f64,
    tags: Vec<String>,
    express: bool,
}

#[knit::task]
fn echo_order(v: Order) -> Order {
    v
}

/// Bytes in a field: serde hands them to the encoder one element at a time
/// (knit copies a whole `Vec<u8>` payload as one block, but not a field).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Blob {
    data: Vec<u8>,
}

#[knit::task]
fn echo_blob(v: Blob) -> Blob {
    v
}

/// The same field marked `serde_bytes`: one length, then one block copy.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ByteBlob {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

#[knit::task]
fn echo_byte_blob(v: ByteBlob) -> ByteBlob {
    v
}

const BYTES: Work<Vec<u8>, Vec<u8>> = Work {
    task: |c, x| c.echo_bytes(x),
    plain: echo_bytes,
};

/// knit echoing the bytes in a field; the caller clones the struct for each
/// call, as the other scenarios clone their `Vec`.
const BLOB: Work<Blob, Blob> = Work {
    task: |c, x| c.echo_blob(x),
    plain: echo_blob,
};

const BYTE_BLOB: Work<ByteBlob, ByteBlob> = Work {
    task: |c, x| c.echo_byte_blob(x),
    plain: echo_byte_blob,
};

/// A one-worker round-trip group; a payload group when `bytes` is given.
fn group(name: &str, iters: u64, bytes: Option<u64>) -> Group<'_> {
    Group {
        x: bytes.map(|b| b as f64),
        bytes,
        ..Group::new(name, Shape::RoundTrips, iters)
    }
}

fn payloads(args: &Args) -> std::io::Result<()> {
    let sizes: &[usize] = args.pick(
        &[8, 1 << 10, 64 << 10],
        &[8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 2 << 20, 8 << 20],
    );
    // Bytes moved per scenario and round: large payloads get fewer calls.
    let budget: u64 = args.pick(4 << 20, 96 << 20);
    let max_iters: u64 = args.pick(2_000, 20_000);
    let about = "One round trip per call: the caller clones a `Vec<u8>` of the given size \
                 and sends it, the worker returns it, the caller drops the result. Throughput \
                 is payload bytes per second one way (the payload crosses twice per call). \
                 One worker pinned to core 1, caller on core 0; calls per round shrink with \
                 size. knit copies the bytes into its shared-memory rings (payloads above 8 KiB \
                 go through the lane's overflow area) and out again on each side; the peers \
                 move the `Vec`'s pointer, so this measures what knit's copy-based design costs. \
                 knit copies a whole `Vec<u8>` payload as one block; \"knit, Vec<u8> field\" \
                 echoes the same bytes as a struct's field, which serde hands over element by \
                 element, and \"knit, serde_bytes field\" the same field marked \
                 `#[serde(with = \"serde_bytes\")]` (one length, then one block copy).";
    let meta = Meta {
        name: "payloads",
        title: "Payload sweep (echo of a Vec<u8>)",
        about,
        rounds: args.pick(3, 11),
        chart: Chart::Lines {
            x_label: "payload size".into(),
            y_label: "payload bytes/s, one way (median)".into(),
            log: true,
        },
        ..Meta::default()
    };
    let mut bench = Bench::new(args, meta);
    let all = Contender::with_peers(Contender::knit());
    let field = [Contender::knit_with(
        "knit, Vec<u8> field",
        knit::PoolOptions::default(),
    )];
    let bytes_field = [Contender::knit_with(
        "knit, serde_bytes field",
        knit::PoolOptions::default(),
    )];
    for &size in sizes {
        let name = fmt_bytes(size as f64);
        let iters = (budget / size as u64).clamp(4, max_iters);
        let group = group(&name, iters, Some(size as u64));
        add_echo_group(&mut bench, group, &all, BYTES, vec![0xA5u8; size]);
        let data = vec![0xA5u8; size];
        add_echo_group(&mut bench, group, &field, BLOB, Blob { data });
        let data = vec![0xA5u8; size];
        add_echo_group(
            &mut bench,
            group,
            &bytes_field,
            BYTE_BLOB,
            ByteBlob { data },
        );
    }
    bench.finish()
}

fn types(args: &Args) -> std::io::Result<()> {
    let iters = args.pick(5_000, 200_000);
    let about = "One round trip per call echoing a value of each kind: a `u64`, a 64-byte \
                 `String`, a struct of six fields (`u64`, a 16-byte `String`, `u32`, `f64`, \
                 three short `String` tags, `bool`) and a 1 KiB `Vec<u8>`. The caller clones \
                 the value for each call. knit encodes and decodes it both ways (serde, \
                 bincode's wire format); the peers move it. One worker on core 1, caller on core 0.";
    let meta = Meta {
        name: "types",
        title: "Type table (echo round trip)",
        about,
        rounds: args.pick(3, 15),
        ..Meta::default()
    };
    let mut bench = Bench::new(args, meta);
    let all = Contender::with_peers(Contender::knit());
    let u64s = Work {
        task: |c, x| c.echo_u64(x),
        plain: echo_u64,
    };
    add_group(&mut bench, group("u64", iters, None), &all, u64s, |i| i);
    let strings = Work {
        task: |c, x| c.echo_string(x),
        plain: echo_string,
    };
    let text = "x".repeat(64);
    add_echo_group(
        &mut bench,
        group("String (64 B)", iters, None),
        &all,
        strings,
        text,
    );
    let orders = Work {
        task: |c, x| c.echo_order(x),
        plain: echo_order,
    };
    let order = Order {
        id: 42,
        customer: "customer-0000042".into(),
        quantity: 3,
        price: 19.99,
        tags: vec!["gift".into(), "fragile".into(), "express".into()],
        express: true,
    };
    add_echo_group(
        &mut bench,
        group("struct (6 fields)", iters, None),
        &all,
        orders,
        order,
    );
    let kib = vec![7u8; 1024];
    add_echo_group(
        &mut bench,
        group("Vec<u8> (1 KiB)", iters, None),
        &all,
        BYTES,
        kib,
    );
    bench.finish()
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    payloads(&args)?;
    types(&args)
}
