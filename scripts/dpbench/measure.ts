/**
 * The measuring half of `deno task bench:dataplane`: one iperf3 test from
 * a sender node to a receiver node of a lab, with the CPU of every process
 * involved and of the machine over the middle of the test, ping round
 * trips idle and under load, and the kernel's UDP receive-buffer drops.
 *
 * CPU is read from `/proc/<pid>/stat` (utime + stime of all threads) and
 * `/proc/stat` (all CPUs), sampled at the start and end of a window that
 * leaves out the test's first and last moments (TCP slow start, the final
 * exchange). This kernel has no IRQ time accounting
 * (`CONFIG_IRQ_TIME_ACCOUNTING` off on the machine this was written on):
 * softirq work (the veth, routing and the kernel's VXLAN) is counted both in
 * `/proc/stat`'s softirq column and in the stime of whichever process it
 * interrupted, so a sender's figure includes forwarding work done on its
 * CPU.
 *
 * @module
 */

import { type Lab, type LabProcess, sleep, waitFor } from "../lab/topology.ts";
import {
  type CpuFigures,
  type IperfFigures,
  parseIperf,
  parsePing,
  type PingFigures,
  round,
  type TestId,
  type TestResult,
  TESTS,
} from "./report.ts";

/** Clock ticks per second of /proc (USER_HZ, 100 on Linux). */
const HZ = 100;

/** TCP port of the iperf3 server. */
export const IPERF_PORT = 5201;

/** Seconds an iperf3 client may run past its `-t` before it is killed. */
const IPERF_GRACE_S = 20;

/** utime + stime of a process in clock ticks, or undefined when it is gone. */
export function processTicks(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

/** Busy, softirq and total ticks of all CPUs together (first line of /proc/stat). */
export function machineTicks(): { busy: number; softirq: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, softirq: v[6] ?? 0, total };
}

/** utime + stime of every process (all threads), and the pids of the ksoftirqd threads. */
export function allTicks(): { ticks: Map<number, number>; ksoftirqd: Set<number> } {
  const ticks = new Map<number, number>();
  const ksoftirqd = new Set<number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const close = stat.lastIndexOf(")");
      const f = stat.slice(close + 2).split(" ");
      const pid = Number(e.name);
      ticks.set(pid, Number(f[11]) + Number(f[12]));
      if (stat.slice(stat.indexOf("(") + 1, close).startsWith("ksoftirqd/")) ksoftirqd.add(pid);
    } catch {
      // gone meanwhile
    }
  }
  return { ticks, ksoftirqd };
}

/** The processes whose CPU a test reports. */
export interface CpuPids {
  readonly sender?: number;
  readonly receiver?: number;
  readonly xtr1?: number;
  readonly xtr2?: number;
}

/** A snapshot of the ticks of some processes and of the machine. */
export class CpuWindow {
  readonly #pids: CpuPids;
  readonly #start: Map<string, number | undefined>;
  readonly #machine = machineTicks();
  readonly #all = allTicks();
  readonly #t0 = performance.now();

  /** Takes the first snapshot. */
  constructor(pids: CpuPids) {
    this.#pids = pids;
    this.#start = new Map(
      Object.entries(pids).map((
        [k, pid],
      ) => [k, pid === undefined ? undefined : processTicks(pid)]),
    );
  }

  /** Takes the second snapshot: each process's and the machine's CPU in % of one core. */
  end(): CpuFigures {
    const seconds = (performance.now() - this.#t0) / 1000;
    const m = machineTicks();
    const share = (ticks: number) => round((ticks / HZ / Math.max(seconds, 0.01)) * 100, 1);
    const of = (k: keyof CpuPids): number | null => {
      const pid = this.#pids[k];
      const a = this.#start.get(k);
      const b = pid === undefined ? undefined : processTicks(pid);
      return a === undefined || b === undefined ? null : share(b - a);
    };
    const all = allTicks();
    // This process (the benchmark itself) is not someone else's load either.
    const mine = new Set([...Object.values(this.#pids), Deno.pid]);
    let others = 0;
    let ksoftirqd = 0;
    for (const [pid, b] of all.ticks) {
      if (mine.has(pid)) continue;
      const d = b - (this.#all.ticks.get(pid) ?? 0);
      if (all.ksoftirqd.has(pid)) ksoftirqd += d;
      else others += d;
    }
    return {
      windowS: round(seconds, 2),
      sender: of("sender"),
      receiver: of("receiver"),
      xtr1: of("xtr1"),
      xtr2: of("xtr2"),
      ksoftirqd: share(ksoftirqd),
      others: share(others),
      softirq: share(m.softirq - this.#machine.softirq),
      machine: share(m.busy - this.#machine.busy),
    };
  }
}

/** The machine's busy share over `ms` milliseconds, % of one core (what else runs here). */
export async function backgroundLoad(ms = 1000): Promise<number> {
  const w = new CpuWindow({});
  await sleep(ms);
  return w.end().machine;
}

/** `RcvbufErrors` of the `Udp:` line of /proc/net/snmp inside a node. */
export async function rcvbufErrors(lab: Lab, node: string): Promise<number> {
  const r = await lab.exec(node, ["cat", "/proc/net/snmp"], { timeoutMs: 5000 });
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  if (lines.length < 2) return 0;
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  const i = names.indexOf("RcvbufErrors");
  return i < 0 ? 0 : Number(values[i] ?? 0);
}

/** Pings `dst` from `node` `count` times, `intervalS` apart (root: down to 0.002 s). */
export async function ping(
  lab: Lab,
  node: string,
  dst: string,
  count: number,
  intervalS: number,
): Promise<PingFigures> {
  const r = await lab.exec(node, [
    "ping",
    "-n",
    "-c",
    String(count),
    "-i",
    String(intervalS),
    "-W",
    "1",
    dst,
  ], { timeoutMs: (count * intervalS + 5) * 1000 });
  return parsePing(r.stdout);
}

/** The kernel's TCP congestion control for new sockets (the namespaces share it). */
export function systemCongestion(): string {
  return readProc("/proc/sys/net/ipv4/tcp_congestion_control") || "unknown";
}

/** The congestion controls this kernel has (root may use any of them). */
export function availableCongestion(): string[] {
  const names = readProc("/proc/sys/net/ipv4/tcp_available_congestion_control");
  return names.split(/\s+/).filter((x) => x !== "");
}

function readProc(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return "";
  }
}

/** Where and how long an iperf3 test runs. */
export interface TestPlan {
  /** The lab. */
  readonly lab: Lab;
  /** Node of the iperf3 client (the sender). */
  readonly sender: string;
  /** Node of the iperf3 server (the receiver). */
  readonly receiver: string;
  /** Address the server listens on. */
  readonly receiverAddress: string;
  /** Seconds of traffic (`-t`). */
  readonly seconds: number;
  /**
   * Seconds at the start of a TCP test that iperf3 leaves out of its
   * figures (`--omit`; the test runs that much longer): TCP's slow start,
   * and the first packets of a freshly started xTR. 0 or absent: none.
   */
  readonly omit?: number;
  /** TCP congestion control of the sender (iperf3 `-C`); absent: the system's. */
  readonly congestion?: string;
  /** xTR processes to report, when they are processes. */
  readonly xtrPids: { readonly xtr1?: number; readonly xtr2?: number };
  /** Nodes whose UDP receive-buffer drops are counted. */
  readonly dropNodes: readonly string[];
  /** A unique prefix for the lab process names of this test. */
  readonly name: string;
  /** Stops the test early (Ctrl-C). */
  readonly signal: AbortSignal;
  /** Called while the test runs, at its middle, e.g. to ping under load; awaited. */
  readonly during?: () => Promise<void>;
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/** Waits until `p` exits, or stops it after `timeoutMs`. */
async function exited(p: LabProcess, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (p.alive() && Date.now() < deadline && !signal.aborted) await sleep(50);
  if (p.alive()) await p.stop(1000);
}

/**
 * How far into the measured part of a `seconds`-long test its CPU window
 * (and the ping under load) starts: a fifth of it, at most 1 s, so that
 * slow start is over. The window ends 0.3 s before the test does.
 */
export function windowLead(seconds: number): number {
  return Math.min(1, seconds * 0.2);
}

/**
 * Runs one iperf3 test (`iperf3 -s -1` at the receiver, `iperf3 -c ... -t
 * S -J` at the sender, `--omit` and `-C` for TCP when the plan asks), samples CPU
 * over the middle of what it measures ({@link windowLead}), and reads the
 * client's JSON. Never throws for a failed test: the result carries the
 * error.
 */
export async function runTest(plan: TestPlan, test: TestId): Promise<TestResult> {
  const { lab } = plan;
  const args = TESTS.find((t) => t.id === test)!.args;
  const tcp = test.startsWith("tcp");
  const omit = tcp ? plan.omit ?? 0 : 0;
  const server = await lab.spawn(plan.receiver, `${plan.name}-srv`, [
    "iperf3",
    "-s",
    "-1",
    "-B",
    plan.receiverAddress,
    "-p",
    String(IPERF_PORT),
  ]);
  let client: LabProcess | undefined;
  try {
    await waitFor("the iperf3 server listening", async () => {
      if (!server.alive()) throw new Error(`iperf3 server exited: ${server.readLog().trim()}`);
      const r = await lab.exec(plan.receiver, ["ss", "-Hltn", `sport = :${IPERF_PORT}`]);
      return r.stdout.trim() !== "";
    }, { timeoutMs: 5000, intervalMs: 50 });
    const drops0 = await Promise.all(plan.dropNodes.map((n) => rcvbufErrors(lab, n)));
    client = await lab.spawn(plan.sender, `${plan.name}-cli`, [
      "iperf3",
      "-c",
      plan.receiverAddress,
      "-p",
      String(IPERF_PORT),
      "-t",
      String(plan.seconds),
      "-J",
      ...(omit > 0 ? ["--omit", String(omit)] : []),
      ...(tcp && plan.congestion !== undefined ? ["-C", plan.congestion] : []),
      ...args,
    ]);
    const lead = omit + windowLead(plan.seconds);
    await pause(lead * 1000, plan.signal);
    const window = new CpuWindow({
      sender: client.pid,
      receiver: server.pid,
      ...plan.xtrPids,
    });
    const during = plan.during?.();
    await pause(Math.max(0.2, omit + plan.seconds - lead - 0.3) * 1000, plan.signal);
    const cpu = window.end();
    await during;
    if (plan.signal.aborted) return { test, error: "interrupted" };
    await exited(client, (IPERF_GRACE_S + 1) * 1000, plan.signal);
    await exited(server, 3000, plan.signal);
    const drops1 = await Promise.all(plan.dropNodes.map((n) => rcvbufErrors(lab, n)));
    const rcvbuf = Object.fromEntries(
      plan.dropNodes.map((n, i) => [n, Math.max(0, drops1[i]! - drops0[i]!)]),
    );
    const drops = { rcvbufErrors: rcvbuf, receiverDrops: rcvbuf[plan.receiver] ?? 0 };
    let iperf: IperfFigures;
    try {
      iperf = parseIperf(client.readLog());
    } catch (e) {
      return { test, error: (e as Error).message, cpu, ...drops };
    }
    return { test, iperf, cpu, ...drops };
  } catch (e) {
    return { test, error: (e as Error).message };
  } finally {
    if (client?.alive()) await client.stop(1000);
    if (server.alive()) await server.stop(1000);
  }
}
