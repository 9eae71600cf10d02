/**
 * Load generator of `deno task bench:control`, run in its own process by
 * scripts/bench_control.ts so it does not share an event loop (or a CPU)
 * with the map-server it measures. Sends only to 127.0.0.1.
 *
 * Two phases, each `--duration` seconds of sending then up to `--drain`
 * seconds of waiting for the last answers:
 *
 * 1. registrations: authenticated Map-Registers (HMAC-SHA-256-128, key
 *    type 2) with the M bit, one per distinct /24 of `--site` (10.0.0.0/8:
 *    10.0.0.0/24, 10.0.1.0/24, ...), all signed before the clock starts. A
 *    Map-Notify with the nonce of a Map-Register counts it as registered.
 * 2. requests: ECM Map-Requests for a host in each /24 that got a
 *    Map-Notify. The messages are built before the clock starts with a
 *    zero inner UDP checksum ("none", allowed over IPv4) so the nonce can
 *    be patched in at send time; each nonce is a sequence number.
 *
 * Both phases keep at most `--window` messages outstanding (keyed by
 * nonce) and send the next one as each answer comes in. A message not
 * answered within `--expire` seconds frees its window slot, and still
 * counts as answered (late) if its answer comes before the phase ends.
 * Loss is sent minus answered at the end of the drain.
 *
 * Prints `mark start PHASE` and `mark stop PHASE` on standard output when
 * it starts and stops sending (the parent samples the map-server's CPU
 * time there), then one JSON line:
 * `{"registrations":{...},"requests":{...},"window":..,"durationS":..}`.
 *
 * Linux only: the socket is libc's, through FFI (see `SyncUdp`).
 *
 * ```
 * deno run -A scripts/_loadgen.ts --port N [--duration S] [--window N]
 *   [--key K] [--site 10.0.0.0/8] [--prefixes N] [--drain S] [--phases reg,req]
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { ipAddress } from "../wire/address.ts";
import { HmacKey, KEY_ID_HMAC_SHA256_128 } from "../wire/auth.ts";
import { emitEcm } from "../wire/ecm.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import { ipv4FromBytes, ipv4ToBytes } from "../wire/ip_text.ts";
import { locatorRecord } from "../wire/locator.ts";

/** Where things sit in the messages we build and read. */
const NONCE_OFFSET = 4; // Map-Register, Map-Notify, Map-Request, Map-Reply: bytes 4..11
/** ECM header (4) + IPv4 header (20) + UDP header (8): the inner Map-Request starts here. */
const ECM_INNER_OFFSET = 32;
/** Inner UDP checksum: ECM header (4) + IPv4 header (20) + 6. */
const ECM_UDP_CHECKSUM = 30;
const TYPE_MAP_REPLY = 2;
const TYPE_MAP_NOTIFY = 4;
/** Map-Reply: record count at byte 3; first record's locator count at 12 + 4. */
const REPLY_RECORD_COUNT = 3;
const REPLY_FIRST_LOCATOR_COUNT = 16;

/** Figures of one phase. */
export interface PhaseResult {
  /** Messages sent. */
  readonly sent: number;
  /** Messages answered by the end of the drain. */
  readonly answered: number;
  /** Answers received before the sending deadline. */
  readonly answeredInTime: number;
  /** Answers that came after their message had expired (still counted as answered). */
  readonly late: number;
  /** sent - answered. */
  readonly lost: number;
  /** Answers before the deadline per second of sending. */
  readonly perSecond: number;
  /** Median latency in milliseconds. */
  readonly medianMs: number;
  /** 99th percentile latency in milliseconds. */
  readonly p99Ms: number;
  /** Highest latency in milliseconds. */
  readonly maxMs: number;
  /** Map-Replies with at least one locator (requests phase only). */
  readonly positive?: number;
  /** Answers we could not match to a message (wrong type or nonce). */
  readonly stray: number;
  /** CPU the load generator used, as a share of one core. */
  readonly loadgenCpu: number;
  /** Seconds actually spent sending. */
  readonly seconds: number;
}

interface Phase {
  /** Name for messages. */
  readonly name: string;
  /** Number of message slots (a power of two). */
  readonly slots: number;
  /** Bytes to send for sequence number `seq` (may patch a shared template: sent right away). */
  message(seq: number): Uint8Array;
  /** The sequence number an answer is for, or -1 when it is not one of ours. */
  match(bytes: Uint8Array, view: DataView): number;
  /** Whether an answer is a positive one (requests). */
  positive?(bytes: Uint8Array): boolean;
}

const encoder = new TextEncoder();

/**
 * Writes `mark TEXT` on standard output right away, so the parent can
 * sample the map-server's CPU time when sending starts and stops.
 */
function mark(text: string): void {
  const b = encoder.encode(`mark ${text}\n`);
  let off = 0;
  while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.floor(q * sorted.length));
  return sorted[i]!;
}

// ---------------------------------------------------------------------------
// A UDP socket through synchronous libc calls. The load generator owns its
// process, so it may block in poll(); each datagram then costs one sendto()
// or recv() system call and no trip through the event loop. It uses a
// quarter to a third of a core at 30-40k answers a second, where a client
// on node:dgram or Deno.listenDatagram managed 10-18k request/reply pairs
// a second against a bare echo server on this 2-core machine, and so would
// have measured itself rather than the map-server.

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0x800;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_SNDBUF = 7;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;

const LIBC = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

/** struct sockaddr_in for 127.0.0.1:port (family host-endian, port big-endian). */
function sockaddr(port: number): Uint8Array {
  const sa = new Uint8Array(16);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  sa.set([127, 0, 0, 1], 4);
  return sa;
}

/** A nonblocking IPv4 UDP socket on 127.0.0.1 driven by synchronous libc calls. */
class SyncUdp {
  readonly #lib = Deno.dlopen("libc.so.6", LIBC);
  readonly #fd: number;
  readonly #pollfd = new Uint8Array(8);
  readonly #to: Uint8Array;
  /** The bound port. */
  readonly port: number;
  /** sendto() calls that failed (buffer full or another error). */
  sendErrors = 0;

  constructor(targetPort: number) {
    const c = this.#lib.symbols;
    this.#fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (this.#fd < 0) throw new Error("socket() failed");
    const size = new Int32Array([4 << 20]);
    c.setsockopt(this.#fd, SOL_SOCKET, SO_RCVBUF, new Uint8Array(size.buffer), 4);
    c.setsockopt(this.#fd, SOL_SOCKET, SO_SNDBUF, new Uint8Array(size.buffer), 4);
    if (c.bind(this.#fd, sockaddr(0), 16) !== 0) throw new Error("bind() failed");
    const name = new Uint8Array(16);
    const len = new Uint32Array([16]);
    c.getsockname(this.#fd, name, new Uint8Array(len.buffer));
    this.port = new DataView(name.buffer).getUint16(2, false);
    const pv = new DataView(this.#pollfd.buffer);
    pv.setInt32(0, this.#fd, true);
    pv.setInt16(4, POLLIN, true);
    this.#to = sockaddr(targetPort);
  }

  /** Sends one datagram to the target; false when the kernel refused it. */
  send(bytes: Uint8Array): boolean {
    const n = this.#lib.symbols.sendto(this.#fd, bytes, BigInt(bytes.length), 0, this.#to, 16);
    if (Number(n) < 0) {
      this.sendErrors++;
      return false;
    }
    return true;
  }

  /** One datagram into `buf`; its length, or -1 when none is waiting. */
  recv(buf: Uint8Array): number {
    return Number(this.#lib.symbols.recv(this.#fd, buf, BigInt(buf.length), MSG_DONTWAIT));
  }

  /** Waits up to `ms` for a datagram to arrive. */
  wait(ms: number): void {
    this.#lib.symbols.poll(this.#pollfd, 1n, ms);
  }

  /** Closes the socket and the library. */
  close(): void {
    this.#lib.symbols.close(this.#fd);
    this.#lib.close();
  }
}

/**
 * Runs one phase: window-limited, `durationMs` of sending, then up to
 * `drainMs` more for the answers still due. Blocks the thread throughout.
 */
function runPhase(
  socket: SyncUdp,
  phase: Phase,
  opts: { window: number; durationMs: number; drainMs: number; expireMs: number },
): PhaseResult {
  const slots = phase.slots;
  const mask = slots - 1;
  const sentAt = new Float64Array(slots);
  const slotSeq = new Float64Array(slots).fill(-1);
  /** 0 free, 1 outstanding, 2 expired (not answered yet). */
  const state = new Uint8Array(slots);
  let latencies = new Float64Array(1 << 20);
  let nLat = 0;
  let seq = 0;
  let oldest = 0; // lowest sequence number that may still be outstanding
  let inFlight = 0;
  let sent = 0;
  let answered = 0;
  let answeredInTime = 0;
  let late = 0;
  let positive = 0;
  let stray = 0;
  const buf = new Uint8Array(65536);
  const view = new DataView(buf.buffer);
  mark(`start ${phase.name}`);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + opts.durationMs;
  let drainEnd = Infinity;
  let sending = true;
  let nextSweep = start + 50;

  for (;;) {
    let now = performance.now();
    if (sending && now >= deadline) {
      mark(`stop ${phase.name}`);
      sending = false;
      drainEnd = now + opts.drainMs;
    }
    if (!sending && (inFlight === 0 || now >= drainEnd)) break;
    if (now >= nextSweep) {
      // Frees the window slots of messages unanswered for expireMs, so a
      // lost datagram does not shrink the window for the rest of the run.
      nextSweep = now + 50;
      const limit = now - opts.expireMs;
      while (oldest < seq) {
        const slot = oldest & mask;
        if (slotSeq[slot] === oldest && state[slot] === 1) {
          if (sentAt[slot]! > limit) break;
          state[slot] = 2;
          inFlight--;
        }
        oldest++;
      }
    }
    while (sending && inFlight < opts.window) {
      const s = seq;
      const slot = s & mask;
      if (state[slot] === 1) break; // wrapped onto an outstanding message: wait
      if (!socket.send(phase.message(s))) break;
      seq++;
      state[slot] = 1;
      slotSeq[slot] = s;
      sentAt[slot] = performance.now();
      inFlight++;
      sent++;
    }
    socket.wait(1);
    let n: number;
    while ((n = socket.recv(buf)) > 0) {
      const msg = buf.subarray(0, n);
      const s = phase.match(msg, view);
      const slot = s & mask;
      if (s < 0 || slotSeq[slot] !== s || state[slot] === 0) {
        stray++;
        continue;
      }
      now = performance.now();
      if (state[slot] === 1) inFlight--;
      else late++;
      state[slot] = 0;
      answered++;
      if (sending) answeredInTime++;
      if (phase.positive?.(msg)) positive++;
      if (nLat === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[nLat++] = now - sentAt[slot]!;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - start;
  const lat = latencies.slice(0, nLat).sort();
  const seconds = opts.durationMs / 1000;
  return {
    sent,
    answered,
    answeredInTime,
    late,
    lost: sent - answered,
    perSecond: Math.round(answeredInTime / seconds),
    medianMs: round3(percentile(lat, 0.5)),
    p99Ms: round3(percentile(lat, 0.99)),
    maxMs: round3(nLat > 0 ? lat[nLat - 1]! : 0),
    ...(phase.positive !== undefined ? { positive } : {}),
    stray,
    loadgenCpu: Math.round((cpu.user + cpu.system) / 1000 / wall * 100) / 100,
    seconds,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The /24s of an IPv4 prefix of length ≤ 24, in order, at most `max`. */
function slash24s(prefix: string, max: number): string[] {
  const [addr, lenText] = prefix.split("/");
  const len = Number(lenText);
  const b = new Uint8Array(4);
  if (addr === undefined || !ipv4ToBytes(addr, b, 0) || !(len >= 0 && len <= 24)) {
    throw new TypeError(`--site must be an IPv4 prefix of length 0..24, got ${prefix}`);
  }
  const base = new DataView(b.buffer).getUint32(0, false) & (len === 0 ? 0 : ~0 << (32 - len));
  const count = Math.min(max, 2 ** (24 - len));
  const out: string[] = [];
  const o = new Uint8Array(4);
  const ov = new DataView(o.buffer);
  for (let i = 0; i < count; i++) {
    ov.setUint32(0, (base + (i << 8)) >>> 0, false);
    out.push(ipv4FromBytes(o, 0));
  }
  return out;
}

/** Smallest power of two ≥ n. */
function pow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function main(): void {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      duration: { type: "string", default: "5" },
      drain: { type: "string", default: "1" },
      expire: { type: "string", default: "1" },
      window: { type: "string", default: "128" },
      key: { type: "string", default: "bench-key" },
      site: { type: "string", default: "10.0.0.0/8" },
      prefixes: { type: "string", default: "65536" },
      phases: { type: "string", default: "reg,req" },
    },
  });
  const port = Number(values.port);
  if (!(port > 0 && port < 65536)) throw new TypeError("--port N is required");
  const durationMs = Math.min(30, Number(values.duration)) * 1000;
  const drainMs = Number(values.drain) * 1000;
  const expireMs = Number(values.expire) * 1000;
  const window = Number(values.window);
  const phases = new Set(values.phases.split(","));
  const prefixes = slash24s(values.site, Number(values.prefixes));
  if (phases.has("reg") && prefixes.length < window * 2) {
    throw new RangeError(`--prefixes must be at least twice --window (${window * 2})`);
  }
  const socket = new SyncUdp(port);
  const myPort = socket.port;
  const tag = crypto.getRandomValues(new Uint32Array(1))[0]! >>> 0;
  const opts = { window, durationMs, drainMs, expireMs };
  const out: Record<string, unknown> = { window, durationS: durationMs / 1000 };

  // Phase 1: registrations, signed up front. Nonce = tag:index.
  const key = new HmacKey(KEY_ID_HMAC_SHA256_128, values.key);
  const registered = new Uint8Array(prefixes.length);
  if (phases.has("reg")) {
    const t0 = performance.now();
    const regs = prefixes.map((p, i) =>
      emitSignedMapRegister({
        proxyReply: true,
        securityCapable: false,
        xtrIdPresent: true,
        rtr: false,
        eidNotify: false,
        useTtlForTimeout: false,
        mergeRequest: false,
        mobileNode: false,
        wantMapNotify: true,
        nonce: (BigInt(tag) << 32n) | BigInt(i),
        keyId: KEY_ID_HMAC_SHA256_128,
        authData: new Uint8Array(0),
        records: [{
          ttl: 1440,
          maskLen: 24,
          action: 0,
          authoritative: true,
          incomplete: false,
          sigCount: 0,
          mapVersion: 0,
          eid: ipAddress(p),
          // Loopback RLOCs: if the map-server ever forwards a request
          // to "the ETR", it stays on this machine.
          locators: [
            locatorRecord(ipAddress(`127.0.1.${(i % 250) + 1}`), 1, 100, { local: true }),
          ],
        }],
        xtrId: 0x0123456789abcdefn,
        siteId: 1n,
      }, key)
    );
    out["signSeconds"] = round3((performance.now() - t0) / 1000);
    const n = regs.length;
    // Message i goes out as sequence numbers i, i+n, i+2n...; its Map-Notify
    // only names i, and answers the latest send (the window is below n).
    const latest = new Float64Array(n).fill(-1);
    const reg = runPhase(socket, {
      name: "registrations",
      slots: pow2(Math.max(n, window * 4)),
      message(s) {
        latest[s % n] = s;
        return regs[s % n]!;
      },
      match(bytes, view) {
        if (bytes.length < 12 || bytes[0]! >>> 4 !== TYPE_MAP_NOTIFY) return -1;
        if (view.getUint32(NONCE_OFFSET, false) !== tag) return -1;
        const i = view.getUint32(NONCE_OFFSET + 4, false);
        if (i >= n) return -1;
        registered[i] = 1;
        return latest[i]!;
      },
    }, opts);
    out["registrations"] = reg;
  } else {
    registered.fill(1);
  }

  // Phase 2: Map-Requests for hosts (.1) of the registered /24s.
  if (phases.has("req")) {
    const hosts: Uint8Array[] = [];
    for (let i = 0; i < prefixes.length; i++) {
      if (registered[i] !== 1) continue;
      const host = prefixes[i]!.replace(/\.0$/, ".1");
      const inner = emitMapRequest({
        authoritative: false,
        probe: false,
        smr: false,
        pitr: false,
        smrInvoked: false,
        localXtr: false,
        dontMapReply: false,
        nonce: 0n,
        sourceEid: { kind: "none" },
        itrRlocs: [{ kind: "ipv4", ip: "127.0.0.1" }],
        records: [{ maskLen: 32, eid: { kind: "ipv4", ip: host } }],
      });
      const ecm = emitEcm({
        security: false,
        ddtOriginated: false,
        forRtr: false,
        rtrRelayed: false,
        inner: { src: "127.0.0.1", dst: host, srcPort: myPort, dstPort: 4342, ttl: 64 },
        payload: inner,
      });
      ecm[ECM_UDP_CHECKSUM] = 0;
      ecm[ECM_UDP_CHECKSUM + 1] = 0;
      hosts.push(ecm);
    }
    if (hosts.length === 0) {
      out["requests"] = { error: "no prefix was registered" };
    } else {
      const m = hosts.length;
      const req = runPhase(socket, {
        name: "requests",
        slots: pow2(Math.max(65536, window * 4)),
        message(s) {
          // A fresh copy: the socket may read the bytes after we return.
          const b = hosts[s % m]!.slice();
          const v = new DataView(b.buffer);
          v.setUint32(ECM_INNER_OFFSET + NONCE_OFFSET, tag, false);
          v.setUint32(ECM_INNER_OFFSET + NONCE_OFFSET + 4, s, false);
          return b;
        },
        match(bytes, view) {
          if (bytes.length < 12 || bytes[0]! >>> 4 !== TYPE_MAP_REPLY) return -1;
          if (view.getUint32(NONCE_OFFSET, false) !== tag) return -1;
          return view.getUint32(NONCE_OFFSET + 4, false);
        },
        positive: (bytes) =>
          bytes.length > REPLY_FIRST_LOCATOR_COUNT && bytes[REPLY_RECORD_COUNT]! > 0 &&
          bytes[REPLY_FIRST_LOCATOR_COUNT]! > 0,
      }, opts);
      out["requests"] = req;
    }
  }
  out["sendErrors"] = socket.sendErrors;
  socket.close();
  console.log(JSON.stringify(out));
}

if (import.meta.main) {
  main();
}
