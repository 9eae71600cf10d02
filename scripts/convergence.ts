/**
 * `deno task convergence`: how fast a correspondent's data plane follows a
 * change of a remote mapping, with publish/subscribe (RFC 9437: xtr2 has
 * `subscribe = true`, our ms publishes) against SMRs only (the default).
 *
 * Two cases, each in its own lab, each run once per mode:
 *
 * - `mn`: the `mn` lab's mobile node moves: a new address on its rloc0,
 *   the old one removed (the way tests/e2e/mn_move_test.ts moves it),
 *   while hostb pings the mobile node's EID every 2 ms. Measured: from the
 *   moment the old address is gone (`date` in the same shell, right after
 *   `ip addr del`; from then on packets to the old RLOC are lost) to the
 *   first packet xtr2 encapsulates to the new RLOC, seen by tcpdump on the
 *   router's link to the mobile node (`-tt`, one clock: all namespaces
 *   share the host's).
 * - `multihoming`: xtr1's primary RLOC (rloc0) loses its address, so it
 *   registers its backup (rloc1) alone; hosta is pinged from hostb every
 *   2 ms. Measured: from the removal (`date` right after it) to xtr2's first packet to the backup
 *   RLOC, seen on the router's link to it. The address is put back and the
 *   next round waits until xtr2 sends to rloc0 again.
 *
 * Each case moves `--moves` times (default 10) and prints the median and
 * worst time per mode, and the ratio of the medians. Every wait is
 * bounded; the labs (`conv-<case>-<mode>`) are torn down at the end, also
 * on failure. Needs root, tcpdump and ping. The machine is shared: figures
 * taken while others work are noisy; the two modes of a case run back to
 * back, so compare them with each other.
 *
 * Usage: deno task convergence [--moves N] [--case mn|multihoming|all] [--json]
 * [--logs DIR] (DIR: where the LISP processes' logs are copied before teardown)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Lab, requireRoot, sleep } from "./lab/topology.ts";
import { makeTopology, PLAN, startLisp, type Topology, upTopology } from "./lab/topologies.ts";

/** One measured change. */
interface Sample {
  readonly ms: number;
}

/** What a case does and where it looks. */
interface Case {
  readonly name: "mn" | "multihoming";
  readonly topology: string;
  /** The flow that keeps xtr2's data plane busy: from hostb to this EID. */
  readonly target: string;
  /** Sets round `i` up; returns the change as a shell script and where to look. */
  prepare(
    lab: Lab,
    i: number,
  ): Promise<{ script: string; node: string; iface: string; dst: string }>;
  /**
   * After round `i`: back to a state the next round can start from; true
   * when the correspondent did not come back by itself (it was restarted).
   */
  settle(lab: Lab, i: number, topo: Topology): Promise<boolean>;
}

const FLOW_INTERVAL_S = "0.002";
/** Pings in the flow at most: 200 s at 2 ms. */
const FLOW_COUNT = "100000";
/** The longest a change may take before the round is counted as lost, ms. */
const ROUND_TIMEOUT_MS = 15_000;

/** Waits for `pattern` in a file (a lab process's log), polling; false after `timeoutMs`. */
async function waitForFile(
  path: string,
  pattern: RegExp,
  timeoutMs: number,
): Promise<string | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch {
      // not there yet
    }
    const m = pattern.exec(text);
    if (m !== null) return m[0];
    if (Date.now() > end) return undefined;
    await sleep(5);
  }
}

/** The mobile node's address in round `i` (0: the lab's own). */
function mnAddress(i: number): string {
  return i === 0 ? PLAN.mnRloc4 : `100.64.1.${10 + i}`;
}

const MN: Case = {
  name: "mn",
  topology: "mn",
  target: PLAN.mnEid4,
  prepare(_lab, i) {
    const from = mnAddress(i - 1);
    const to = mnAddress(i);
    return Promise.resolve({
      script: [
        "sysctl -q -w net.ipv4.conf.rloc0.promote_secondaries=1",
        `ip addr add ${to}/24 dev rloc0`,
        `ip addr del ${from}/24 dev rloc0`,
        "date +%s.%N",
        `ip route replace 100.64.0.0/10 via ${PLAN.routerXtr1}`,
        `ip route replace default via ${PLAN.routerXtr1}`,
      ].join(" && "),
      node: "mn",
      iface: "to-mn",
      dst: to,
    });
  },
  async settle(lab, i) {
    // Registered from the new address, and the flow answered again.
    const log = lab.path("mn.log");
    await waitForFile(
      log,
      new RegExp(`registered .*rlocs=${mnAddress(i).replaceAll(".", "\\.")}\\b`),
      10_000,
    );
    await sleep(1000);
    return false;
  },
};

const MULTIHOMING: Case = {
  name: "multihoming",
  topology: "multihoming",
  target: PLAN.hostA4,
  prepare() {
    return Promise.resolve({
      script: [`ip addr del ${PLAN.xtr1Rloc4}/24 dev rloc0`, "date +%s.%N"].join(" && "),
      node: "xtr1",
      iface: "to-xtr1b",
      dst: PLAN.xtr1Rloc4b,
    });
  },
  async settle(lab, i, topo) {
    await lab.execOk("xtr1", ["ip", "addr", "add", `${PLAN.xtr1Rloc4}/24`, "dev", "rloc0"]);
    await lab.applyRoutes("xtr1");
    // Back on the primary: xtr2 sends to rloc0 again. Not within 4 s: stuck on
    // the backup (an SMR answered from the old registration); xtr2 is
    // restarted so the next round starts clean, and the round says so.
    let stuck = false;
    if (await firstPacket(lab, `back-${i}`, "to-xtr1", PLAN.xtr1Rloc4, 4000) === undefined) {
      stuck = true;
      await lab.stop("xtr2");
      await startLisp(lab, topo, { only: ["xtr2"] });
      await waitForFile(lab.path("xtr2.log"), / registered /, 30_000);
      await firstPacket(lab, `back2-${i}`, "to-xtr1", PLAN.xtr1Rloc4, ROUND_TIMEOUT_MS);
    }
    // And nothing to rloc1 for 1.5 s.
    for (let k = 0; k < 10; k++) {
      const stray = await firstPacket(lab, `quiet-${i}-${k}`, "to-xtr1b", PLAN.xtr1Rloc4b, 1500);
      if (stray === undefined) return stuck;
    }
    throw new Error("xtr2 keeps sending to the backup RLOC after the primary came back");
  },
};

/** Starts tcpdump for the first LISP data packet to `dst` on the router's `iface`. */
async function capture(lab: Lab, name: string, iface: string, dst: string): Promise<string> {
  const p = await lab.spawn("router", name, [
    "timeout",
    String(ROUND_TIMEOUT_MS / 1000 + 5),
    "tcpdump",
    "-i",
    iface,
    "-n",
    "-tt",
    "-l",
    "-c",
    "1",
    `udp dst port 4341 and dst host ${dst}`,
  ]);
  if (await waitForFile(p.log, /listening on/, 5000) === undefined) {
    throw new Error(`tcpdump on router/${iface} did not start`);
  }
  return p.log;
}

/** The epoch time (ms) of the first packet the capture in `log` saw, or undefined. */
async function captured(log: string, timeoutMs: number): Promise<number | undefined> {
  const line = await waitForFile(log, /^\d+\.\d+ IP /m, timeoutMs);
  return line === undefined ? undefined : Number(line.split(" ")[0]) * 1000;
}

/** Waits for the first packet to `dst` on `iface` (a fresh capture). */
async function firstPacket(lab: Lab, name: string, iface: string, dst: string, timeoutMs: number) {
  const log = await capture(lab, `cap-${name}`, iface, dst);
  return await captured(log, timeoutMs);
}

/** xtr2's config with `subscribe = true` after its map-resolver line. */
function subscribing(topo: Topology): Topology {
  return {
    ...topo,
    lisp: topo.lisp.map((p) =>
      p.name === "xtr2"
        ? {
          ...p,
          config: p.config.replace(/^map-resolver = .*$/m, (l) => `${l}\nsubscribe = true`),
        }
        : p
    ),
  };
}

/** One case in one mode: `moves` changes, each measured. */
async function runCase(
  c: Case,
  subscribe: boolean,
  moves: number,
  log: (s: string) => void,
  keepLogs?: string,
) {
  const base = makeTopology(c.topology, { rlocProbeInterval: c.name === "multihoming" ? 2 : 5 });
  const topo = subscribe ? subscribing(base) : base;
  const labName = `conv-${c.name === "mn" ? "mn" : "mh"}-${subscribe ? "sub" : "smr"}`;
  // A fresh directory: no registrations an earlier run's ms saved.
  const dir = await Deno.makeTempDir({ prefix: `oor-${labName}-` });
  const { lab } = await upTopology(topo, { name: labName, dir });
  const samples: Sample[] = [];
  let lost = 0;
  let stuck = 0;
  try {
    // Everything registered (an early miss would cache a negative answer), then
    // xtr2 gets the target's mapping.
    for (const p of topo.lisp.filter((x) => x.role !== "ms" && x.role !== "mr")) {
      if (await waitForFile(lab.path(`${p.name}.log`), / registered /, 30_000) === undefined) {
        throw new Error(`${p.name} did not register in 30 s`);
      }
    }
    const end = Date.now() + 30_000;
    while (!(await lab.ping("hostb", c.target, { count: 1, waitS: 1 }))) {
      if (Date.now() > end) throw new Error(`no ping from hostb to ${c.target} in 30 s`);
    }
    await lab.spawn("hostb", "flow", [
      "ping",
      "-n",
      "-q",
      "-i",
      FLOW_INTERVAL_S,
      "-c",
      FLOW_COUNT,
      "-W",
      "1",
      c.target,
    ]);
    await sleep(500);
    for (let i = 1; i <= moves; i++) {
      const r = await c.prepare(lab, i);
      const capLog = await capture(lab, `cap-${i}`, r.iface, r.dst);
      const out = await lab.sh(r.node, r.script, { timeoutMs: 10_000 });
      if (out.code !== 0) throw new Error(`the change failed: ${out.stderr}`);
      const t0 = Number(out.stdout.trim().split("\n")[0]) * 1000;
      const t1 = await captured(capLog, ROUND_TIMEOUT_MS);
      if (t1 === undefined) {
        lost++;
        log(`  ${labName} move ${i}: no packet to ${r.dst} within ${ROUND_TIMEOUT_MS} ms`);
      } else {
        samples.push({ ms: t1 - t0 });
        log(
          `  ${labName} move ${i}: ${(t1 - t0).toFixed(1)} ms (from ${new Date(t0).toISOString()})`,
        );
      }
      if (await c.settle(lab, i, topo)) {
        stuck++;
        log(`  ${labName} after move ${i}: xtr2 stayed on the new RLOC when the old came back`);
      }
    }
  } finally {
    if (keepLogs !== undefined) {
      await Deno.mkdir(`${keepLogs}/${labName}`, { recursive: true });
      for (const p of topo.lisp) {
        await Deno.copyFile(lab.path(`${p.name}.log`), `${keepLogs}/${labName}/${p.name}.log`)
          .catch(() => {});
      }
    }
    await lab.down();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { samples, lost, stuck };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs the cases and prints the table (or JSON). */
export async function main(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      moves: { type: "string", default: "10" },
      case: { type: "string", default: "all" },
      json: { type: "boolean", default: false },
      logs: { type: "string" },
    },
  });
  requireRoot("the convergence labs");
  const moves = Math.max(1, Math.min(50, Number(values.moves)));
  const cases = [MN, MULTIHOMING].filter((c) => values.case === "all" || values.case === c.name);
  const log = (s: string) => console.error(s);
  const rows: Record<string, unknown>[] = [];
  for (const c of cases) {
    const row: Record<string, unknown> = { case: c.name };
    for (const subscribe of [true, false]) {
      const mode = subscribe ? "subscribe" : "smr";
      log(`${c.name}, ${mode}: ${moves} changes`);
      const { samples, lost, stuck } = await runCase(c, subscribe, moves, log, values.logs);
      const ms = samples.map((s) => s.ms);
      row[mode] = {
        median: median(ms),
        worst: ms.length > 0 ? Math.max(...ms) : NaN,
        lost,
        stuck,
        samples: ms.map((x) => Math.round(x * 10) / 10),
      };
    }
    rows.push(row);
  }
  if (values.json === true) {
    console.log(JSON.stringify(rows, null, 2));
    return 0;
  }
  const f = (x: number) => Number.isNaN(x) ? "-" : `${x.toFixed(1)} ms`;
  console.log("case          mode        median      worst       lost  stuck");
  for (const r of rows) {
    for (const mode of ["subscribe", "smr"]) {
      const m = r[mode] as { median: number; worst: number; lost: number; stuck: number };
      console.log(
        `${String(r.case).padEnd(14)}${mode.padEnd(12)}${f(m.median).padEnd(12)}${
          f(m.worst).padEnd(12)
        }${String(m.lost).padEnd(6)}${m.stuck}`,
      );
    }
    const s = r.subscribe as { median: number };
    const smr = r.smr as { median: number };
    console.log(
      `${String(r.case).padEnd(14)}ratio       smr/subscribe medians: ${
        (smr.median / s.median).toFixed(1)
      }x`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
