/**
 * `deno task soak`: faults under traffic, in the basic lab, for a bounded
 * time (60 s by default).
 *
 * The lab (hosta - xtr1 - router + ms/mr - xtr2 - hostb) carries a steady
 * UDP flow, hosta to hostb's echo server, 20 datagrams a second. Faults
 * follow each other until the time is up (at least one round):
 *
 * 1. `ms`: the map-server and map-resolver are stopped (SIGTERM) and
 *    started again. Cached mappings keep the flow going; the ms must
 *    answer a lookup of its static site again.
 * 2. `xtr-kill`: xtr1 is killed with SIGKILL (no cleanup), stays down
 *    3 s, and is started again. While it is down, no datagram of site 1
 *    may leave natively; once it is back the flow must recover.
 * 3. `link`: xtr2's underlay link goes down for 3 s, then up; the flow
 *    must recover.
 *
 * After each fault it measures how long the flow took to come back (from
 * the end of the fault to the first echo of a datagram sent after it), and
 * checks that against a stated bound; it also reports the outage: the
 * longest run of datagrams lost from the start of the fault to then. Native leaks are counted in the router
 * (an nftables prerouting counter on EID source or destination addresses,
 * which encapsulated traffic never has in its outer header). A role that
 * exits on its own is a failure.
 *
 * ```
 * deno task soak [--minutes N] [--name LAB] [--keep] [--json]
 * ```
 *
 * Exit code: 0 when every check held, 1 when one did not, 2 when not root
 * or on bad arguments. All traffic stays inside the lab's namespaces.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isRoot, type Lab, LabError, sleep, waitFor } from "./lab/topology.ts";
import { lig, makeTopology, PLAN, startLisp, type Topology, upTopology } from "./lab/topologies.ts";

const EXIT_USAGE = 2;

const USAGE = `Usage: deno task soak [--minutes N] [--name LAB] [--keep] [--json]

Runs the basic LISP lab in network namespaces (needs root) with a steady UDP
flow from hosta (${PLAN.hostA4}) to hostb (${PLAN.hostB4}), and injects faults
in turn until the time is up: the ms restarted, xtr1 killed with SIGKILL and
started again, xtr2's underlay link down for 3 s. After each fault it checks
that the flow recovers within a bound and that nothing leaked natively.

  --minutes N   how long to inject faults (default 1; at least one round)
  --name LAB    lab name (default soak): namespaces oor-<LAB>-<node>
  --keep        leave the lab running afterwards
  --json        print the summary as one JSON object
`;

/** Recovery bounds, ms, by fault: what the soak asserts. */
export const BOUNDS: Readonly<Record<FaultName, number>> = {
  // The flow rides cached mappings: it must not stop for long at all.
  ms: 2_000,
  // A new process: start (about 1-2 s), registration, a Map-Request.
  "xtr-kill": 15_000,
  // Link back: the data socket rebinds, probes mark the locator up.
  link: 15_000,
};

/** How long a fault keeps the thing down, ms. */
const DOWN_MS = 3_000;
/** Datagrams per second of the steady flow. */
const RATE = 20;
const FLOW_PORT = 7788;

type FaultName = "ms" | "xtr-kill" | "link";
const FAULTS: readonly FaultName[] = ["ms", "xtr-kill", "link"];

const PYTHON = (() => {
  for (const p of ["/usr/bin/python3", "/usr/local/bin/python3"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return "python3";
})();

/** UDP echo server: `ADDRESS PORT`. */
const ECHO = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
`;

/**
 * The steady flow: \`DST PORT RATE SECONDS\`; prints "S seq t" per datagram
 * sent and "R seq t" per echo (t: Unix time, seconds).
 */
const FLOW = `
import select, socket, sys, time
dst, port, rate, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
start = time.time()
seq = 0
print("flowing", flush=True)
while time.time() - start < secs:
    t = time.time()
    try:
        s.sendto(b"%d" % seq, (dst, port))
        print("S %d %.3f" % (seq, t), flush=True)
    except OSError:
        print("E %d %.3f" % (seq, t), flush=True)
    seq += 1
    deadline = t + 1.0 / rate
    while True:
        left = deadline - time.time()
        r, _, _ = select.select([s], [], [], max(0.0, left))
        if not r:
            break
        try:
            d, _ = s.recvfrom(2048)
            print("R %s %.3f" % (d.decode(), time.time()), flush=True)
        except OSError:
            pass
`;

/** What one fault did. */
export interface FaultResult {
  readonly fault: FaultName;
  readonly round: number;
  /** From the end of the fault to the first echo of a datagram sent after it, ms. */
  readonly recoveryMs: number | null;
  /**
   * The longest run of datagrams never echoed, sent between the start of
   * the fault and the recovery: how long the flow was out, ms (0: none lost).
   */
  readonly outageMs: number | null;
  readonly boundMs: number;
  /** Native packets with EID addresses the router saw during the fault and its recovery. */
  readonly leaked: number;
  readonly ok: boolean;
  readonly problems: readonly string[];
}

/** The soak's outcome. */
export interface SoakSummary {
  readonly seconds: number;
  readonly faults: readonly FaultResult[];
  readonly sent: number;
  readonly echoed: number;
  readonly leaked: number;
  readonly crashed: readonly string[];
  readonly ok: boolean;
}

const LEAK_TABLE = "oor_soak_leak";
const LEAK_RULES = [
  `table inet ${LEAK_TABLE} {`,
  "  chain pre {",
  "    type filter hook prerouting priority -300; policy accept;",
  "    ip saddr 10.0.0.0/8 counter",
  "    ip daddr 10.0.0.0/8 counter",
  "    ip6 saddr fd00::/8 counter",
  "    ip6 daddr fd00::/8 counter",
  "  }",
  "}",
  "",
].join("\n");

/** Native EID packets the router has seen so far. */
async function leakedSoFar(lab: Lab): Promise<number> {
  const out = JSON.parse(
    await lab.execOk("router", ["nft", "-j", "list", "table", "inet", LEAK_TABLE]),
  ) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
  let n = 0;
  for (const item of out.nftables) {
    for (const e of item.rule?.expr ?? []) n += e.counter?.packets ?? 0;
  }
  return n;
}

/** The flow's log, parsed: send and echo times by sequence number (ms). */
function readFlow(log: string): { sent: Map<number, number>; echoed: Map<number, number> } {
  const sent = new Map<number, number>();
  const echoed = new Map<number, number>();
  for (const line of log.split("\n")) {
    const m = /^([SR]) (\d+) ([\d.]+)$/.exec(line);
    if (m === null) continue;
    const seq = Number(m[2]);
    const t = Number(m[3]) * 1000;
    if (m[1] === "S") sent.set(seq, t);
    else if (!echoed.has(seq)) echoed.set(seq, t);
  }
  return { sent, echoed };
}

/**
 * The longest run of datagrams sent in `[from, to]` (Unix ms) that were
 * never echoed, from the first one sent to the next one that was: ms.
 */
function longestLoss(log: string, from: number, to: number): number {
  const { sent, echoed } = readFlow(log);
  const seqs = [...sent.keys()].sort((a, b) => a - b);
  let longest = 0;
  let runStart: number | undefined;
  for (const seq of seqs) {
    const t = sent.get(seq)!;
    if (t < from) continue;
    if (t > to) break;
    if (!echoed.has(seq)) {
      runStart ??= t;
    } else if (runStart !== undefined) {
      longest = Math.max(longest, t - runStart);
      runStart = undefined;
    }
  }
  if (runStart !== undefined) longest = Math.max(longest, to - runStart);
  return Math.round(longest);
}

/** The first echo of a datagram sent at or after `from` (Unix ms), or undefined. */
function firstEchoAfter(log: string, from: number): number | undefined {
  const { sent, echoed } = readFlow(log);
  let best: number | undefined;
  for (const [seq, t] of echoed) {
    const s = sent.get(seq);
    if (s !== undefined && s >= from && (best === undefined || t < best)) best = t;
  }
  return best;
}

function restartLisp(lab: Lab, topo: Topology, names: readonly string[]) {
  return startLisp(lab, topo, { only: names, startTimeoutMs: 15_000 });
}

/** Injects one fault; resolves to when the fault ended (Unix ms) and what went wrong. */
async function inject(
  lab: Lab,
  topo: Topology,
  fault: FaultName,
): Promise<{ endedAt: number; problems: string[] }> {
  const problems: string[] = [];
  switch (fault) {
    case "ms": {
      await lab.stop("ms");
      await lab.stop("mr");
      await sleep(DOWN_MS);
      await restartLisp(lab, topo, ["ms", "mr"]);
      const endedAt = Date.now();
      // The ms answers again (its static site needs no registration).
      const a = await lig(lab, topo.staticLookup.from, topo.staticLookup.eid, PLAN.mr4, {
        count: 3,
      });
      if (a.code !== 0 || !a.locators.includes(topo.staticLookup.rloc)) {
        problems.push(`the restarted ms did not answer a lookup of ${topo.staticLookup.eid}`);
      }
      return { endedAt, problems };
    }
    case "xtr-kill": {
      const p = lab.processes.get("xtr1");
      if (p === undefined) throw new LabError("xtr1 is not running");
      Deno.kill(-p.pid, "SIGKILL");
      await waitFor("xtr1 gone", () => !p.alive() || undefined, { timeoutMs: 5000 });
      await sleep(DOWN_MS);
      await restartLisp(lab, topo, ["xtr1"]);
      return { endedAt: Date.now(), problems };
    }
    case "link": {
      await lab.execOk("xtr2", ["ip", "link", "set", "rloc0", "down"]);
      await sleep(DOWN_MS);
      await lab.execOk("xtr2", ["ip", "link", "set", "rloc0", "up"]);
      await lab.applyRoutes("xtr2");
      return { endedAt: Date.now(), problems };
    }
  }
}

/** Runs the soak in an up lab for `seconds`; resolves to its summary. */
export async function soak(
  lab: Lab,
  topo: Topology,
  seconds: number,
  say: (line: string) => void = () => {},
): Promise<SoakSummary> {
  const t0 = Date.now();
  await lab.execOk("router", ["nft", "-f", await lab.writeFile("leak.nft", LEAK_RULES)]);
  // Both sites registered first: a request before that gets a negative
  // answer that the ITR keeps for a minute.
  for (const name of ["xtr1", "xtr2"]) {
    const p = lab.processes.get(name);
    if (p === undefined) throw new LabError(`${name} is not running`);
    await p.waitForLog(/ registered /, 20_000);
  }
  const echo = await lab.spawn("hostb", "soak-echo", [
    PYTHON,
    "-c",
    ECHO,
    PLAN.hostB4,
    String(FLOW_PORT),
  ]);
  await echo.waitForLog(/listening/, 5000);
  // The flow outlasts the faults: the last recovery needs datagrams after it.
  const flowSeconds = seconds + 4 * Object.values(BOUNDS).reduce((a, b) => Math.max(a, b)) / 1000 +
    60;
  const flow = await lab.spawn("hosta", "soak-flow", [
    PYTHON,
    "-c",
    FLOW,
    PLAN.hostB4,
    String(FLOW_PORT),
    String(RATE),
    String(flowSeconds),
  ]);
  await flow.waitForLog(/flowing/, 5000);
  await waitFor("the flow getting through", () => firstEchoAfter(flow.readLog(), t0), {
    timeoutMs: 20_000,
    intervalMs: 200,
  });
  say(`flow up: ${RATE} datagrams/s hosta -> hostb`);
  const results: FaultResult[] = [];
  const lisp = topo.lisp.map((p) => p.name);
  const crashed = new Set<string>();
  let round = 0;
  do {
    round++;
    for (const fault of FAULTS) {
      const leakedBefore = await leakedSoFar(lab);
      const startedAt = Date.now();
      const { endedAt, problems } = await inject(lab, topo, fault);
      const bound = BOUNDS[fault];
      let recovered: number | undefined;
      try {
        recovered = await waitFor(
          `the flow after ${fault}`,
          () => firstEchoAfter(flow.readLog(), endedAt),
          { timeoutMs: bound + 5_000, intervalMs: 100 },
        );
      } catch {
        recovered = undefined;
      }
      const recoveryMs = recovered === undefined ? null : Math.max(0, recovered - endedAt);
      const outageMs = recovered === undefined
        ? null
        : longestLoss(flow.readLog(), startedAt, recovered);
      if (recoveryMs === null) problems.push(`the flow did not come back`);
      else if (recoveryMs > bound) problems.push(`recovered in ${recoveryMs} ms > ${bound} ms`);
      const leaked = (await leakedSoFar(lab)) - leakedBefore;
      if (leaked > 0) problems.push(`${leaked} native packets with EID addresses in the router`);
      for (const name of lisp) {
        const p = lab.processes.get(name);
        if (p !== undefined && !p.alive()) {
          crashed.add(name);
          problems.push(
            `${name} exited: ${p.readLog().trimEnd().split("\n").slice(-3).join(" | ")}`,
          );
        }
      }
      const r: FaultResult = {
        fault,
        round,
        recoveryMs,
        outageMs,
        boundMs: bound,
        leaked,
        ok: problems.length === 0,
        problems,
      };
      results.push(r);
      say(
        `round ${round} ${fault.padEnd(8)} recovered in ${
          recoveryMs === null ? "-" : `${recoveryMs} ms`
        } (bound ${bound} ms; outage ${
          outageMs === null ? "-" : `${outageMs} ms`
        }), leaked ${leaked}${r.ok ? "" : `: ${problems.join("; ")}`}`,
      );
      // A crashed role is started again, so the next faults still mean something.
      if (crashed.size > 0) {
        const down = lisp.filter((n) => !(lab.processes.get(n)?.alive() ?? false));
        if (down.length > 0) await restartLisp(lab, topo, down).catch(() => {});
      }
    }
  } while ((Date.now() - t0) / 1000 < seconds);
  const { sent, echoed } = readFlow(flow.readLog());
  const summary: SoakSummary = {
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    faults: results,
    sent: sent.size,
    echoed: echoed.size,
    leaked: await leakedSoFar(lab),
    crashed: [...crashed],
    ok: results.every((r) => r.ok) && crashed.size === 0,
  };
  await lab.stop("soak-flow");
  await lab.stop("soak-echo");
  return summary;
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** The summary as text lines. */
export function formatSummary(s: SoakSummary): string[] {
  const lines = [
    `soak: ${s.seconds} s, ${s.faults.length} faults, ${s.sent} datagrams sent, ${s.echoed} echoed ` +
    `(${s.sent === 0 ? 0 : ((1 - s.echoed / s.sent) * 100).toFixed(1)}% lost, faults included)`,
  ];
  for (const f of FAULTS) {
    const rs = s.faults.filter((r) => r.fault === f);
    const times = rs.flatMap((r) => r.recoveryMs === null ? [] : [r.recoveryMs]);
    const outs = rs.flatMap((r) => r.outageMs === null ? [] : [r.outageMs]);
    lines.push(
      `  ${f.padEnd(8)} x${rs.length}: recovery median ${median(times) ?? "-"} ms, max ${
        times.length > 0 ? Math.max(...times) : "-"
      } ms (bound ${BOUNDS[f]} ms); outage median ${median(outs) ?? "-"} ms; leaked ${
        rs.reduce((a, r) => a + r.leaked, 0)
      }, failed ${rs.filter((r) => !r.ok).length}`,
    );
  }
  lines.push(
    `  native leaks in the router: ${s.leaked}; roles that exited: ${
      s.crashed.join(", ") || "none"
    }`,
  );
  lines.push(s.ok ? "soak: every check held" : "soak: FAILED");
  return lines;
}

/** Runs the soak; resolves to the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  let values: { minutes?: string; name?: string; keep?: boolean; json?: boolean; help?: boolean };
  try {
    values = parseArgs({
      args: [...args],
      options: {
        minutes: { type: "string" },
        name: { type: "string" },
        keep: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`soak: ${(e as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const minutes = Number(values.minutes ?? "1");
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) {
    console.error(`soak: --minutes must be a number above 0, at most 1440 (got ${values.minutes})`);
    return EXIT_USAGE;
  }
  if (!isRoot()) {
    console.error("soak: must run as root: it builds network namespaces (sudo deno task soak)");
    return EXIT_USAGE;
  }
  const name = values.name ?? "soak";
  const topo = makeTopology("basic", { rlocProbeInterval: 2 });
  const say = values.json === true ? () => {} : (l: string) => console.log(l);
  say(`soak: building lab ${name} (${topo.description}) for ${minutes * 60} s of faults`);
  let lab: Lab | undefined;
  try {
    const up = await upTopology(topo, { name, detach: values.keep === true, stopTimeoutMs: 5000 });
    lab = up.lab;
    const summary = await soak(lab, topo, minutes * 60, say);
    if (values.json === true) console.log(JSON.stringify(summary));
    else for (const l of formatSummary(summary)) console.log(l);
    return summary.ok ? 0 : 1;
  } catch (e) {
    if (!(e instanceof LabError)) throw e;
    console.error(`soak: ${e.message}`);
    return 1;
  } finally {
    if (lab !== undefined && values.keep !== true) await lab.down();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
