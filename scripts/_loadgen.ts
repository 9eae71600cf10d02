/**
 * Load generator of `deno task bench:control`: one process (run by
 * scripts/bench_control.ts inside the map-server's network namespace)
 * whose Workers (scripts/_loadgen_worker.ts) send and receive in batches
 * (`sendmmsg`/`recvmmsg` through ffi/udp.ts, `poll()` when idle), so that
 * the generator is not what limits the figures; it measures its own CPU
 * to say when it is.
 *
 * Phases, run in the order given, each `--seconds` of sending then up to
 * `--drain` seconds of waiting for the last answers:
 *
 * - `negative`: ECM'd Map-Requests for hosts in `--negative-site`, a
 *   configured site nobody registers in: every answer is a negative
 *   Map-Reply.
 * - `register-kt1` / `register-kt2`: Map-Registers with the P (proxy-reply)
 *   and M (want Map-Notify) bits, one per /24 of `--kt1-site` (signed with
 *   HMAC-SHA-1-96, key type 1) or `--kt2-site` (HMAC-SHA-256-128, key type
 *   2), all signed before the clock starts; a Map-Notify with the nonce of
 *   a Map-Register counts it.
 * - `positive`: ECM'd Map-Requests for hosts in the /24s that got a
 *   Map-Notify in the last registration phase before it: the map-server
 *   proxy-replies with the registered locator.
 *
 * A `--warmup` of negative Map-Requests (not reported) comes first.
 *
 * Closed loop by default: at most `--window` messages outstanding (split
 * between the Workers), the next sent as each answer comes in. With
 * `--rate R`, open loop: R messages a second, still never more than
 * `--window` outstanding. A message not answered within `--expire` seconds
 * frees its window slot, and still counts as answered (late) if its answer
 * comes before the drain ends. Loss is sent minus answered at the end of the
 * drain; answered/s counts the answers received while sending.
 *
 * At the start and the end of each phase's sending, the main thread samples
 * the CPU time of this process (all its threads) and, with `--server-pid`,
 * of the map-server's process tree (/proc/PID/stat, utime + stime of it and
 * its descendants), and the machine's busy time (/proc/stat). A phase is
 * `generatorLimited` when this process used at least 85 % of one core per
 * Worker (the figure may then be the generator's own limit: add
 * `--workers`), `machineLimited` when the machine was at least 90 % busy,
 * and `contended` when work other than these two used a quarter of a core
 * or more (the rates are then noisy; the CPU per message much less so).
 *
 * Measured here (2 cores, VM) against a C responder that answers batches
 * with recvmmsg/sendmmsg, one Worker used about 4.5 µs of CPU per
 * request/answer pair at window 512 (210k answers/s with 0.97 of a core),
 * most of it the kernel's loopback delivery, which is charged to the
 * sender; against a server answering one datagram at a time the batches
 * it receives are smaller and it costs 7-9 µs.
 *
 * Progress goes to standard error; the result is one JSON line on standard
 * output: `{"mode":..,"phases":{"negative":{...},...},...}` (see
 * {@link LoadgenResult} and {@link PhaseResult}).
 *
 * The earlier interface of the single-socket generator still works: with
 * `--duration`, `--key`, `--site` or `--phases reg,req` it registers the /24s
 * of `--site` with key type 2 (`reg`) and asks for hosts in them (`req`:
 * positive after `reg`, negative without), prints `mark start|stop
 * registrations|requests` where it samples the CPU, and ends with
 * `{"registrations":{..},"requests":{..},"window":..,"durationS":..}`.
 *
 * ```
 * deno run -A scripts/_loadgen.ts --port N [--target 127.0.0.1]
 *   [--phases negative,register-kt1,register-kt2,positive] [--seconds S] [--warmup S]
 *   [--drain S] [--expire S] [--window N] [--rate R] [--workers N] [--batch N]
 *   [--prefixes N] [--negative-site P] [--kt1-site P] [--kt1-key K]
 *   [--kt2-site P] [--kt2-key K] [--server-pid PID]
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import {
  type FromWorker,
  Histogram,
  type PhaseKind,
  type Plan,
  type ToWorker,
  type WorkerCounts,
} from "./_loadgen_worker.ts";

/** Longest phase allowed, seconds. */
export const MAX_PHASE_SECONDS = 30;
/** The phases, in the order a full run takes them. */
export const PHASES: readonly PhaseKind[] = [
  "negative",
  "register-kt1",
  "register-kt2",
  "positive",
];
/** Share of a core per Worker above which a phase is flagged generator-limited. */
export const GENERATOR_LIMIT = 0.85;
/** Share of the machine's cores above which a phase is flagged machine-limited. */
export const MACHINE_LIMIT = 0.9;
/** Cores of other work above which a phase is flagged contended. */
export const CONTENDED = 0.25;

/** Figures of one phase (summed over the Workers). */
export interface PhaseResult {
  /** Messages sent. */
  readonly sent: number;
  /** Messages answered by the end of the drain. */
  readonly answered: number;
  /** Answers received while sending. */
  readonly answeredInTime: number;
  /** Answers that came after their message had expired (still answered). */
  readonly late: number;
  /** sent - answered. */
  readonly lost: number;
  /** Answers received while sending, per second of sending. */
  readonly perSecond: number;
  /** Messages sent per second of sending. */
  readonly sentPerSecond: number;
  /** Median latency, ms (1 µs buckets). */
  readonly medianMs: number;
  /** 99th percentile latency, ms. */
  readonly p99Ms: number;
  /** Highest latency, ms. */
  readonly maxMs: number;
  /** Map-Replies with a locator. */
  readonly positive: number;
  /** Answers of the expected type we could not match. */
  readonly stray: number;
  /** Datagrams of other types (e.g. Map-Referrals), by LISP type number. */
  readonly other: Record<string, number>;
  /** sendmmsg calls refused because the socket buffer was full; datagrams refused otherwise. */
  readonly sendFull: number;
  readonly sendErrors: number;
  /** Datagrams per sendmmsg / recvmmsg call that moved something. */
  readonly sendBatch: number;
  readonly recvBatch: number;
  /** CPU this generator used while sending, in cores (all its threads). */
  readonly loadgenCpu: number;
  /** The generator's CPU per answer, µs. */
  readonly loadgenCpuMicrosPerMessage: number;
  /** CPU the map-server used while the generator sent, in cores (with --server-pid). */
  readonly serverCpu?: number;
  /** The map-server's CPU per answer, µs. */
  readonly serverCpuMicrosPerMessage?: number;
  /** Busy CPU of the whole machine (all processes, interrupts, steal), in cores. */
  readonly machineBusy: number;
  /** Of which softirq (here mostly the datagrams' delivery, charged to the sender), in cores. */
  readonly softirqCpu: number;
  /** Busy CPU neither the generator nor the map-server used: other work, in cores. */
  readonly otherCpu: number;
  /** The generator used ≥ 85 % of a core per Worker: the figure may be its own limit. */
  readonly generatorLimited: boolean;
  /** The machine was ≥ 90 % busy: the processes competed for the cores. */
  readonly machineLimited: boolean;
  /** Other work used ≥ 0.25 of a core: the rates are noisy (CPU per message is steadier). */
  readonly contended: boolean;
  /** Seconds of sending. */
  readonly seconds: number;
}

/** What the generator prints as its last line. */
export interface LoadgenResult {
  readonly mode: "closed" | "open";
  readonly window: number;
  readonly rate: number;
  readonly workers: number;
  readonly batch: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly prefixes: number;
  /** Seconds spent building and signing the messages. */
  readonly buildSeconds: number;
  readonly cores: number;
  readonly phases: Partial<Record<PhaseKind, PhaseResult | { readonly error: string }>>;
}

const round = (x: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** User + system CPU seconds of `pid` and its descendants (0 when it is gone). */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  const seen = new Set<number>();
  const visit = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${p}/stat`);
    } catch {
      return;
    }
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(f[11]) + Number(f[12]);
    let tasks: string[] = [];
    try {
      tasks = [...Deno.readDirSync(`/proc/${p}/task`)].map((d) => d.name);
    } catch { /* gone */ }
    for (const t of tasks) {
      let children = "";
      try {
        children = Deno.readTextFileSync(`/proc/${p}/task/${t}/children`);
      } catch { /* gone, or no CONFIG_PROC_CHILDREN */ }
      for (const c of children.split(" ")) if (c.trim() !== "") visit(Number(c));
    }
  };
  visit(pid);
  // /proc reports clock ticks of USER_HZ, 100 on Linux.
  return ticks / 100;
}

/** The machine's busy and softirq CPU seconds so far, all cores (/proc/stat). */
export function machineCpuSeconds(): { busy: number; softirq: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal ...
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const t = (i: number) => f[i] ?? 0;
  return { busy: (t(0) + t(1) + t(2) + t(5) + t(6) + t(7)) / 100, softirq: t(6) / 100 };
}

/** This process's CPU seconds (all threads). */
function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** A Worker and a queue of its replies. */
class WorkerHandle {
  readonly #w: Worker;
  readonly #waiting: ((m: FromWorker) => void)[] = [];
  readonly #early: FromWorker[] = [];

  constructor() {
    this.#w = new Worker(new URL("./_loadgen_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#w.onmessage = (e: MessageEvent<FromWorker>) => {
      const r = this.#waiting.shift();
      if (r !== undefined) r(e.data);
      else this.#early.push(e.data);
    };
    this.#w.onerror = (e) => {
      e.preventDefault();
      const m: FromWorker = { op: "error", message: e.message };
      const r = this.#waiting.shift();
      if (r !== undefined) r(m);
      else this.#early.push(m);
    };
  }

  /** Sends a message and waits for the reply. */
  ask(m: ToWorker): Promise<FromWorker> {
    const p = new Promise<FromWorker>((resolve) => {
      const e = this.#early.shift();
      if (e !== undefined) resolve(e);
      else this.#waiting.push(resolve);
    });
    this.#w.postMessage(m);
    return p;
  }

  /** Asks it to close its socket, then ends it. */
  close(): void {
    this.#w.postMessage({ op: "close" });
    setTimeout(() => this.#w.terminate(), 200);
  }
}

function sum(list: readonly WorkerCounts[], f: (c: WorkerCounts) => number): number {
  let s = 0;
  for (const c of list) s += f(c);
  return s;
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
  readonly plan: Plan;
  readonly phases: readonly PhaseKind[];
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly drainSeconds: number;
  readonly expireSeconds: number;
  readonly window: number;
  readonly rate: number;
  readonly workers: number;
  readonly serverPid?: number;
  /** Progress lines. */
  readonly log: (line: string) => void;
  /** Called where sending starts and stops (when the CPU is sampled). */
  readonly onMark?: (what: "start" | "stop", kind: PhaseKind) => void;
}

/** Runs the phases with `workers` Workers and returns their figures. */
export async function runLoad(o: LoadOptions): Promise<LoadgenResult> {
  const cores = navigator.hardwareConcurrency;
  const handles = Array.from({ length: o.workers }, () => new WorkerHandle());
  try {
    const t0 = performance.now();
    const ready = await Promise.all(
      handles.map((h, index) => h.ask({ op: "init", index, workers: o.workers, plan: o.plan })),
    );
    for (const r of ready) if (r.op === "error") throw new Error(`worker: ${r.message}`);
    const buildSeconds = round((performance.now() - t0) / 1000, 3);
    o.log(`loadgen: ${o.workers} worker(s) ready in ${buildSeconds} s`);
    const phases: LoadgenResult["phases"] = {};
    const run = async (kind: PhaseKind, seconds: number, marks: boolean) => {
      const startAt = Date.now() + 50;
      const durationMs = seconds * 1000;
      const share = (n: number) => Math.max(1, Math.ceil(n / o.workers));
      const order: ToWorker = {
        op: "phase",
        kind,
        startAt,
        durationMs,
        drainMs: o.drainSeconds * 1000,
        expireMs: o.expireSeconds * 1000,
        window: share(o.window),
        rate: o.rate > 0 ? o.rate / o.workers : 0,
      };
      // CPU samples where sending starts and stops (the Workers block; this thread is free).
      const sample = () => ({
        at: performance.now(),
        self: selfCpuSeconds(),
        server: o.serverPid !== undefined ? treeCpuSeconds(o.serverPid) : 0,
        machine: machineCpuSeconds(),
      });
      const at = (t: number, what: "start" | "stop") =>
        new Promise<ReturnType<typeof sample>>((resolve) =>
          setTimeout(() => {
            resolve(sample());
            if (marks) o.onMark?.(what, kind);
          }, Math.max(0, t - Date.now()))
        );
      const [first, last, replies] = await Promise.all([
        at(startAt, "start"),
        at(startAt + durationMs, "stop"),
        Promise.all(handles.map((h) => h.ask(order))),
      ]);
      return { replies, first, last };
    };

    if (o.warmupSeconds > 0) {
      o.log(`loadgen: warm-up, negative Map-Requests for ${o.warmupSeconds} s`);
      await run("negative", o.warmupSeconds, false);
    }
    for (const kind of o.phases) {
      o.log(`loadgen: ${kind} for ${o.seconds} s`);
      const { replies, first, last } = await run(kind, o.seconds, true);
      const errors = replies.filter((r) => r.op === "error");
      if (errors.length > 0) {
        phases[kind] = { error: errors.map((e) => e.op === "error" ? e.message : "").join("; ") };
        continue;
      }
      const done = replies.filter((r) => r.op === "done");
      const counts = done.map((r) => r.counts);
      const hist = new Histogram();
      for (const r of done) {
        const h = new Histogram(r.histogram);
        h.max = r.maxMs;
        hist.merge(h);
      }
      const sendingS = Math.max(...counts.map((c) => c.sendingMs)) / 1000;
      const answeredInTime = sum(counts, (c) => c.answeredInTime);
      const sent = sum(counts, (c) => c.sent);
      const answered = sum(counts, (c) => c.answered);
      const other: Record<string, number> = {};
      for (const c of counts) {
        for (const [k, v] of Object.entries(c.other)) other[k] = (other[k] ?? 0) + v;
      }
      const wall = (last.at - first.at) / 1000;
      const loadgenCpu = wall > 0 ? (last.self - first.self) / wall : 0;
      const serverCpu = wall > 0 && o.serverPid !== undefined
        ? (last.server - first.server) / wall
        : undefined;
      const busy = wall > 0 ? (last.machine.busy - first.machine.busy) / wall : 0;
      const softirq = wall > 0 ? (last.machine.softirq - first.machine.softirq) / wall : 0;
      // A task's times include the softirq work done in its context (here
      // most of the delivery of its datagrams), so only those two are taken off.
      const otherCpu = Math.max(0, busy - loadgenCpu - (serverCpu ?? 0));
      const perSecond = sendingS > 0 ? answeredInTime / sendingS : 0;
      const perMessage = (cpuCores: number) => perSecond > 0 ? cpuCores * 1e6 / perSecond : 0;
      phases[kind] = {
        sent,
        answered,
        answeredInTime,
        late: sum(counts, (c) => c.late),
        lost: sent - answered,
        perSecond: Math.round(perSecond),
        sentPerSecond: Math.round(sendingS > 0 ? sent / sendingS : 0),
        medianMs: round(hist.quantile(0.5), 3),
        p99Ms: round(hist.quantile(0.99), 3),
        maxMs: round(hist.max, 3),
        positive: sum(counts, (c) => c.positive),
        stray: sum(counts, (c) => c.stray),
        other,
        sendFull: sum(counts, (c) => c.sendFull),
        sendErrors: sum(counts, (c) => c.sendErrors),
        sendBatch: round(sent / Math.max(1, sum(counts, (c) => c.sendCalls)), 1),
        recvBatch: round(
          sum(counts, (c) => c.received) / Math.max(1, sum(counts, (c) => c.recvCalls)),
          1,
        ),
        loadgenCpu: round(loadgenCpu, 2),
        loadgenCpuMicrosPerMessage: round(perMessage(loadgenCpu), 2),
        ...(serverCpu !== undefined
          ? {
            serverCpu: round(serverCpu, 2),
            serverCpuMicrosPerMessage: round(perMessage(serverCpu), 2),
          }
          : {}),
        machineBusy: round(busy, 2),
        softirqCpu: round(softirq, 2),
        otherCpu: round(otherCpu, 2),
        generatorLimited: loadgenCpu >= GENERATOR_LIMIT * o.workers,
        machineLimited: busy >= MACHINE_LIMIT * cores,
        contended: otherCpu >= CONTENDED,
        seconds: round(sendingS, 3),
      };
    }
    return {
      mode: o.rate > 0 ? "open" : "closed",
      window: o.window,
      rate: o.rate,
      workers: o.workers,
      batch: o.plan.batch,
      seconds: o.seconds,
      warmupSeconds: o.warmupSeconds,
      prefixes: o.plan.prefixes,
      buildSeconds,
      cores,
      phases,
    };
  } finally {
    for (const h of handles) h.close();
  }
}

function positive(name: string, text: string, integer = false, max = Infinity): number {
  const n = Number(text);
  if (!(n > 0 && n <= max) || (integer && !Number.isInteger(n))) {
    throw new RangeError(
      `--${name} must be a positive ${integer ? "integer" : "number"}` +
        (max < Infinity ? ` of at most ${max}` : "") + `, got ${text}`,
    );
  }
  return n;
}

/** Writes `mark TEXT` on standard output at once (the earlier interface's CPU sampling points). */
function mark(text: string): void {
  const b = new TextEncoder().encode(`mark ${text}\n`);
  let off = 0;
  while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      target: { type: "string", default: "127.0.0.1" },
      source: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "4342" },
      phases: { type: "string", default: PHASES.join(",") },
      seconds: { type: "string", default: "5" },
      warmup: { type: "string" },
      drain: { type: "string", default: "1" },
      expire: { type: "string", default: "1" },
      window: { type: "string", default: "128" },
      rate: { type: "string", default: "0" },
      workers: { type: "string", default: "1" },
      batch: { type: "string", default: "64" },
      prefixes: { type: "string", default: "65536" },
      "negative-site": { type: "string", default: "12.0.0.0/8" },
      "kt1-site": { type: "string", default: "10.0.0.0/8" },
      "kt1-key": { type: "string", default: "bench-key-1" },
      "kt2-site": { type: "string", default: "11.0.0.0/8" },
      "kt2-key": { type: "string", default: "bench-key-2" },
      "server-pid": { type: "string" },
      // The earlier interface: see legacy below.
      duration: { type: "string" },
      key: { type: "string" },
      site: { type: "string" },
    },
  });
  let phaseNames = values.phases.split(",").filter((p) => p !== "");
  // The earlier interface of this generator (`--duration S --key K --site P
  // --phases reg,req`, `mark start|stop registrations|requests` lines, and
  // `{"registrations":{..},"requests":{..},..}` last), which scripts written
  // against the single-socket generator still use: `reg` registers the /24s
  // of `--site` with key type 2 and `--key`; `req` asks for hosts in them
  // (positive after `reg`, negative without). No warm-up.
  const legacy = values.duration !== undefined || values.site !== undefined ||
    values.key !== undefined || phaseNames.some((p) => p === "reg" || p === "req");
  let kt2Site = values["kt2-site"];
  let kt2Key = values["kt2-key"];
  let negativeSite = values["negative-site"];
  if (legacy) {
    kt2Site = negativeSite = values.site ?? "10.0.0.0/8";
    kt2Key = values.key ?? "bench-key";
    const hasReg = phaseNames.includes("reg");
    phaseNames = phaseNames.map((p) =>
      p === "reg" ? "register-kt2" : p === "req" ? (hasReg ? "positive" : "negative") : p
    );
  }
  const phases = phaseNames as PhaseKind[];
  for (const p of phases) {
    if (!PHASES.includes(p)) throw new RangeError(`unknown phase ${p} (${PHASES.join(", ")})`);
  }
  const workers = positive("workers", values.workers, true, 16);
  const window = positive("window", values.window, true, 1 << 18);
  const batch = positive("batch", values.batch, true, 1024);
  const prefixes = positive("prefixes", values.prefixes, true, 65536);
  if (prefixes < workers * 4) throw new RangeError("--prefixes must be at least 4 per worker");
  const rate = values.rate === "0" ? 0 : positive("rate", values.rate, false, 10_000_000);
  const warmup = values.warmup ?? (legacy ? "0" : "1");
  const legacyName = (k: PhaseKind) => k.startsWith("register") ? "registrations" : "requests";
  const result = await runLoad({
    plan: {
      target: values.target,
      port: positive("port", values.port, true, 65535),
      source: values.source,
      batch,
      prefixes,
      negativeSite,
      kt1Site: values["kt1-site"],
      kt1Key: values["kt1-key"],
      kt2Site,
      kt2Key,
    },
    phases,
    seconds: positive(
      legacy && values.duration !== undefined ? "duration" : "seconds",
      legacy ? values.duration ?? values.seconds : values.seconds,
      false,
      MAX_PHASE_SECONDS,
    ),
    warmupSeconds: warmup === "0" ? 0 : positive("warmup", warmup, false, 30),
    drainSeconds: positive("drain", values.drain, false, 30),
    expireSeconds: positive("expire", values.expire, false, 30),
    window,
    rate,
    workers,
    ...(values["server-pid"] !== undefined
      ? { serverPid: positive("server-pid", values["server-pid"], true) }
      : {}),
    log: (line) => console.error(line),
    ...(legacy ? { onMark: (what, kind) => mark(`${what} ${legacyName(kind)}`) } : {}),
  });
  if (legacy) {
    const out: Record<string, unknown> = { window: result.window, durationS: result.seconds };
    for (const [k, v] of Object.entries(result.phases)) out[legacyName(k as PhaseKind)] = v;
    console.log(JSON.stringify(out));
  } else {
    console.log(JSON.stringify(result));
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
