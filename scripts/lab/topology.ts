/**
 * Network-namespace labs: declare nodes and links, build them, run
 * commands and long-running processes inside, and tear everything down.
 *
 * ```ts
 * import { Lab } from "./scripts/lab/topology.ts";
 * const lab = new Lab({
 *   name: "demo",
 *   nodes: [{ name: "a" }, { name: "r", forwarding: true }, { name: "b" }],
 *   links: [
 *     { a: { node: "a", iface: "eth0", addresses: ["100.64.1.2/24"] },
 *       b: { node: "r", iface: "to-a", addresses: ["100.64.1.1/24"] } },
 *     { a: { node: "b", iface: "eth0", addresses: ["100.64.2.2/24"] },
 *       b: { node: "r", iface: "to-b", addresses: ["100.64.2.1/24"] } },
 *   ],
 * }, { name: "demo" });
 * try {
 *   await lab.up();
 *   await lab.ping("a", "100.64.2.2");
 *   const p = await lab.spawn("b", "sleeper", ["sleep", "100"]);
 * } finally {
 *   await lab.down();
 * }
 * ```
 *
 * - A node is a network namespace named `oor-<lab>-<node>` (see
 *   {@link namespaceName}). Every namespace gets `lo` up, rp_filter off,
 *   IPv6 DAD off (addresses usable at once), IPv6 addresses kept when a
 *   link goes down, and IPv4/IPv6 forwarding as the node says.
 * - A link is a veth pair created directly inside its two namespaces, so
 *   no lab interface ever sits in the host's namespace and no lab route
 *   can reach the host's own routes: a lab is a closed world.
 * - Processes run through `ip netns exec`, detached, their stdout and
 *   stderr appended to `<dir>/<name>.log`. Their pids are kept in a state
 *   file (`<stateDir>/<lab>.json`) so that `lab down` in another process
 *   can stop them; teardown also stops whatever else runs in the lab's
 *   namespaces (`ip netns pids`), SIGTERM first and SIGKILL after a timeout.
 * - {@link Lab.up} on a lab that exists tears it down first; {@link teardownLab}
 *   removes every namespace of a lab even when it is half built, and does
 *   nothing when there is nothing left.
 *
 * Everything needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`):
 * {@link requireRoot} throws {@link NotRootError}, which CLIs turn into
 * exit code 2.
 *
 * @module
 */

import $ from "dax-sh";

/** Where lab folders and state files go unless told otherwise. */
export const DEFAULT_LAB_ROOT = "/tmp/oor-lab";

/** Prefix of every lab namespace name. */
export const NAMESPACE_PREFIX = "oor-";

/** Default wait between SIGTERM and SIGKILL, milliseconds. */
export const DEFAULT_STOP_TIMEOUT_MS = 5000;

/** A lab could not be built, run or torn down. */
export class LabError extends Error {
  /** Builds the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LabError";
  }
}

/** The lab needs root and the process is not root. */
export class NotRootError extends LabError {
  /** Builds the error. */
  constructor(what = "the lab") {
    super(
      `${what} must run as root: network namespaces and veth pairs need CAP_NET_ADMIN ` +
        `and CAP_SYS_ADMIN (try: sudo ./node_modules/.bin/deno task lab ...)`,
    );
    this.name = "NotRootError";
  }
}

/** Whether this process runs as root. */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** Throws {@link NotRootError} unless this process runs as root. */
export function requireRoot(what?: string): void {
  if (!isRoot()) throw new NotRootError(what);
}

// ---------------------------------------------------------------------------
// Declarations.

/** One end of a link: the interface created in `node`. */
export interface LinkEnd {
  /** Node (namespace) the interface lives in. */
  readonly node: string;
  /** Interface name inside that namespace (1..15 bytes). */
  readonly iface: string;
  /** Addresses with prefix length, IPv4 or IPv6: `"100.64.1.2/24"`, `"2001:db8::2/64"`. */
  readonly addresses?: readonly string[];
}

/** A veth pair between two nodes. */
export interface LinkSpec {
  /** First end. */
  readonly a: LinkEnd;
  /** Second end. */
  readonly b: LinkEnd;
  /** MTU of both ends; the kernel default (1500) when absent. */
  readonly mtu?: number;
}

/** A route added to a node's main table (or `table`) with `ip route replace`. */
export interface RouteSpec {
  /** Destination: `"default"` or a prefix like `"100.64.0.0/10"` or `"2001:db8::/32"`. */
  readonly to: string;
  /** Gateway address. */
  readonly via?: string;
  /** Output interface. */
  readonly dev?: string;
  /** Route metric (lower wins). */
  readonly metric?: number;
  /** Routing table (number or name); main when absent. */
  readonly table?: number | string;
  /** Address family, needed only for `"default"` without `via`. */
  readonly family?: 4 | 6;
}

/** A node: one network namespace. */
export interface NodeSpec {
  /** Name, unique in the lab: lower-case letters and digits, starting with a letter. */
  readonly name: string;
  /** IPv4 and IPv6 forwarding on (routers, xTRs). */
  readonly forwarding?: boolean;
  /** Routes added once the links are up, in order. */
  readonly routes?: readonly RouteSpec[];
  /** Extra sysctls, e.g. `{ "net.ipv4.conf.all.accept_local": 1 }`. */
  readonly sysctls?: Readonly<Record<string, string | number>>;
}

/** The nodes and links of a lab. */
export interface NetworkSpec {
  /** Nodes, each a namespace. */
  readonly nodes: readonly NodeSpec[];
  /** veth pairs between them. */
  readonly links: readonly LinkSpec[];
}

/** Options of a {@link Lab}. */
export interface LabOptions {
  /** Lab name: `[a-z0-9][a-z0-9-]*`, at most 24 characters. */
  readonly name: string;
  /** Folder for configs and logs (default `<stateDir>/<name>`). */
  readonly dir?: string;
  /** Folder holding `<name>.json` state files (default {@link DEFAULT_LAB_ROOT}). */
  readonly stateDir?: string;
  /** Wait between SIGTERM and SIGKILL when stopping processes (default 5 s). */
  readonly stopTimeoutMs?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Name of the topology it is built from, kept in the state file. */
  readonly topology?: string;
}

const NODE_NAME = /^[a-z][a-z0-9]*$/;
const LAB_NAME = /^[a-z0-9][a-z0-9-]{0,23}$/;
const IFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** The namespace of `node` in lab `lab`: `oor-<lab>-<node>`. */
export function namespaceName(lab: string, node: string): string {
  return `${NAMESPACE_PREFIX}${lab}-${node}`;
}

/** The lab and node a namespace name belongs to, or undefined if it is not a lab namespace. */
export function parseNamespaceName(ns: string): { lab: string; node: string } | undefined {
  if (!ns.startsWith(NAMESPACE_PREFIX)) return undefined;
  const rest = ns.slice(NAMESPACE_PREFIX.length);
  const dash = rest.lastIndexOf("-");
  if (dash <= 0) return undefined;
  const lab = rest.slice(0, dash);
  const node = rest.slice(dash + 1);
  if (!LAB_NAME.test(lab) || !NODE_NAME.test(node)) return undefined;
  return { lab, node };
}

/** Family of an address or `address/len`. */
function familyOf(text: string): 4 | 6 {
  return text.includes(":") ? 6 : 4;
}

/** Checks a spec; throws LabError listing every problem. */
export function validateNetwork(spec: NetworkSpec): void {
  const problems: string[] = [];
  const nodes = new Set<string>();
  for (const n of spec.nodes) {
    if (!NODE_NAME.test(n.name)) {
      problems.push(`node "${n.name}": name must match ${NODE_NAME.source}`);
    }
    if (nodes.has(n.name)) problems.push(`node "${n.name}" declared twice`);
    nodes.add(n.name);
  }
  const ifaces = new Set<string>();
  for (const [i, l] of spec.links.entries()) {
    for (const end of [l.a, l.b]) {
      const where = `link ${i} end ${end.node}/${end.iface}`;
      if (!nodes.has(end.node)) problems.push(`${where}: no node "${end.node}"`);
      if (!IFACE_NAME.test(end.iface) || end.iface === "lo") {
        problems.push(`${where}: bad interface name`);
      }
      const key = `${end.node}/${end.iface}`;
      if (ifaces.has(key)) problems.push(`${where}: interface used twice`);
      ifaces.add(key);
      for (const a of end.addresses ?? []) {
        if (!/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(a)) {
          problems.push(`${where}: address "${a}" must be ADDRESS/LENGTH`);
        }
      }
    }
    if (l.a.node === l.b.node) problems.push(`link ${i}: both ends on node "${l.a.node}"`);
    if (l.mtu !== undefined && (!Number.isInteger(l.mtu) || l.mtu < 68 || l.mtu > 65535)) {
      problems.push(`link ${i}: mtu ${l.mtu} out of range`);
    }
  }
  for (const n of spec.nodes) {
    for (const r of n.routes ?? []) {
      if (r.to === "default" && r.via === undefined && r.family === undefined) {
        problems.push(`node "${n.name}": route "default" without via needs a family`);
      }
      if (r.via === undefined && r.dev === undefined) {
        problems.push(`node "${n.name}": route to ${r.to} needs via or dev`);
      }
    }
  }
  if (problems.length > 0) throw new LabError(`invalid lab network:\n  ${problems.join("\n  ")}`);
}

/**
 * The `ip route replace ...` arguments (without `ip`) of a route. The
 * family follows from the destination (`default` becomes `0.0.0.0/0` or
 * `::/0`), so the line also works in `ip -batch`.
 */
export function routeArgs(r: RouteSpec): string[] {
  const family = r.family ?? familyOf(r.via ?? r.to);
  const to = r.to === "default" ? (family === 6 ? "::/0" : "0.0.0.0/0") : r.to;
  const args = ["route", "replace", to];
  if (r.via !== undefined) args.push("via", r.via);
  if (r.dev !== undefined) args.push("dev", r.dev);
  if (r.metric !== undefined) args.push("metric", String(r.metric));
  if (r.table !== undefined) args.push("table", String(r.table));
  return args;
}

/** Sysctls every lab namespace gets, before its interfaces exist (so `default` applies). */
function baseSysctls(node: NodeSpec): Record<string, string | number> {
  const fwd = node.forwarding === true ? 1 : 0;
  return {
    "net.ipv4.conf.all.rp_filter": 0,
    "net.ipv4.conf.default.rp_filter": 0,
    "net.ipv4.ip_forward": fwd,
    "net.ipv6.conf.all.forwarding": fwd,
    "net.ipv6.conf.default.forwarding": fwd,
    "net.ipv6.conf.all.accept_dad": 0,
    "net.ipv6.conf.default.accept_dad": 0,
    "net.ipv6.conf.default.dad_transmits": 0,
    "net.ipv6.conf.all.keep_addr_on_down": 1,
    "net.ipv6.conf.default.keep_addr_on_down": 1,
    "net.ipv6.conf.default.accept_ra": 0,
    ...node.sysctls,
  };
}

// ---------------------------------------------------------------------------
// Small command helpers.

/** What a command run inside a namespace gave back. */
export interface ExecResult {
  /** Exit code (124 when it timed out). */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/** Options of {@link Lab.exec}. */
export interface ExecOptions {
  /** Kill the command after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Text for its standard input. */
  readonly stdin?: string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Runs argv on the host, capturing output; never throws on a non-zero exit. */
export async function run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  let cmd = $`${[...argv]}`.noThrow().quiet().stdout("piped").stderr("piped");
  if (opts.stdin !== undefined) cmd = cmd.stdinText(opts.stdin);
  // Every Deno run here skips the update check (DNS queries from the lab namespaces).
  cmd = cmd.env({ DENO_NO_UPDATE_CHECK: "1", ...opts.env });
  if (opts.timeoutMs !== undefined) cmd = cmd.timeout(opts.timeoutMs);
  const r = await cmd;
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** Runs argv on the host and returns its stdout; throws LabError (with stderr) on failure. */
export async function runOk(argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new LabError(`${argv.join(" ")} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** Names of every network namespace (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const out = await runOk(["ip", "netns", "list"]);
  return out.split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((n) => n !== "");
}

/** Lab namespaces, optionally of one lab only. */
export async function labNamespaces(
  lab?: string,
): Promise<{ ns: string; lab: string; node: string }[]> {
  const out: { ns: string; lab: string; node: string }[] = [];
  for (const ns of await listNamespaces()) {
    const p = parseNamespaceName(ns);
    if (p !== undefined && (lab === undefined || p.lab === lab)) out.push({ ns, ...p });
  }
  return out.sort((x, y) => x.ns.localeCompare(y.ns));
}

/** Pids of the processes inside a namespace (`ip netns pids`); empty if it is gone. */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await run(["ip", "netns", "pids", ns]);
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter((s) => s !== "").map(Number).filter(Number.isInteger);
}

/** Whether `pid` is a live process (a zombie counts as gone). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** The command line of `pid`, or undefined when it is gone. */
export function pidCommandLine(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((s) => s !== "")
      .join(" ");
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: Deno.Signal, group: boolean): void {
  try {
    Deno.kill(group ? -pid : pid, sig);
  } catch {
    if (group) {
      try {
        Deno.kill(pid, sig);
      } catch { /* gone */ }
    }
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Stops processes: SIGTERM (to the process group when `group`), then
 * SIGKILL to those still alive after `timeoutMs`. Resolves when all are
 * gone (or 2 s after the SIGKILL). Returns the pids that needed SIGKILL.
 */
export async function stopPids(
  pids: readonly number[],
  opts: { timeoutMs?: number; group?: boolean } = {},
): Promise<number[]> {
  const group = opts.group ?? false;
  let alive = pids.filter(pidAlive);
  for (const pid of alive) signal(pid, "SIGTERM", group);
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(25);
    alive = alive.filter(pidAlive);
  }
  const killed = [...alive];
  for (const pid of alive) signal(pid, "SIGKILL", group);
  const killDeadline = Date.now() + 2000;
  while (alive.length > 0 && Date.now() < killDeadline) {
    await sleep(25);
    alive = alive.filter(pidAlive);
  }
  return killed;
}

/**
 * Polls `check` until it returns a value other than undefined/false, or
 * throws LabError naming `what` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) {
      throw new LabError(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${what}`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

// ---------------------------------------------------------------------------
// State kept between CLI invocations.

/** One process of a lab, as recorded in the state file. */
export interface ProcessRecord {
  /** Name, unique in the lab (also the log file's base name). */
  readonly name: string;
  /** Node it runs in. */
  readonly node: string;
  /** Pid of the process (its process group leader). */
  readonly pid: number;
  /** Command line run inside the namespace. */
  readonly argv: readonly string[];
  /** Log file path. */
  readonly log: string;
  /** Start time, ISO 8601. */
  readonly startedAt: string;
}

/** The state file of a lab: `<stateDir>/<lab>.json`. */
export interface LabState {
  /** Lab name. */
  readonly lab: string;
  /** Topology it was built from, when known. */
  readonly topology?: string;
  /** Folder of configs and logs. */
  readonly dir: string;
  /** Nodes (not namespaces). */
  readonly nodes: readonly string[];
  /** Build time, ISO 8601. */
  readonly createdAt: string;
  /** Processes started in it (alive or not). */
  readonly processes: readonly ProcessRecord[];
}

/** Path of a lab's state file. */
export function statePath(lab: string, stateDir = DEFAULT_LAB_ROOT): string {
  return `${stateDir}/${lab}.json`;
}

/** Reads a lab's state file; undefined when there is none or it is unreadable. */
export function readState(lab: string, stateDir = DEFAULT_LAB_ROOT): LabState | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(statePath(lab, stateDir))) as LabState;
  } catch {
    return undefined;
  }
}

/** Every state file in `stateDir`. */
export function readAllStates(stateDir = DEFAULT_LAB_ROOT): LabState[] {
  const out: LabState[] = [];
  try {
    for (const e of Deno.readDirSync(stateDir)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const s = readState(e.name.slice(0, -5), stateDir);
      if (s !== undefined) out.push(s);
    }
  } catch { /* no state dir */ }
  return out.sort((a, b) => a.lab.localeCompare(b.lab));
}

function writeState(state: LabState, stateDir: string): void {
  Deno.mkdirSync(stateDir, { recursive: true });
  const path = statePath(state.lab, stateDir);
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
  Deno.renameSync(tmp, path);
}

/** What {@link teardownLab} did. */
export interface TeardownReport {
  /** Namespaces deleted. */
  readonly namespaces: readonly string[];
  /** Pids stopped (SIGTERM). */
  readonly stopped: readonly number[];
  /** Pids that needed SIGKILL. */
  readonly killed: readonly number[];
}

/**
 * Removes a lab whether it is whole, half built or already gone: stops the
 * processes of its state file (process groups) and everything running in
 * its namespaces, deletes the namespaces (which destroys their veths), and
 * removes the state file. Logs and configs stay in the lab folder.
 */
export async function teardownLab(
  lab: string,
  opts: { stateDir?: string; timeoutMs?: number } = {},
): Promise<TeardownReport> {
  requireRoot();
  const stateDir = opts.stateDir ?? DEFAULT_LAB_ROOT;
  const state = readState(lab, stateDir);
  const nss = (await labNamespaces(lab)).map((n) => n.ns);
  const recorded = (state?.processes ?? []).map((p) => p.pid).filter(pidAlive);
  const inside = new Set<number>();
  for (const ns of nss) for (const pid of await namespacePids(ns)) inside.add(pid);
  for (const pid of recorded) inside.delete(pid);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  const [k1, k2] = await Promise.all([
    stopPids(recorded, { timeoutMs, group: true }),
    stopPids([...inside], { timeoutMs }),
  ]);
  // Anything started in the meantime (or missed) goes with SIGKILL.
  for (const ns of nss) {
    const left = await namespacePids(ns);
    if (left.length > 0) await stopPids(left, { timeoutMs: 0 });
  }
  const failed: string[] = [];
  for (const ns of nss) {
    const r = await run(["ip", "netns", "delete", ns]);
    if (r.code !== 0 && (await listNamespaces()).includes(ns)) {
      failed.push(`${ns}: ${r.stderr.trim()}`);
    }
  }
  try {
    Deno.removeSync(statePath(lab, stateDir));
  } catch { /* none */ }
  if (failed.length > 0) {
    throw new LabError(`could not delete namespaces of lab ${lab}:\n  ${failed.join("\n  ")}`);
  }
  return { namespaces: nss, stopped: [...recorded, ...inside], killed: [...k1, ...k2] };
}

// ---------------------------------------------------------------------------
// Processes.

/** Options of {@link Lab.spawn}. */
export interface SpawnOptions {
  /** Extra environment variables (NO_COLOR=1 is always set). */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory (default: this process's). */
  readonly cwd?: string;
  /** Let this process exit while the child runs on (the CLI's `lab up`). */
  readonly detach?: boolean;
}

/** A long-running process inside a lab namespace. */
export class LabProcess {
  /** Name, unique in the lab; the log is `<dir>/<name>.log`. */
  readonly name: string;
  /** Node it runs in. */
  readonly node: string;
  /** Its pid (and process group id). */
  readonly pid: number;
  /** Path of its log file (stdout and stderr). */
  readonly log: string;
  /** Command line it runs. */
  readonly argv: readonly string[];
  readonly #child: Deno.ChildProcess | undefined;
  readonly #timeoutMs: number;
  #status: Deno.CommandStatus | undefined;

  /** Wraps a started child, or a recorded pid when `child` is undefined. */
  constructor(
    rec: Pick<ProcessRecord, "name" | "node" | "pid" | "log" | "argv">,
    child: Deno.ChildProcess | undefined,
    timeoutMs = DEFAULT_STOP_TIMEOUT_MS,
  ) {
    this.name = rec.name;
    this.node = rec.node;
    this.pid = rec.pid;
    this.log = rec.log;
    this.argv = rec.argv;
    this.#child = child;
    this.#timeoutMs = timeoutMs;
    child?.status.then((s) => this.#status = s);
  }

  /** Exit status once it has exited (only for processes this Lab started). */
  get status(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /** Whether it is still running. */
  alive(): boolean {
    return this.#status === undefined && pidAlive(this.pid);
  }

  /** The log so far ("" when there is none yet). */
  readLog(): string {
    try {
      return Deno.readTextFileSync(this.log);
    } catch {
      return "";
    }
  }

  /**
   * Waits until the log matches `pattern`; throws LabError with the log's
   * tail when it does not within `timeoutMs`, or when the process exits.
   */
  async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    try {
      return await waitFor(`${this.name}: log line matching ${pattern}`, () => {
        const m = this.readLog().match(pattern);
        if (m !== null) return m;
        if (!this.alive()) {
          throw new LabError(`${this.name} exited before logging ${pattern}`);
        }
        return undefined;
      }, { timeoutMs });
    } catch (e) {
      const tail = this.readLog().split("\n").slice(-15).join("\n  ");
      throw new LabError(`${(e as Error).message}; log ${this.log}:\n  ${tail}`, { cause: e });
    }
  }

  /**
   * Stops it: SIGTERM to its process group, SIGKILL after the timeout.
   * Resolves to how it ended.
   */
  async stop(timeoutMs = this.#timeoutMs): Promise<"exited" | "terminated" | "killed"> {
    if (!this.alive()) {
      if (this.#child !== undefined) await this.#child.status;
      return "exited";
    }
    const killed = await stopPids([this.pid], { timeoutMs, group: true });
    if (this.#child !== undefined) await this.#child.status;
    return killed.length > 0 ? "killed" : "terminated";
  }
}

// ---------------------------------------------------------------------------
// The lab.

/** A lab: a {@link NetworkSpec} built in network namespaces. */
export class Lab {
  /** Lab name (namespaces are `oor-<name>-<node>`). */
  readonly name: string;
  /** The nodes and links. */
  readonly spec: NetworkSpec;
  /** Folder of configs and logs. */
  readonly dir: string;
  /** Folder of the state file. */
  readonly stateDir: string;
  /** Topology name recorded in the state file, when built from one. */
  readonly topology: string | undefined;
  readonly #stopTimeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #processes = new Map<string, LabProcess>();
  readonly #records = new Map<string, ProcessRecord>();
  #createdAt = new Date().toISOString();

  /** Declares a lab; nothing is built until {@link Lab.up}. */
  constructor(spec: NetworkSpec, opts: LabOptions) {
    if (!LAB_NAME.test(opts.name)) {
      throw new LabError(`lab name "${opts.name}" must match ${LAB_NAME.source}`);
    }
    validateNetwork(spec);
    this.name = opts.name;
    this.spec = spec;
    this.stateDir = opts.stateDir ?? DEFAULT_LAB_ROOT;
    this.dir = opts.dir ?? `${this.stateDir}/${opts.name}`;
    this.topology = opts.topology;
    this.#stopTimeoutMs = opts.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.#log = opts.log ?? (() => {});
  }

  /** Namespace of a node; throws for a node the lab does not have. */
  ns(node: string): string {
    if (!this.spec.nodes.some((n) => n.name === node)) {
      throw new LabError(`lab ${this.name} has no node "${node}"`);
    }
    return namespaceName(this.name, node);
  }

  /** Path of a file in the lab folder. */
  path(file: string): string {
    return `${this.dir}/${file}`;
  }

  /** Writes a file in the lab folder (configs); returns its path. */
  async writeFile(file: string, text: string): Promise<string> {
    await Deno.mkdir(this.dir, { recursive: true });
    const p = this.path(file);
    await Deno.writeTextFile(p, text);
    return p;
  }

  /** Processes started by this Lab object, by name. */
  get processes(): ReadonlyMap<string, LabProcess> {
    return this.#processes;
  }

  /**
   * Builds the lab: tears down any lab of the same name first, then
   * creates namespaces, sysctls, veth pairs, addresses and routes.
   */
  async up(): Promise<void> {
    requireRoot();
    await this.down();
    await Deno.mkdir(this.dir, { recursive: true });
    this.#createdAt = new Date().toISOString();
    this.#log(
      `lab ${this.name}: building ${this.spec.nodes.length} nodes, ` +
        `${this.spec.links.length} links in ${this.dir}`,
    );
    this.#saveState();
    try {
      await this.#build();
    } catch (e) {
      this.#log(`lab ${this.name}: build failed, tearing down`);
      await this.down().catch(() => {});
      throw e;
    }
  }

  async #build(): Promise<void> {
    const nodes = this.spec.nodes;
    await runOk(["ip", "-batch", "-"], {
      stdin: nodes.map((n) => `netns add ${this.ns(n.name)}\n`).join(""),
    });
    await Promise.all(nodes.map(async (n) => {
      const kv = Object.entries(baseSysctls(n)).map(([k, v]) => `${k}=${v}`);
      await runOk(["ip", "netns", "exec", this.ns(n.name), "sysctl", "-q", "-w", ...kv]);
    }));
    const links = this.spec.links.map((l) => {
      const mtu = l.mtu !== undefined ? ` mtu ${l.mtu}` : "";
      return `link add name ${l.a.iface} netns ${this.ns(l.a.node)}${mtu} type veth ` +
        `peer name ${l.b.iface} netns ${this.ns(l.b.node)}${mtu}\n`;
    });
    if (links.length > 0) await runOk(["ip", "-batch", "-"], { stdin: links.join("") });
    await Promise.all(nodes.map((n) => {
      const lines = ["link set lo up"];
      for (const end of this.#ends(n.name)) {
        lines.push(`link set ${end.iface} up`);
        for (const a of end.addresses ?? []) {
          lines.push(`addr add ${a} dev ${end.iface}${familyOf(a) === 6 ? " nodad" : ""}`);
        }
      }
      return runOk(["ip", "-n", this.ns(n.name), "-batch", "-"], {
        stdin: lines.map((l) => l + "\n").join(""),
      });
    }));
    await Promise.all(nodes.map((n) => this.applyRoutes(n.name)));
  }

  /** Link ends that sit on `node`. */
  #ends(node: string): LinkEnd[] {
    const out: LinkEnd[] = [];
    for (const l of this.spec.links) {
      if (l.a.node === node) out.push(l.a);
      if (l.b.node === node) out.push(l.b);
    }
    return out;
  }

  /** (Re-)adds a node's routes with `ip route replace` (routes via a link vanish when it goes down). */
  async applyRoutes(node: string): Promise<void> {
    const spec = this.spec.nodes.find((n) => n.name === node);
    const routes = spec?.routes ?? [];
    if (routes.length === 0) return;
    const lines = routes.map((r) => routeArgs(r).join(" ") + "\n");
    await runOk(["ip", "-n", this.ns(node), "-batch", "-"], { stdin: lines.join("") });
  }

  /**
   * Takes an interface of a node down or up; bringing it up re-adds the
   * node's routes (the kernel drops routes through a link that goes down).
   */
  async setLink(node: string, iface: string, up: boolean): Promise<void> {
    await runOk(["ip", "-n", this.ns(node), "link", "set", iface, up ? "up" : "down"]);
    if (up) {
      // Let the connected routes come back before the gateways that need them.
      await waitFor(`${node}/${iface} up`, async () => {
        const r = await this.exec(node, ["ip", "-o", "link", "show", iface]);
        return r.code === 0 && !r.stdout.includes("NO-CARRIER") && r.stdout.includes(",UP");
      }, { timeoutMs: 3000 });
      await this.applyRoutes(node);
    }
  }

  /** The `ip netns exec <ns> ...argv` command line. */
  argv(node: string, argv: readonly string[]): string[] {
    return ["ip", "netns", "exec", this.ns(node), ...argv];
  }

  /**
   * A dax command running argv inside `node`, to customise
   * (`.text()`, `.noThrow()`, `.timeout()`, `.stdout("piped")`...).
   */
  command(node: string, argv: readonly string[]): ReturnType<typeof $> {
    return $`${this.argv(node, argv)}`;
  }

  /** Runs argv inside `node`, capturing output; never throws on a non-zero exit. */
  exec(node: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(this.argv(node, argv), opts);
  }

  /** Runs argv inside `node` and returns stdout; throws LabError with stderr when it fails. */
  execOk(node: string, argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
    return runOk(this.argv(node, argv), opts);
  }

  /** Runs a `sh -c` script inside `node`. */
  sh(node: string, script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return run(this.argv(node, ["sh", "-c", script]), opts);
  }

  /**
   * `ping -c<count> -W<waitS>` from `node` to `dst` (IPv4 or IPv6); true
   * when a reply came back.
   */
  async ping(
    node: string,
    dst: string,
    opts: { count?: number; waitS?: number; size?: number } = {},
  ): Promise<boolean> {
    const argv = ["ping", "-n", "-q", "-c", String(opts.count ?? 1), "-W", String(opts.waitS ?? 1)];
    if (opts.size !== undefined) argv.push("-s", String(opts.size));
    if (familyOf(dst) === 6) argv.push("-6");
    const r = await this.exec(node, [...argv, dst], {
      timeoutMs: ((opts.waitS ?? 1) * (opts.count ?? 1) + 5) * 1000,
    });
    if (r.code === 127 || /not found/.test(r.stderr)) {
      throw new LabError("ping is not installed (Debian: apt-get install iputils-ping)");
    }
    return r.code === 0;
  }

  /**
   * Starts a long-running process inside `node`, its stdout and stderr
   * going to `<dir>/<name>.log` (truncated first). `name` is unique in the
   * lab. The pid is written to the state file.
   */
  async spawn(
    node: string,
    name: string,
    argv: readonly string[],
    opts: SpawnOptions = {},
  ): Promise<LabProcess> {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new LabError(`bad process name "${name}"`);
    const old = this.#processes.get(name);
    if (old !== undefined && old.alive()) {
      throw new LabError(`lab ${this.name} already runs a process named "${name}"`);
    }
    await Deno.mkdir(this.dir, { recursive: true });
    const log = this.path(`${name}.log`);
    await Deno.writeTextFile(log, "");
    const cmd = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        this.ns(node),
        "sh",
        "-c",
        'exec "$@" >>"$OOR_LAB_LOG" 2>&1 </dev/null',
        "sh",
        ...argv,
      ],
      // No update check: it would send DNS queries from inside the lab namespaces.
      env: { DENO_NO_UPDATE_CHECK: "1", ...opts.env, NO_COLOR: "1", OOR_LAB_LOG: log },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    const child = cmd.spawn();
    if (opts.detach === true) child.unref();
    const rec: ProcessRecord = {
      name,
      node,
      pid: child.pid,
      argv: [...argv],
      log,
      startedAt: new Date().toISOString(),
    };
    const p = new LabProcess(rec, child, this.#stopTimeoutMs);
    this.#processes.set(name, p);
    this.#records.set(name, rec);
    this.#saveState();
    this.#log(`lab ${this.name}: started ${name} in ${node} (pid ${child.pid}), log ${log}`);
    return p;
  }

  /** Stops one process started by {@link Lab.spawn}. */
  async stop(name: string): Promise<void> {
    const p = this.#processes.get(name);
    if (p === undefined) throw new LabError(`lab ${this.name} has no process "${name}"`);
    const how = await p.stop();
    this.#log(`lab ${this.name}: ${name} ${how}`);
  }

  /** Stops every process started by this Lab object (in parallel). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#processes.keys()].map((n) => this.stop(n)));
  }

  /**
   * Tears the lab down (see {@link teardownLab}): stops its processes and
   * deletes its namespaces. Safe to call any number of times.
   */
  async down(): Promise<void> {
    requireRoot();
    await this.stopAll();
    const r = await teardownLab(this.name, {
      stateDir: this.stateDir,
      timeoutMs: this.#stopTimeoutMs,
    });
    this.#processes.clear();
    this.#records.clear();
    if (r.namespaces.length > 0) {
      this.#log(
        `lab ${this.name}: removed ${r.namespaces.length} namespaces` +
          (r.killed.length > 0 ? `, killed ${r.killed.join(", ")}` : ""),
      );
    }
  }

  /** `await using lab = ...` tears the lab down at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }

  #saveState(): void {
    writeState({
      lab: this.name,
      ...(this.topology !== undefined ? { topology: this.topology } : {}),
      dir: this.dir,
      nodes: this.spec.nodes.map((n) => n.name),
      createdAt: this.#createdAt,
      processes: [...this.#records.values()],
    }, this.stateDir);
  }
}

// ---------------------------------------------------------------------------
// Status.

/** What {@link labStatus} reports for one lab. */
export interface LabStatus {
  /** Lab name. */
  readonly lab: string;
  /** Topology, when the state file says. */
  readonly topology?: string;
  /** Folder of configs and logs, when known. */
  readonly dir?: string;
  /** Its namespaces that exist. */
  readonly namespaces: readonly string[];
  /** Processes: recorded ones and any other found in its namespaces. */
  readonly processes: readonly {
    readonly name?: string;
    readonly node: string;
    readonly pid: number;
    readonly alive: boolean;
    readonly command: string;
  }[];
  /** Log files in its folder, with sizes in bytes. */
  readonly logs: readonly { readonly path: string; readonly bytes: number }[];
}

/** Status of every lab that has namespaces or a state file. */
export async function labStatus(stateDir = DEFAULT_LAB_ROOT): Promise<LabStatus[]> {
  const states = new Map(readAllStates(stateDir).map((s) => [s.lab, s]));
  const nss = await labNamespaces();
  const labs = new Set<string>([...states.keys(), ...nss.map((n) => n.lab)]);
  const out: LabStatus[] = [];
  for (const lab of [...labs].sort()) {
    const state = states.get(lab);
    const mine = nss.filter((n) => n.lab === lab);
    const processes: LabStatus["processes"][number][] = [];
    const seen = new Set<number>();
    for (const p of state?.processes ?? []) {
      seen.add(p.pid);
      processes.push({
        name: p.name,
        node: p.node,
        pid: p.pid,
        alive: pidAlive(p.pid),
        command: p.argv.join(" "),
      });
    }
    for (const n of mine) {
      for (const pid of await namespacePids(n.ns)) {
        if (seen.has(pid)) continue;
        processes.push({
          node: n.node,
          pid,
          alive: pidAlive(pid),
          command: pidCommandLine(pid) ?? "?",
        });
      }
    }
    const logs: { path: string; bytes: number }[] = [];
    if (state !== undefined) {
      try {
        for (const e of Deno.readDirSync(state.dir)) {
          if (!e.isFile || !e.name.endsWith(".log")) continue;
          const path = `${state.dir}/${e.name}`;
          logs.push({ path, bytes: Deno.statSync(path).size });
        }
      } catch { /* folder gone */ }
      logs.sort((a, b) => a.path.localeCompare(b.path));
    }
    out.push({
      lab,
      ...(state?.topology !== undefined ? { topology: state.topology } : {}),
      ...(state !== undefined ? { dir: state.dir } : {}),
      namespaces: mine.map((n) => n.ns),
      processes,
      logs,
    });
  }
  return out;
}
