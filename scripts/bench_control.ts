/**
 * `deno task bench:control`: the map-server's control plane under load,
 * ours (`oor ms`) beside OOR 1.3.0's (Debian's `openoverlayrouter`,
 * `/usr/sbin/oor`, `operating-mode = MS`), in one invocation, with the same
 * load generator and the same phases.
 *
 * Each map-server runs alone in a network namespace of its own (lab
 * `--lab`, default `bench-control`: `oor-bench-control-ours`,
 * `oor-bench-control-oor`), bound to 127.0.0.1:4342 on that namespace's
 * loopback; the generator (scripts/_loadgen.ts, batched sendmmsg/recvmmsg
 * in Workers) runs in the same namespace. One server at a time, never two
 * at once, in the order of `--servers`. Both are configured with the same
 * sites:
 *
 * - 10.0.0.0/8, key type 1 (HMAC-SHA-1-96, the only one OOR has),
 *   more-specifics accepted, proxy-reply;
 * - 11.0.0.0/8, key type 2 (HMAC-SHA-256-128), ours only;
 * - 12.0.0.0/8, which nobody registers in.
 *
 * Phases, in this order, each `--seconds` of sending:
 *
 * 1. `negative`: ECM'd Map-Requests for hosts in 12.0.0.0/8: every answer
 *    is a negative Map-Reply (after a `--warmup` of the same, not counted,
 *    which also lets our JIT compile the path).
 * 2. `register-kt1`: Map-Registers (P and M bits, key type 1), one per /24
 *    of 10.0.0.0/8 (`--prefixes` of them, cycled); counted on Map-Notify.
 * 3. `positive`: ECM'd Map-Requests for hosts in the /24s that were
 *    notified: every answer a proxy Map-Reply with the registered locator.
 * 4. `register-kt2`: the same as 2 with key type 2 in 11.0.0.0/8; ours only.
 *
 * The map-resolvers (`mr`, `ddt-mr` in `--servers`) run phase 1's
 * generator against a resolver instead: ECM'd Map-Requests for hosts in
 * 10.0.0.0/8, which the resolver passes on to this tree's ms (`mr`: its
 * `[[map-server]]`; `ddt-mr`: the ITR's request with the D bit to the ms
 * the DDT root refers it to (RFC 8111 §7.3.1), whose MS-ACK ends it), which
 * proxy-replies to the generator. The resolver and the generator share a
 * namespace; the ms and the DDT root sit in a second one behind a veth.
 * Their rows (section `resolve`) show the resolver's CPU. OOR 1.3.0 has no
 * row there: see {@link RESOLVERS}.
 *
 * Closed loop by default (`--window` messages outstanding); `--rate R`
 * makes it open loop (R a second). Per phase and server the table shows
 * answered/s, loss, median and p99 latency, the server's CPU (its process
 * tree, /proc/PID/stat) in cores and in µs per answer, the generator's CPU,
 * then the ratio ours/OOR. Flags: `gen-limited` (the generator used ≥ 85 %
 * of a core per Worker: the figure may be its own), `machine-busy` (the
 * machine was ≥ 90 % busy), `contended` (other work used ≥ 0.25 core: the
 * rates are noisy, the CPU per message much less). The last line is all
 * of it as one JSON object.
 *
 * ```
 * deno task bench:control [--seconds 5] [--quick] [--servers ours,oor,mr,ddt-mr]
 *   [--window 128] [--rate 0] [--workers 1] [--batch 64] [--prefixes 16384]
 *   [--repeat 1] [--warmup 1] [--drain 1] [--lab bench-control] [--keep]
 * ```
 *
 * `--repeat N` runs N rounds of every server, interleaved (ours, OOR, OOR,
 * ours, ...), each a fresh start, and keeps for each phase and server the
 * round that answered the most per second: on a shared machine the least
 * disturbed one. `--quick` (the smoke test) makes it 1 s phases, 1,024 prefixes and a
 * short warm-up. `--servers` also takes `transport`: scripts/_bench_responder.ts,
 * the ms's ControlPlane and codecs with no map-server logic, the ceiling
 * the transport allows. `--keep` keeps the folder of configs and logs.
 *
 * Needs root (network namespaces) and, for `oor`, the openoverlayrouter
 * package and `stdbuf`. Traffic stays on the namespaces' loopbacks. Every
 * phase is bounded (`--seconds` at most 30); the lab is torn down at exit,
 * also on Ctrl-C or SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  Lab,
  type LabProcess,
  type LinkSpec,
  type NetworkSpec,
  type NodeSpec,
  requireRoot,
  sleep,
} from "./lab/topology.ts";
import { type LoadgenResult, MAX_PHASE_SECONDS, type PhaseResult } from "./_loadgen.ts";
import type { PhaseKind } from "./_loadgen_worker.ts";
import { VERSION } from "../version.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = Deno.execPath();
const ADDRESS = "127.0.0.1";
const PORT = 4342;

/** The sites and keys every server is configured with, and the generator uses. */
export const SITES = {
  kt1: { prefix: "10.0.0.0/8", key: "bench-key-1" },
  kt2: { prefix: "11.0.0.0/8", key: "bench-key-2" },
  negative: { prefix: "12.0.0.0/8", key: "bench-key-negative" },
} as const;

/** A map-server (or map-resolver in front of one) the benchmark can run. */
export type ServerName = "ours" | "oor" | "transport" | "mr" | "ddt-mr";
const SERVER_NAMES: readonly ServerName[] = ["ours", "oor", "transport", "mr", "ddt-mr"];

/**
 * The map-resolvers: the generator sends to them, they pass each request on
 * to this tree's ms (the ddt-mr through this tree's ddt node), which
 * proxy-replies to the generator. OOR 1.3.0 has no plain MR mode in its
 * oor.conf, and its DDT-MR passes the ITR's request on with inner source
 * port 4342 instead of the ITR's, so the answer reaches only an ITR
 * listening on 4342 (the generator's ports are ephemeral); under this load
 * it also crashed (SIGSEGV). So the resolvers have no OOR row.
 */
export const RESOLVERS: readonly ServerName[] = ["mr", "ddt-mr"];

/** The lab node (and namespace) `server` runs in: its name without dashes. */
export function nodeOf(server: ServerName): string {
  return server.replaceAll("-", "");
}

/** Whether `server` is a map-resolver (see {@link RESOLVERS}). */
export function isResolver(server: ServerName): boolean {
  return RESOLVERS.includes(server);
}

/** The site the map-resolvers' ms proxy-replies for; the generator asks for hosts in it. */
export const RESOLVED_SITE = "10.0.0.0/8";
/**
 * A resolver runs with the generator in its node's namespace, at
 * {@link RESOLVER}; its ms and DDT root in a second namespace (the node's
 * name and `b`) behind a veth, as they would be on other hosts.
 */
const RESOLVER = "172.31.0.1";
const RESOLVER_MS = "172.31.0.2";
const RESOLVER_DDT = "172.31.0.3";

/** The lab's namespaces and links for `servers`. */
export function benchNetwork(servers: readonly ServerName[]): NetworkSpec {
  const nodes: NodeSpec[] = [];
  const links: LinkSpec[] = [];
  for (const s of servers) {
    const node = nodeOf(s);
    nodes.push({ name: node });
    if (!isResolver(s)) continue;
    nodes.push({ name: `${node}b` });
    links.push({
      a: { node, iface: "vb", addresses: [`${RESOLVER}/24`] },
      b: { node: `${node}b`, iface: "va", addresses: [`${RESOLVER_MS}/24`, `${RESOLVER_DDT}/24`] },
    });
  }
  return { nodes, links };
}

/** The phases in the order they run; OOR has no key type 2. */
const ORDER: readonly PhaseKind[] = ["negative", "register-kt1", "positive", "register-kt2"];

function phasesOf(server: ServerName): PhaseKind[] {
  if (isResolver(server)) return ["negative"];
  return server === "oor" ? ORDER.filter((p) => p !== "register-kt2") : [...ORDER];
}

/** The map-server behind the resolvers: 10.0.0.0/8 registered statically, proxy-replied. */
export function resolverMsConfig(): string {
  return [
    `operating-mode = "MS"`,
    `debug = 0`,
    `control-address = "${RESOLVER_MS}"`,
    `control-port = ${PORT}`,
    `control-rate-limit = 0`,
    `[api]`,
    `enabled = false`,
    ``,
    `[[lisp-site]]`,
    `eid-prefix = "${RESOLVED_SITE}"`,
    `key-type = 2`,
    `key = "bench"`,
    `proxy-reply = true`,
    ``,
    `[[ms-static-registered-site]]`,
    `eid-prefix = "${RESOLVED_SITE}"`,
    `rloc-address = [ { address = "192.0.2.1", priority = 1, weight = 100 } ]`,
    ``,
  ].join("\n");
}

/** The DDT root in front of it: everything authoritative, 10.0.0.0/8 delegated to that ms. */
export function resolverDdtConfig(): string {
  return [
    `operating-mode = "DDT"`,
    `debug = 0`,
    `control-address = "${RESOLVER_DDT}"`,
    `control-port = ${PORT}`,
    `control-rate-limit = 0`,
    `[api]`,
    `enabled = false`,
    ``,
    `[[ddt-auth-site]]`,
    `eid-prefix = "0.0.0.0/0"`,
    ``,
    `[[ddt-deleg-site]]`,
    `eid-prefix = "${RESOLVED_SITE}"`,
    `delegation-type = "MAP_SERVER_DDT_NODE"`,
    `deleg-nodes = ["${RESOLVER_MS}"]`,
    ``,
  ].join("\n");
}

/** Our mr (forwarding to the ms) or ddt-mr (through the DDT root). */
export function resolverConfig(role: "mr" | "ddt-mr"): string {
  return [
    `operating-mode = "${role === "mr" ? "MR" : "DDT-MR"}"`,
    `debug = 0`,
    `control-address = "${RESOLVER}"`,
    `control-port = ${PORT}`,
    `control-rate-limit = 0`,
    ...(role === "ddt-mr" ? [`ddt-root-addresses = ["${RESOLVER_DDT}"]`] : []),
    `[api]`,
    `enabled = false`,
    ...(role === "mr" ? [``, `[[map-server]]`, `address = "${RESOLVER_MS}"`] : []),
    ``,
  ].join("\n");
}

/** Our ms's oor.toml. */
export function oursConfig(prefixes: number): string {
  const site = (prefix: string, keyType: number, key: string) => [
    ``,
    `[[lisp-site]]`,
    `eid-prefix = "${prefix}"`,
    `iid = 0`,
    `key-type = ${keyType}`,
    `key = "${key}"`,
    `accept-more-specifics = true`,
    `proxy-reply = true`,
    `max-registrations = ${Math.max(1024, prefixes * 2)}`,
  ];
  return [
    `operating-mode = "MS"`,
    `debug = 0`,
    `control-address = "${ADDRESS}"`,
    `control-port = ${PORT}`,
    `control-rate-limit = 0`,
    ...site(SITES.kt1.prefix, 1, SITES.kt1.key),
    ...site(SITES.kt2.prefix, 2, SITES.kt2.key),
    ...site(SITES.negative.prefix, 1, SITES.negative.key),
    ``,
  ].join("\n");
}

/** OOR's oor.conf: the same sites but the key-type-2 one (OOR has key type 1 only). */
export function oorConfig(): string {
  const site = (prefix: string, key: string) => [
    `lisp-site {`,
    `    eid-prefix = ${prefix}`,
    `    iid = 0`,
    `    key-type = 1`,
    `    key = ${key}`,
    `    accept-more-specifics = true`,
    `    proxy-reply = true`,
    `    merge = false`,
    `}`,
  ];
  return [
    // debug = 0: OOR writes its log with printf; more detail costs it time per message.
    `debug = 0`,
    `operating-mode = MS`,
    `control-iface = lo`,
    ...site(SITES.kt1.prefix, SITES.kt1.key),
    ...site(SITES.negative.prefix, SITES.negative.key),
    ``,
  ].join("\n");
}

/** Options of {@link runBench}. */
export interface BenchOptions {
  readonly servers: readonly ServerName[];
  readonly seconds: number;
  readonly warmup: number;
  readonly drain: number;
  readonly window: number;
  readonly rate: number;
  readonly workers: number;
  readonly batch: number;
  readonly prefixes: number;
  /** Rounds of every server, interleaved (the order alternates); the best of each phase counts. */
  readonly repeat: number;
  readonly lab: string;
  readonly keep: boolean;
  /** Progress lines. */
  readonly log: (line: string) => void;
}

/** What one server's run gave. */
export interface ServerRun {
  readonly server: ServerName;
  /** Round (from 1); in {@link BenchResult.runs}, the number of rounds merged. */
  readonly round: number;
  /** What it is: version, and how it was started. */
  readonly what: string;
  readonly load?: LoadgenResult;
  /** Why the run failed, when it did. */
  readonly error?: string;
  /** Lines the server logged. */
  readonly logLines: number;
}

/** Ours/OOR ratios of one phase. */
export interface PhaseRatio {
  readonly perSecond: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly serverCpuMicrosPerMessage?: number;
}

/** The benchmark's result: the last line of its output. */
export interface BenchResult {
  readonly bench: "control";
  readonly settings: Omit<BenchOptions, "log" | "keep" | "lab">;
  /** One per server: each phase from the round where it answered the most per second. */
  readonly runs: readonly ServerRun[];
  /** Every round of every server, in the order they ran. */
  readonly rounds: readonly ServerRun[];
  /** ours / oor per phase (both ran it). */
  readonly ratios: Partial<Record<PhaseKind, PhaseRatio>>;
  /** A signal stopped the run before the end. */
  readonly interrupted: boolean;
}

/** The phase's figures, when it ran without an error. */
export function phaseOf(run: ServerRun | undefined, kind: PhaseKind): PhaseResult | undefined {
  const p = run?.load?.phases[kind];
  return p !== undefined && !("error" in p) ? p : undefined;
}

/**
 * One run per server from several rounds: each phase from the round where
 * it answered the most per second (the least disturbed by other work on a
 * shared machine), with that round's latency and CPU.
 */
export function bestOf(rounds: readonly ServerRun[]): ServerRun[] {
  const out: ServerRun[] = [];
  for (const server of new Set(rounds.map((r) => r.server))) {
    const mine = rounds.filter((r) => r.server === server);
    const ok = mine.filter((r) => r.load !== undefined);
    const first = ok[0] ?? mine[0]!;
    if (first.load === undefined) {
      out.push({ ...first, round: mine.length });
      continue;
    }
    const phases: LoadgenResult["phases"] = {};
    for (const kind of ORDER) {
      let best: PhaseResult | undefined;
      for (const r of ok) {
        const p = phaseOf(r, kind);
        if (p !== undefined && (best === undefined || p.perSecond > best.perSecond)) best = p;
      }
      const any = first.load.phases[kind];
      if (best !== undefined) phases[kind] = best;
      else if (any !== undefined) phases[kind] = any;
    }
    out.push({
      ...first,
      round: mine.length,
      load: { ...first.load, phases },
      logLines: Math.max(...mine.map((r) => r.logLines)),
    });
  }
  return out;
}

function ratioOf(a: PhaseResult, b: PhaseResult): PhaseRatio {
  const r = (x: number, y: number) => y > 0 ? Math.round(x / y * 100) / 100 : 0;
  return {
    perSecond: r(a.perSecond, b.perSecond),
    medianMs: r(a.medianMs, b.medianMs),
    p99Ms: r(a.p99Ms, b.p99Ms),
    ...(a.serverCpuMicrosPerMessage !== undefined && b.serverCpuMicrosPerMessage !== undefined
      ? { serverCpuMicrosPerMessage: r(a.serverCpuMicrosPerMessage, b.serverCpuMicrosPerMessage) }
      : {}),
  };
}

/** ours / oor of every phase both ran. */
export function ratios(runs: readonly ServerRun[]): BenchResult["ratios"] {
  const ours = runs.find((r) => r.server === "ours");
  const oor = runs.find((r) => r.server === "oor");
  const out: BenchResult["ratios"] = {};
  for (const kind of ORDER) {
    const a = phaseOf(ours, kind);
    const b = phaseOf(oor, kind);
    if (a === undefined || b === undefined) continue;
    out[kind] = ratioOf(a, b);
  }
  return out;
}

/** Waits until `name` is up, returning its process; throws with the log's tail when it is not. */
async function startServer(
  lab: Lab,
  server: ServerName,
  prefixes: number,
): Promise<{ proc: LabProcess; what: string; helpers?: LabProcess[] }> {
  switch (server) {
    case "ours": {
      // Its saved registrations go beside its configuration: a folder of its own.
      await Deno.mkdir(lab.path("ours"), { recursive: true });
      const path = await lab.writeFile("ours/oor.toml", oursConfig(prefixes));
      const proc = await lab.spawn(server, "ours", [
        DENO,
        "run",
        "--allow-all",
        `${ROOT}main.ts`,
        "ms",
        "--config",
        path,
      ]);
      await proc.waitForLog(/ms-listening/, 30_000);
      return { proc, what: `oor ms ${VERSION} (this tree), control-rate-limit = 0` };
    }
    case "oor": {
      await Deno.mkdir(lab.path("oor"), { recursive: true });
      // OOR writes its oor-id file beside its configuration: a folder of its own.
      const path = await lab.writeFile("oor/oor.conf", oorConfig());
      const proc = await lab.spawn(server, "oor", ["stdbuf", "-oL", "-eL", "oor", "-f", path]);
      const m = await proc.waitForLog(/Open Overlay Router \(?(v[\d.]+)\)?.*started/, 15_000);
      // It exits 0 on a configuration error after printing "started": make sure it runs on.
      await sleep(500);
      if (!proc.alive()) throw new Error(`oor exited after starting:\n${proc.readLog()}`);
      return { proc, what: `OOR ${m[1]} (/usr/sbin/oor), control-iface = lo, debug = 0` };
    }
    case "transport": {
      const proc = await lab.spawn(server, "transport", [
        DENO,
        "run",
        "--allow-all",
        `${ROOT}scripts/_bench_responder.ts`,
        "--address",
        ADDRESS,
        "--port",
        String(PORT),
        "--kt1-key",
        SITES.kt1.key,
        "--kt2-key",
        SITES.kt2.key,
      ]);
      await proc.waitForLog(/responder-listening/, 30_000);
      return { proc, what: "transport only: the ms's ControlPlane and codecs, no ms logic" };
    }
    case "mr":
    case "ddt-mr":
      return await startResolver(lab, server);
  }
}

/** Starts `server`'s ms (and DDT root), then the resolver; the helpers are stopped with it. */
async function startResolver(
  lab: Lab,
  server: "mr" | "ddt-mr",
): Promise<{ proc: LabProcess; what: string; helpers: LabProcess[] }> {
  await Deno.mkdir(lab.path(server), { recursive: true });
  const helpers: LabProcess[] = [];
  const ours = async (name: string, role: string, config: string, ready: RegExp) => {
    const path = await lab.writeFile(`${server}/${name}.toml`, config);
    const node = name === server ? nodeOf(server) : `${nodeOf(server)}b`;
    const proc = await lab.spawn(node, `${server}-${name}`, [
      DENO,
      "run",
      "--allow-all",
      `${ROOT}main.ts`,
      role,
      "--config",
      path,
    ]);
    await proc.waitForLog(ready, 30_000);
    return proc;
  };
  try {
    helpers.push(await ours("ms", "ms", resolverMsConfig(), /ms-listening/));
    if (server !== "mr") {
      helpers.push(await ours("ddt", "ddt", resolverDdtConfig(), /ddt-node-ready/));
    }
    const proc = await ours(server, server, resolverConfig(server), /map-resolver-ready/);
    return {
      proc,
      what: server === "mr"
        ? `oor mr ${VERSION} (this tree) -> our ms`
        : `oor ddt-mr ${VERSION} (this tree) -> our ddt -> our ms`,
      helpers,
    };
  } catch (e) {
    for (const h of helpers) await lab.stop(h.name).catch(() => {});
    throw e;
  }
}

/** The current load generator child, for Ctrl-C. */
let generator: Deno.ChildProcess | undefined;

/** Runs the generator in `server`'s namespace against its map-server. */
async function runGenerator(
  lab: Lab,
  server: ServerName,
  pid: number,
  o: BenchOptions,
): Promise<LoadgenResult> {
  const phases = phasesOf(server);
  const args = [
    "run",
    "--allow-all",
    `${ROOT}scripts/_loadgen.ts`,
    "--target",
    isResolver(server) ? RESOLVER : ADDRESS,
    ...(isResolver(server) ? ["--source", RESOLVER] : []),
    "--port",
    String(PORT),
    "--phases",
    phases.join(","),
    "--seconds",
    String(o.seconds),
    "--warmup",
    String(o.warmup),
    "--drain",
    String(o.drain),
    "--window",
    String(o.window),
    "--rate",
    String(o.rate),
    "--workers",
    String(o.workers),
    "--batch",
    String(o.batch),
    "--prefixes",
    String(o.prefixes),
    "--negative-site",
    isResolver(server) ? RESOLVED_SITE : SITES.negative.prefix,
    "--kt1-site",
    SITES.kt1.prefix,
    "--kt1-key",
    SITES.kt1.key,
    "--kt2-site",
    SITES.kt2.prefix,
    "--kt2-key",
    SITES.kt2.key,
    "--server-pid",
    String(pid),
  ];
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", lab.ns(nodeOf(server)), DENO, ...args],
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  generator = child;
  // Bounded: warm-up, every phase with its drain, start-up and signing.
  const boundMs = (o.warmup + phases.length * (o.seconds + o.drain + 1)) * 1000 + 120_000;
  const timer = setTimeout(() => {
    o.log(`${server}: load generator still running after ${boundMs / 1000} s: stopping it`);
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, boundMs);
  const stderr = (async () => {
    const lines = child.stderr.pipeThrough(new TextDecoderStream());
    let rest = "";
    let tail = "";
    for await (const chunk of lines) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const l of parts) {
        o.log(`  ${server}: ${l}`);
        tail = (tail + l + "\n").slice(-2000);
      }
    }
    return tail + rest;
  })();
  try {
    const [out, status, errTail] = await Promise.all([
      new Response(child.stdout).text(),
      child.status,
      stderr,
    ]);
    const last = out.trim().split("\n").pop() ?? "";
    if (!status.success || !last.startsWith("{")) {
      throw new Error(`load generator failed (exit ${status.code}):\n${errTail}`);
    }
    return JSON.parse(last) as LoadgenResult;
  } finally {
    clearTimeout(timer);
    generator = undefined;
  }
}

/** Runs every server in turn, each with the whole generator run; tears everything down. */
export async function runBench(o: BenchOptions): Promise<BenchResult> {
  requireRoot("bench:control");
  const dir = await Deno.makeTempDir({ prefix: "oor-bench-control-" });
  const lab = new Lab(benchNetwork(o.servers), {
    name: o.lab,
    dir,
    stopTimeoutMs: 5000,
  });
  // Ctrl-C (or SIGTERM): stop the generator and the server, skip the rest,
  // tear down as usual; a second signal, or 15 s later, tears down at once.
  let interrupted = false;
  let hardTimer: ReturnType<typeof setTimeout> | undefined;
  const hardStop = async () => {
    await lab.down().catch(() => {});
    if (!o.keep) await Deno.remove(dir, { recursive: true }).catch(() => {});
    Deno.exit(130);
  };
  const onSignal = () => {
    if (interrupted) {
      void hardStop();
      return;
    }
    interrupted = true;
    o.log("interrupted: stopping, then tearing the lab down");
    try {
      generator?.kill("SIGTERM");
    } catch { /* gone */ }
    void lab.stopAll().catch(() => {});
    hardTimer = setTimeout(() => void hardStop(), 15_000);
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const rounds: ServerRun[] = [];
  try {
    o.log(`bench:control: lab ${o.lab} in ${dir}`);
    await lab.up();
    // Rounds interleaved, the order reversed every other round, so that a
    // slow drift in what else the machine does weighs on both alike.
    const plan: [number, ServerName][] = [];
    for (let round = 1; round <= o.repeat; round++) {
      const order = round % 2 === 1 ? o.servers : [...o.servers].reverse();
      for (const server of order) plan.push([round, server]);
    }
    for (const [round, server] of plan) {
      if (interrupted) break;
      let proc: LabProcess | undefined;
      let helpers: LabProcess[] = [];
      let what: string = server;
      try {
        o.log(`${server}: starting${o.repeat > 1 ? ` (round ${round} of ${o.repeat})` : ""}`);
        const started = await startServer(lab, server, o.prefixes);
        proc = started.proc;
        what = started.what;
        helpers = started.helpers ?? [];
        if (interrupted) throw new Error("interrupted");
        o.log(`${server}: ${what}, pid ${proc.pid}`);
        const load = await runGenerator(lab, server, proc.pid, o);
        if (!proc.alive()) throw new Error(`${server} exited during the run`);
        rounds.push({ server, round, what, load, logLines: countLines(proc.readLog()) });
      } catch (e) {
        const tail = proc?.readLog().split("\n").slice(-20).join("\n") ?? "";
        rounds.push({
          server,
          round,
          what,
          error: interrupted
            ? "interrupted"
            : `${e instanceof Error ? e.message : String(e)}${tail ? `\n${tail}` : ""}`,
          logLines: proc !== undefined ? countLines(proc.readLog()) : 0,
        });
      } finally {
        if (proc !== undefined) await lab.stop(proc.name).catch(() => {});
        for (const h of helpers) await lab.stop(h.name).catch(() => {});
      }
    }
  } finally {
    await lab.down().catch((e) => o.log(`lab down failed: ${e}`));
    if (o.keep) o.log(`bench:control: configs and logs kept in ${dir}`);
    else await Deno.remove(dir, { recursive: true }).catch(() => {});
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    clearTimeout(hardTimer);
  }
  const { log: _l, keep: _k, lab: _n, ...settings } = o;
  const runs = bestOf(rounds);
  return { bench: "control", settings, runs, rounds, ratios: ratios(runs), interrupted };
}

function countLines(text: string): number {
  return text === "" ? 0 : text.split("\n").filter((l) => l.trim() !== "").length;
}

// ---------------------------------------------------------------------------
// The table.

const PHASE_TITLE: Record<PhaseKind, string> = {
  "negative": "negative Map-Requests",
  "register-kt1": "Map-Registers, key type 1",
  "positive": "positive (proxy) Map-Requests",
  "register-kt2": "Map-Registers, key type 2",
};

function num(n: number | undefined, digits = 0): string {
  if (n === undefined) return "-";
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function flags(p: PhaseResult): string {
  const f: string[] = [];
  if (p.generatorLimited) f.push("gen-limited");
  if (p.machineLimited) f.push("machine-busy");
  if (p.contended) f.push(`contended(${p.otherCpu})`);
  if (p.late > 0) f.push(`late ${p.late}`);
  const other = Object.entries(p.other).map(([t, n]) => `type${t}:${n}`);
  if (other.length > 0) f.push(`other ${other.join(",")}`);
  return f.join(" ");
}

/** The readable table of a result. */
export function formatTable(r: BenchResult): string[] {
  const s = r.settings;
  const lines: string[] = [];
  const mode = s.rate > 0 ? `open loop at ${num(s.rate)}/s` : "closed loop";
  lines.push(
    `bench:control: ${mode}, window ${s.window}, ${s.workers} generator Worker(s), ` +
      `batches of up to ${s.batch}; ${s.seconds} s per phase after a ${s.warmup} s warm-up; ` +
      `${num(s.prefixes)} /24s per site` +
      (s.repeat > 1 ? `; best of ${s.repeat} interleaved rounds per phase` : ""),
  );
  for (const run of r.runs) {
    lines.push(`  ${run.server.padEnd(9)} ${run.what}${run.error ? `: FAILED: ${run.error}` : ""}`);
  }
  const head = [
    "server".padEnd(10),
    "answered/s".padStart(11),
    "loss".padStart(7),
    "median ms".padStart(10),
    "p99 ms".padStart(8),
    "server cpu".padStart(11),
    "µs cpu/msg".padStart(11),
    "gen cpu".padStart(8),
    "  flags",
  ].join("");
  const row = (name: string, p: PhaseResult) =>
    [
      name.padEnd(10),
      num(p.perSecond).padStart(11),
      num(p.lost).padStart(7),
      num(p.medianMs, 3).padStart(10),
      num(p.p99Ms, 3).padStart(8),
      num(p.serverCpu, 2).padStart(11),
      num(p.serverCpuMicrosPerMessage, 1).padStart(11),
      num(p.loadgenCpu, 2).padStart(8),
      `  ${flags(p)}`,
    ].join("").trimEnd();
  const ratioRow = (name: string, q: PhaseRatio) =>
    [
      name.padEnd(10),
      num(q.perSecond, 2).padStart(11),
      "".padStart(7),
      num(q.medianMs, 2).padStart(10),
      num(q.p99Ms, 2).padStart(8),
      "".padStart(11),
      num(q.serverCpuMicrosPerMessage, 2).padStart(11),
    ].join("");
  for (const kind of ORDER) {
    const rows: string[] = [];
    for (const run of r.runs) {
      if (run.load === undefined || isResolver(run.server)) continue;
      const p = run.load.phases[kind];
      if (p === undefined) {
        if (run.server === "oor" && kind === "register-kt2") {
          rows.push(`${"oor".padEnd(10)}${"(OOR 1.3.0 has key type 1 only)".padStart(30)}`);
        }
        continue;
      }
      if ("error" in p) {
        rows.push(`${run.server.padEnd(10)} FAILED: ${p.error}`);
        continue;
      }
      rows.push(row(run.server, p));
    }
    const q = r.ratios[kind];
    if (q !== undefined) rows.push(ratioRow("ours/oor", q));
    if (rows.length === 0) continue;
    lines.push("", `${PHASE_TITLE[kind]} (${kind})`, `  ${head}`, ...rows.map((l) => `  ${l}`));
  }
  const rows: string[] = [];
  for (const run of r.runs) {
    if (run.load === undefined || !isResolver(run.server)) continue;
    const p = run.load.phases.negative;
    if (p === undefined) continue;
    rows.push("error" in p ? `${run.server.padEnd(10)} FAILED: ${p.error}` : row(run.server, p));
  }
  if (rows.length > 0) {
    lines.push(
      "",
      `Map-Requests passed on by a map-resolver to the ms, which answers (resolve; server cpu: ` +
        `the resolver's)`,
      `  ${head}`,
      ...rows.map((l) => `  ${l}`),
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------
// The command.

function numberOption(
  name: string,
  text: string,
  opts: { min?: number; max?: number; integer?: boolean } = {},
): number {
  const n = Number(text);
  const min = opts.min ?? 0;
  const max = opts.max ?? Infinity;
  if (text.trim() === "" || !(n >= min && n <= max) || (opts.integer && !Number.isInteger(n))) {
    throw new RangeError(
      `--${name} must be ${
        opts.integer ? "an integer" : "a number"
      } from ${min} to ${max}, got ${text}`,
    );
  }
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string" },
      quick: { type: "boolean", default: false },
      servers: { type: "string", default: "ours,oor,mr,ddt-mr" },
      window: { type: "string", default: "128" },
      rate: { type: "string", default: "0" },
      workers: { type: "string", default: "1" },
      batch: { type: "string", default: "64" },
      prefixes: { type: "string" },
      repeat: { type: "string", default: "1" },
      warmup: { type: "string" },
      drain: { type: "string" },
      lab: { type: "string", default: "bench-control" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench:control [--seconds 5] [--quick]\n" +
        "  [--servers ours,oor,mr,ddt-mr[,transport]]\n" +
        "  [--window 128] [--rate 0] [--workers 1] [--batch 64] [--prefixes 16384]\n" +
        "  [--repeat 1] [--warmup 1] [--drain 1] [--lab bench-control] [--keep]",
    );
    return 0;
  }
  let o: BenchOptions;
  try {
    const servers = values.servers.split(",").filter((x) => x !== "");
    for (const x of servers) {
      if (!SERVER_NAMES.includes(x as ServerName)) {
        throw new RangeError(`--servers: unknown server ${x} (${SERVER_NAMES.join(", ")})`);
      }
    }
    if (servers.length === 0 || new Set(servers).size !== servers.length) {
      throw new RangeError("--servers: one or more distinct servers");
    }
    const q = values.quick;
    o = {
      servers: servers as ServerName[],
      seconds: numberOption("seconds", values.seconds ?? (q ? "1" : "5"), {
        min: 0.1,
        max: MAX_PHASE_SECONDS,
      }),
      warmup: numberOption("warmup", values.warmup ?? (q ? "0.3" : "1"), { max: 30 }),
      drain: numberOption("drain", values.drain ?? (q ? "0.5" : "1"), { min: 0.1, max: 30 }),
      window: numberOption("window", values.window, { min: 1, max: 1 << 18, integer: true }),
      rate: numberOption("rate", values.rate, { max: 10_000_000 }),
      workers: numberOption("workers", values.workers, { min: 1, max: 16, integer: true }),
      batch: numberOption("batch", values.batch, { min: 1, max: 1024, integer: true }),
      prefixes: numberOption("prefixes", values.prefixes ?? (q ? "1024" : "16384"), {
        min: 64,
        max: 65536,
        integer: true,
      }),
      repeat: numberOption("repeat", values.repeat, { min: 1, max: 10, integer: true }),
      lab: values.lab,
      keep: values.keep,
      log: (line) => console.error(line),
    };
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    return 2;
  }
  if (o.servers.includes("oor")) {
    for (const cmd of ["oor", "stdbuf"]) {
      const found = await new Deno.Command("sh", {
        args: ["-c", `command -v ${cmd}`],
        stdout: "null",
        stderr: "null",
      }).output().then((r) => r.success, () => false);
      if (!found) {
        console.error(
          `bench:control: ${cmd} is not installed (apt-get install openoverlayrouter coreutils), ` +
            `or run with --servers ours`,
        );
        return 2;
      }
    }
  }
  const result = await runBench(o);
  for (const l of formatTable(result)) console.log(l);
  console.log(JSON.stringify(result));
  if (result.interrupted) return 130;
  return result.rounds.some((r) => r.error !== undefined) ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
