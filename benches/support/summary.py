#!/usr/bin/env python3
"""Renders DIR/SUMMARY.md from the results' Markdown (run by ./run.sh after a full run).

    python3 benches/support/summary.py results

Each results/<name>.md (written by the bench binaries) holds a part between
`<!-- summary:begin <name> -->` and `<!-- summary:end -->`: its ratio table,
chart and where knit is behind. SUMMARY.md is a header (hardware, method, how
to read it) plus those parts in a fixed order, then the reasons where knit
loses. It is the artefact; the README only links to it. Nothing here holds a
figure: every number comes from the results.
"""

import pathlib
import re
import sys

ORDER = ["pool", "inline", "payloads", "types", "scaling", "skewed", "settling", "transport", "js", "strict"]

HEADER = """## Performance

knit side by side with its peers, measured by `./run.sh` (see `run.sh --help`;
`cargo bench -p knit-bench --bench <pool|payloads|scaling|settling|transport>`,
or `--features js --bench <js|strict>`, runs the same code; the method and the goals are in
[docs/performance.md](../docs/performance.md)).
**The figures below are from one full run on the machine named here and will
move between runs:** these are shared 2-vCPU VMs, where absolute times drift
by tens of percent from run to run; the ratios are steadier.

- **Hardware:** {machine}
- **Peers**, each doing exactly knit's work (same function, same inputs, same
  batch sizes; one worker pinned to core 1 and the caller on core 0 unless said
  otherwise): a crossbeam-channel request/response pool in two forms (one
  reply channel shared by all calls, and a one-slot reply channel per call, so
  each call has its own handle as a knit `Call` does), a std mpsc pool, rayon
  (`spawn`, reply on a channel), tokio `spawn_blocking`; and as floors, the
  bare two-thread atomic ping-pong and futex ping-pong. std mpsc and tokio's
  blocking pool park their threads almost at once, so each of their round trips
  pays a kernel wake-up (tens of µs on these VMs): that is most of what their
  ratios of 0.01× show.
- **Method:** every scenario is calibrated to a time budget, warmed up, then run
  in rounds interleaved across systems (fresh pool each round). Reported: the
  median and p99 of the round means. Each knit figure is given as a ratio to
  each peer measured in the same run: the median of per-round ratios, so a noisy
  moment affects both sides. **Below 1 means knit is faster**; the lists of
  where knit is behind skip ratios within 5% of 1 (noise here).
- **The pool's goals** (from its design, not from this run): hot round trip
  ≤ 1.5× the atomic ping-pong; batches of 1000 ≤ 0.5× crossbeam's time per
  call; parked call ≤ 1.3× the futex ping-pong; an idle pool ≤ 2% of a core.
- **The JS host's goals:** a warm JS call ≤ 1.3× (the same call on an
  in-process QuickJS context + knit's no-op round trip); ≥ 15× faster than
  piscina's round trip; batches of 1000 at ≥ 20× piscina's throughput; a
  5-field struct to JS and back in < 1 µs. The js family lists each as a
  figure of its own under its table.
- **Strict mode's goal:** a call of a trivial untrusted script, each in a
  pristine engine of its own, ≤ 100 µs end to end and below the naive fresh
  full context (a new runtime and `Context::full`, the bytecode loaded, the
  call, all dropped); the strict family states under its table whether it is
  met.
- Full tables (medians, p99, throughput) and the method of each family:
  {links}.
"""

WHY = """### Where knit loses, and why

The lists under each table are generated from the run. The reasons, as far as
the pool's design at the time of this run explains them:

- **Hot round trip:** the floor moves one cache line each way. A knit call
  moves the ring's index and frame lines to the worker and the call slot's
  line back. The frame's line is asked for as soon as the worker sees the
  index move, so it travels while the worker gets back to its drain loop
  (about 3% of a round trip); publishing frames by a stamp in the frame's
  own line instead was no faster (see [docs/transport.md](../docs/transport.md)).
  What knit adds is work on both sides: encode and decode, the lane's lock,
  the slot's bookkeeping. In cpu-clock samples of a 3M-call loop, about a
  quarter of the two threads' time is outside their spin loops, and that
  work sits on the round trip one for one: 25 ns of extra work on either
  thread made a hot loop 27-35 ns slower. So the remaining cost is the
  number of instructions on the two paths (about 400 on the caller's send,
  150 on its collection, 450 on the worker's run, counted by callgrind), not
  one hot spot. The worker claims a call without writing the caller's slot
  line, the caller's release writes nothing to it, and the two
  store-then-load handshakes on the path (publish/park, and the worker's
  claim) use asymmetric fences whose costly half (membarrier) runs only on
  the rare side, so no locked instruction waits on a line the other core
  holds; before those changes a call moved three lines and took about 2× the
  floor.
- **Batches of no-op calls:** the "lane echo" floors beside each batch group
  are knit-transport alone, with no pool at all (no call slots, no task, no
  encoding), echoing as many 8-byte messages in flight. In the runs so far
  that echo takes 0.7× to 1.1× the time of the crossbeam pool that drains one
  shared reply channel (compare the two rows in the batch 1000 figures). So
  the design's goal for batches of 1000, half crossbeam's time, is below what
  the transport itself does: no pool that sends a frame per call over these
  rings can meet it against that peer. Meeting it would need a different
  transport (several calls per frame, smaller frames) as well as a much
  shorter pool path. A knit call with a `u64` argument writes a 40-byte frame
  (a 32-byte header), and its call slot's 64-byte line goes to the worker and
  back (written at the send and at the finish); a crossbeam message of a
  `u64` is a 16-byte slot each way. Against the crossbeam pool that routes
  each result to the call that asked for it (a reply channel per call, as a
  knit `Call<T>` or any pool serving many callers and futures must), knit
  takes well under half the time.
  On top of the echo, knit's pool costs about 40 to 55 ns per call, and the
  calling thread sets the pace: adding a locked instruction to the worker's
  path left batch time unchanged, adding one to the caller's added about
  10 ns per call. The caller runs about 700 instructions per call (callgrind:
  about 320 to send, 250 to collect and free, the rest the batch loop) and
  two locked instructions: the lane lock's compare-and-swap, and the
  free-list push when a result is collected. Each waits for the caller's
  earlier stores to reach lines the worker holds.
  Two unsafe single-caller experiments (not kept) removed them:
  - a per-thread stash of freed slots took a batch of 1000 from 73.6 to 60.3 ns
    per call in one run and from 59.2 to 55.2 ns in another (medians of 20
    interleaved pairs each);
  - with the stash in both arms, a lane lock without its compare-and-swap took
    it from 53.9 to 46.3 ns.
  Both results are still above crossbeam's time, and each has a cost of its
  own: the stash hides freed slots in threads' thread-locals (so
  `max_in_flight` would become approximate, and a dropped pool's memory would
  stay until such a thread uses knit again or exits); a lock with no
  compare-and-swap needs biased locking with its own revocation handshake.
  (A `Call` no longer holds an `Arc`, which was two more locked instructions.)
- **Payloads:** knit encodes the argument into shared memory and decodes it on
  the worker (and the result back): two copies per direction. A payload that
  is a whole `Vec<u8>` is copied as one block; bytes in a struct's field go
  through serde element by element (the "knit, Vec<u8> field" rows) unless
  the field is marked `#[serde(with = "serde_bytes")]` (the "knit,
  serde_bytes field" rows), which is what to do for byte buffers inside
  other types. The in-process peers move a pointer: the copies are the price
  of a transport that also serves process lanes.
- **CPU-bound work on every core:** with as many workers as cores, a waiting
  caller shares its core with a worker. Its spin (50 µs by default, before it
  parks) then yields the core between looks instead of keeping it: before
  that change, a spinning caller took its core's worker's time, and two
  workers on two cores took 1.21× crossbeam's time (1.01×-1.03× after).
- **Inline lane on no-op batches:** the caller takes a share of the calls only
  to find nothing worth doing; with about 1 µs of work per task it acts as a
  second worker and wins.
- **Skewed work:** knit's balancers place a call on a lane when it is sent; a
  long task holds up the calls queued behind it on its lane, while a shared
  queue (crossbeam) hands each task to whichever worker is free.
"""


def summary_part(text: str) -> str:
    m = re.search(r"<!-- summary:begin \S+ -->\n(.*?)<!-- summary:end -->", text, re.S)
    return m.group(1).strip() if m else ""


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: summary.py DIR (the results directory)")
    out = pathlib.Path(sys.argv[1])
    files = {p.stem: p for p in out.glob("*.md") if p.stem != "SUMMARY"}
    names = [n for n in ORDER if n in files] + sorted(n for n in files if n not in ORDER)
    if not names:
        sys.exit(f"summary.py: no results in {out}")
    texts = {n: files[n].read_text() for n in names}
    m = re.search(r"^Machine: (.*?)\. From", texts[names[0]], re.M)
    machine = m.group(1) if m else "unknown"
    links = ", ".join(f"[{n}]({n}.md)" for n in names)
    parts = [HEADER.format(machine=machine, links=links)]
    for n in names:
        title = re.search(r"^## (.*)$", texts[n], re.M)
        parts.append(f"### {title.group(1) if title else n}\n\n{summary_part(texts[n])}\n")
    parts.append(WHY)
    (out / "SUMMARY.md").write_text("\n".join(parts))
    print(f"wrote {out / 'SUMMARY.md'}")


if __name__ == "__main__":
    main()
