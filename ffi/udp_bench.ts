/**
 * Micro-benchmark: how fast a Worker drains a UDP socket with a synchronous
 * FFI poll + recvmmsg loop while another process floods it on loopback.
 *
 * ```
 * deno run -A ffi/udp_bench.ts [--seconds 3] [--count 2000000] [--size 64] [--batch 64]
 * ```
 *
 * As root it runs inside a throwaway network namespace (`oor-b-<random>`,
 * deleted at the end); otherwise on the host's 127.0.0.1. The flood is a
 * separate Deno process sending sendmmsg batches of 64 as fast as the
 * socket takes them, bounded by `--count` datagrams and `--seconds`. The
 * main thread meanwhile runs a 10 ms timer and reports how late it fired,
 * to show that the blocking Worker leaves the event loop alone.
 *
 * Prints one JSON line and a human summary. Figures are not asserted.
 *
 * @module
 */

import { PacketBatch, PollSet, UdpSocket } from "./udp.ts";
import { POLLOUT } from "./libc.ts";

interface Options {
  seconds: number;
  count: number;
  size: number;
  batch: number;
}

function parseArgs(args: string[]): { mode: string; port: number; o: Options } {
  const o: Options = { seconds: 3, count: 2_000_000, size: 64, batch: 64 };
  let mode = "outer";
  let port = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = () => Number(args[++i]);
    if (a === "--seconds") o.seconds = next();
    else if (a === "--count") o.count = next();
    else if (a === "--size") o.size = next();
    else if (a === "--batch") o.batch = next();
    else if (a === "--inner") mode = "inner";
    else if (a === "--flood") {
      mode = "flood";
      port = next();
    } else throw new Error(`unknown argument ${a}`);
  }
  return { mode, port, o };
}

function optionArgs(o: Options): string[] {
  return [
    "--seconds",
    `${o.seconds}`,
    "--count",
    `${o.count}`,
    "--size",
    `${o.size}`,
    "--batch",
    `${o.batch}`,
  ];
}

/** The flood process: sendmmsg batches to 127.0.0.1:port until count or time runs out. */
function flood(port: number, o: Options): void {
  using s = UdpSocket.open({ address: "127.0.0.1", sendBuffer: 8 << 20 });
  const batch = new PacketBatch({ slots: 64 });
  for (let i = 0; i < 64; i++) {
    batch.length[i] = o.size;
    batch.bytes.fill(i, batch.offset[i]!, batch.offset[i]! + o.size);
    batch.setPeer4(i, 0x7f000001, port);
  }
  batch.count = 64;
  const ps = new PollSet([s.fd], POLLOUT);
  const start = performance.now();
  const end = start + o.seconds * 1000;
  let sent = 0;
  let full = 0;
  let errors = 0;
  while (sent < o.count) {
    const want = Math.min(64, o.count - sent);
    const n = s.sendmmsg(batch, 0, want);
    if (n > 0) sent += n;
    else if (n === 0) {
      full++;
      ps.poll(1);
    } else errors++;
    if ((sent & 0x3fff) < 64 && performance.now() > end) break;
  }
  const ms = performance.now() - start;
  console.log(JSON.stringify({ sent, ms, full, errors }));
}

/** Totals of one phase. */
interface PhaseResult {
  sent: number;
  sendRate: number;
  received: number;
  receiveRate: number;
  perRecvmmsg: number;
  mainTimerMaxLateMs: number;
}

/**
 * One phase: a receiver Worker, a flood process, a 10 ms timer on the main
 * loop. `backlog`: the flood fills the socket buffer first and the Worker
 * starts draining after the flood ended (the receiver's own speed, not
 * limited by the sender); otherwise the Worker drains while the flood runs.
 */
async function phase(o: Options, backlog: boolean): Promise<PhaseResult> {
  const shared = new SharedArrayBuffer(8 + 2 * 8);
  const cmd = new Int32Array(shared, 0, 1);
  const worker = new Worker(new URL("./_udp_bench_worker.ts", import.meta.url), { type: "module" });
  const messages: unknown[] = [];
  let wake: (() => void) | undefined;
  worker.onmessage = (m) => {
    messages.push(m.data);
    wake?.();
  };
  const next = async () => {
    while (messages.length === 0) await new Promise<void>((r) => (wake = r));
    return messages.shift();
  };
  try {
    const recvBuffer = backlog ? 256 << 20 : 8 << 20;
    worker.postMessage({ shared, slots: o.batch, address: "127.0.0.1", recvBuffer });
    const { port } = await next() as { port: number };
    if (!backlog) {
      Atomics.store(cmd, 0, 1);
      Atomics.notify(cmd, 0);
    }
    let maxLate = 0;
    let expected = performance.now() + 10;
    const timer = setInterval(() => {
      const now = performance.now();
      maxLate = Math.max(maxLate, now - expected);
      expected = now + 10;
    }, 10);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--flood",
        `${port}`,
        ...optionArgs(o),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const out = await child.output();
    const f = JSON.parse(new TextDecoder().decode(out.stdout)) as { sent: number; ms: number };
    if (backlog) {
      Atomics.store(cmd, 0, 1);
      Atomics.notify(cmd, 0);
    }
    // Stop once the receiver has had 300 ms without anything new.
    const stats = new Float64Array(shared, 8, 2);
    let seen = -1;
    while (stats[0] !== seen) {
      seen = stats[0]!;
      await new Promise((r) => setTimeout(r, 300));
    }
    clearInterval(timer);
    Atomics.store(cmd, 0, 2);
    const r = await next() as { received: number; calls: number; ms: number };
    return {
      sent: f.sent,
      sendRate: Math.round(f.sent / (f.ms / 1000)),
      received: r.received,
      receiveRate: Math.round(r.received / (Math.max(r.ms, 0.001) / 1000)),
      perRecvmmsg: +(r.received / Math.max(r.calls, 1)).toFixed(1),
      mainTimerMaxLateMs: +maxLate.toFixed(1),
    };
  } finally {
    worker.terminate();
  }
}

/** Both phases, printed. */
async function inner(o: Options): Promise<void> {
  const live = await phase(o, false);
  // The backlog must fit the receive buffer: ~1 KiB of kernel memory per small datagram.
  const backlog = await phase({ ...o, count: Math.min(o.count, 100_000) }, true);
  const fmt = (n: number) => n.toLocaleString("en");
  console.log(JSON.stringify({ payloadBytes: o.size, batch: o.batch, live, backlog }));
  console.log(
    `live flood:    Worker drained ${fmt(live.received)} of ${fmt(live.sent)} at ` +
      `${fmt(live.receiveRate)}/s (sender ${fmt(live.sendRate)}/s, ${live.perRecvmmsg} per ` +
      `recvmmsg; main-loop 10 ms timer at most ${live.mainTimerMaxLateMs} ms late)`,
  );
  console.log(
    `backlog drain: Worker drained ${fmt(backlog.received)} queued datagrams at ` +
      `${fmt(backlog.receiveRate)}/s (${backlog.perRecvmmsg} per recvmmsg)`,
  );
}

/** Runs `inner` in a fresh namespace (root) or directly on the host loopback. */
async function outer(o: Options): Promise<void> {
  const self = new URL(import.meta.url).pathname;
  if (Deno.uid() !== 0) {
    console.log("not root: running on the host's 127.0.0.1");
    await inner(o);
    return;
  }
  const ns = `oor-b-${crypto.randomUUID().slice(0, 8)}`;
  const ip = (...args: string[]) => {
    const r = new Deno.Command("ip", { args, stderr: "piped" }).outputSync();
    if (r.code !== 0) {
      throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
    }
  };
  ip("netns", "add", ns);
  try {
    ip("-n", ns, "link", "set", "lo", "up");
    const r = await new Deno.Command("ip", {
      args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", self, "--inner", ...optionArgs(o)],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (r.code !== 0) throw new Error(`benchmark failed in ${ns}`);
  } finally {
    ip("netns", "del", ns);
  }
}

if (import.meta.main) {
  const { mode, port, o } = parseArgs(Deno.args);
  if (mode === "flood") flood(port, o);
  else if (mode === "inner") await inner(o);
  else await outer(o);
}
