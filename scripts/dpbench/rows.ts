/**
 * The rows of `deno task bench:dataplane`, each set up on the same lab
 * (the `basic` topology of scripts/lab/topologies.ts: hosta - xtr1 -
 * router (+ ms) - xtr2 - hostb) and taken down again before the next:
 *
 * - `veth`: no tunnel; the router gets routes to both sites, xtr1 and xtr2
 *   just forward. The limit of this path on this machine.
 * - `vxlan`: the kernel's VXLAN (`vxk`, VNI 42, port 4789) between xtr1 and
 *   xtr2, the sites routed through it.
 * - `ours-lisp`, `ours-gpe`: `oor xtr` (main.ts) in xtr1 and xtr2 with the
 *   topology's generated oor.toml, LISP or VXLAN-GPE, registered with our
 *   ms and resolving through our mr (both started once, in the ms node),
 *   with the default data-plane Workers (one per core); `ours-lisp-1w` the
 *   same as `ours-lisp` with `[data-plane] workers = 1`; `ours-lisp-cpus`
 *   the same with `[data-plane] cpus`: xtr1's Workers on the first CPU this
 *   process may use, xtr2's on the second (as on two machines, each xTR
 *   has a core of its own; iperf3 and the kernel's work are not pinned).
 * - `oor13-lisp`, `oor13-gpe`: the real Open Overlay Router 1.3.0
 *   (`/usr/sbin/oor`, Debian's `openoverlayrouter`) as xTR in xtr1 and
 *   xtr2, with the same ms and mr (key-type 1, the only one OOR has; the
 *   whole lab uses it).
 *
 * RLOC probing is off everywhere, logs are quiet (debug 0). A row is
 * ready when both sites ping each other. Its teardown stops the xTRs
 * (SIGTERM), then removes whatever they left (rules, routes of their
 * tables, lispTun devices) and says what that was.
 *
 * @module
 */

import { type Lab, type LabProcess, sleep, waitFor } from "../lab/topology.ts";
import { lispArgv, makeTopology, PLAN, REPO_ROOT, type Topology } from "../lab/topologies.ts";
import type { RowSpec } from "./report.ts";
import { threadCpus } from "../../ffi/libc.ts";

/** The kernel VXLAN's inner addresses (a /30 no topology uses). */
const VXLAN_INNER = { xtr1: "172.31.255.1", xtr2: "172.31.255.2" } as const;

/** The `basic` topology as the benchmark runs it: no probing, debug 0, key-type 1. */
export function benchTopology(encapsulation: "LISP" | "VXLAN-GPE" = "LISP"): Topology {
  const t = makeTopology("basic", { encapsulation, rlocProbeInterval: 0, debug: 0 });
  return {
    ...t,
    lisp: t.lisp.map((p) => ({
      ...p,
      config: p.config.replaceAll("key-type = 2", "key-type = 1"),
    })),
  };
}

/** A row while it is set up. */
export interface RowRun {
  /** The xTR processes, when the xTRs are processes. */
  readonly xtrPids: { readonly xtr1?: number; readonly xtr2?: number };
  /** Our xTRs' non-zero drop and error counters, by node (ours only). */
  drops(): Promise<Record<string, Record<string, number>>>;
  /** Takes the row down; returns what had to be cleaned up after the xTRs, if anything. */
  stop(): Promise<string[]>;
}

/** Starts the map-server and map-resolver of the lab (for the rows with xTRs). */
export async function startMappingSystem(lab: Lab): Promise<LabProcess[]> {
  const topo = benchTopology();
  const out: LabProcess[] = [];
  for (const p of topo.lisp.filter((p) => p.role === "ms" || p.role === "mr")) {
    const path = await lab.writeFile(`${p.name}.toml`, p.config);
    out.push(await lab.spawn(p.node, p.name, lispArgv(path, p.role), { cwd: REPO_ROOT }));
  }
  await Promise.all(out.map((p) => p.waitForLog(/ started( |$)/m, 20_000)));
  return out;
}

/** Pings until one round trip works, both ways between the hosts. */
export async function bothWaysWork(lab: Lab, timeoutMs: number): Promise<void> {
  for (const [from, to] of [["hosta", PLAN.hostB4], ["hostb", PLAN.hostA4]] as const) {
    await waitFor(
      `${from} reaching ${to}`,
      () => lab.ping(from, to, { count: 1, waitS: 1 }),
      { timeoutMs, intervalMs: 200 },
    );
  }
}

/** Sets up `row` on the lab and waits until both sites reach each other. */
export async function setUpRow(lab: Lab, row: RowSpec, readyTimeoutMs = 40_000): Promise<RowRun> {
  // A path MTU learnt in an earlier row must not shape this one.
  for (const host of ["hosta", "hostb"]) await lab.execOk(host, ["ip", "route", "flush", "cache"]);
  let run: RowRun;
  switch (row.kind) {
    case "veth":
      run = await plainRouting(lab);
      break;
    case "vxlan":
      run = await kernelVxlan(lab);
      break;
    case "ours":
      run = await oursXtrs(
        lab,
        row.id,
        row.encapsulation,
        "workers" in row ? row.workers : undefined,
        "pinned" in row && row.pinned,
      );
      break;
    case "oor13":
      run = await oor13Xtrs(lab, row.id, row.encapsulation);
      break;
  }
  try {
    await bothWaysWork(lab, readyTimeoutMs);
  } catch (e) {
    await run.stop().catch(() => {});
    throw e;
  }
  return run;
}

const noDrops = () => Promise.resolve({});

async function plainRouting(lab: Lab): Promise<RowRun> {
  const routes = [[PLAN.site1Eid4, PLAN.xtr1Rloc4], [PLAN.site2Eid4, PLAN.xtr2Rloc4]] as const;
  for (const [to, via] of routes) {
    await lab.execOk("router", ["ip", "route", "replace", to, "via", via]);
  }
  return {
    xtrPids: {},
    drops: noDrops,
    async stop() {
      for (const [to] of routes) await lab.exec("router", ["ip", "route", "del", to]);
      return [];
    },
  };
}

async function kernelVxlan(lab: Lab): Promise<RowRun> {
  const sides = [
    ["xtr1", PLAN.xtr1Rloc4, PLAN.xtr2Rloc4, VXLAN_INNER.xtr1, VXLAN_INNER.xtr2, PLAN.site2Eid4],
    ["xtr2", PLAN.xtr2Rloc4, PLAN.xtr1Rloc4, VXLAN_INNER.xtr2, VXLAN_INNER.xtr1, PLAN.site1Eid4],
  ] as const;
  for (const [node, local, remote, inner, peer, site] of sides) {
    const batch = [
      `link add vxk type vxlan id 42 local ${local} remote ${remote} dstport 4789 dev rloc0`,
      `addr add ${inner}/30 dev vxk`,
      `link set vxk up`,
      `route replace ${site} via ${peer} dev vxk`,
    ];
    await lab.execOk(node, ["ip", "-batch", "-"], { stdin: batch.join("\n") + "\n" });
  }
  return {
    xtrPids: {},
    drops: noDrops,
    async stop() {
      for (const [node] of sides) await lab.exec(node, ["ip", "link", "del", "vxk"]);
      return [];
    },
  };
}

async function oursXtrs(
  lab: Lab,
  rowId: string,
  encapsulation: "LISP" | "VXLAN-GPE",
  workers?: number,
  pinned = false,
): Promise<RowRun> {
  // Pinned: xtr1 on the first CPU we may use, xtr2 on the second (the first again on one core).
  const cpus = pinned ? threadCpus() : [];
  const specs = benchTopology(encapsulation).lisp.filter((p) => p.role === "xtr").map((p, k) => {
    const keys = [
      ...(workers !== undefined ? [`workers = ${workers}`] : []),
      ...(pinned ? [`cpus = [${cpus[k % cpus.length]}]`] : []),
    ];
    return keys.length === 0
      ? p
      : { ...p, config: `${p.config}\n[data-plane]\n${keys.join("\n")}\n` };
  });
  const procs: LabProcess[] = [];
  const stop = async () => {
    const left: string[] = [];
    for (const p of procs) {
      await p.stop(8000);
      left.push(...await cleanXtr(lab, p.node));
    }
    return left;
  };
  try {
    for (const p of specs) {
      const name = `${p.name}-${rowId}`;
      const path = await lab.writeFile(`${name}.toml`, p.config);
      procs.push(await lab.spawn(p.node, name, lispArgv(path, "xtr"), { cwd: REPO_ROOT }));
    }
    await Promise.all(procs.map((p) => p.waitForLog(/ started( |$)/m, 20_000)));
    await Promise.all(procs.map((p) => p.waitForLog(/ registered /, 20_000)));
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return {
    xtrPids: { xtr1: procs[0]!.pid, xtr2: procs[1]!.pid },
    async drops() {
      const out: Record<string, Record<string, number>> = {};
      for (const p of procs) out[p.node] = await dropCounters(lab, p.node);
      return out;
    },
    stop,
  };
}

/** The configuration file (libconfuse) of an OOR 1.3.0 xTR of the bench lab. */
export function oor13XtrConfig(site: 1 | 2, encapsulation: "LISP" | "VXLAN-GPE"): string {
  return [
    "debug = 0",
    "operating-mode = xTR",
    `encapsulation = ${encapsulation}`,
    "map-request-retries = 2",
    "nat_traversal_support = off",
    `map-resolver = { ${PLAN.mr4} }`,
    "map-server {",
    `    address = ${PLAN.ms4}`,
    "    key-type = 1",
    `    key = ${site === 1 ? PLAN.site1Key : PLAN.site2Key}`,
    "    proxy-reply = off",
    "}",
    "rloc-probing {",
    "    rloc-probe-interval = 0",
    "    rloc-probe-retries = 0",
    "    rloc-probe-retries-interval = 1",
    "}",
    "database-mapping {",
    `    eid-prefix = ${site === 1 ? PLAN.site1Eid4 : PLAN.site2Eid4}`,
    "    iid = 0",
    "    ttl = 10",
    "    rloc-iface {",
    "        interface = rloc0",
    "        ip_version = 4",
    "        priority = 1",
    "        weight = 100",
    "    }",
    "}",
    "",
  ].join("\n");
}

async function oor13Xtrs(
  lab: Lab,
  rowId: string,
  encapsulation: "LISP" | "VXLAN-GPE",
): Promise<RowRun> {
  const procs: LabProcess[] = [];
  const stop = async () => {
    const left: string[] = [];
    for (const p of procs) {
      await p.stop(8000);
      left.push(...await cleanXtr(lab, p.node));
    }
    return left;
  };
  try {
    for (const site of [1, 2] as const) {
      const name = `oor13-xtr${site}-${rowId}`;
      // OOR writes its xTR-ID file next to its configuration: a folder of its own.
      await Deno.mkdir(lab.path(name), { recursive: true });
      const path = await lab.writeFile(`${name}/oor.conf`, oor13XtrConfig(site, encapsulation));
      // stdbuf: OOR prints with printf and never flushes.
      procs.push(
        await lab.spawn(`xtr${site}`, name, ["stdbuf", "-oL", "-eL", "oor", "-f", path], {
          cwd: lab.path(name),
        }),
      );
    }
    await Promise.all(procs.map((p) => p.waitForLog(/Open Overlay Router .*started/, 20_000)));
    await sleep(500);
    for (const p of procs) {
      if (!p.alive()) throw new Error(`${p.name} exited: ${p.readLog().slice(-2000)}`);
    }
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return { xtrPids: { xtr1: procs[0]!.pid, xtr2: procs[1]!.pid }, drops: noDrops, stop };
}

/** Non-zero data-plane drop and error counters of our xTR in `node` (its API's /metrics). */
async function dropCounters(lab: Lab, node: string): Promise<Record<string, number>> {
  const r = await lab.exec(node, [
    "curl",
    "-sf",
    "--max-time",
    "3",
    "http://127.0.0.1:9942/metrics",
  ]);
  const out: Record<string, number> = {};
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("oor_dataplane_") || !/drop|error/.test(line)) continue;
    const sp = line.lastIndexOf(" ");
    const v = Number(line.slice(sp + 1));
    if (v > 0) out[line.slice("oor_dataplane_".length, sp)] = v;
  }
  return out;
}

/** Rule priorities the kernel starts with. */
const KERNEL_RULES = new Set([0, 32766, 32767]);

/**
 * Removes what an xTR left in `node`: policy rules other than the kernel's,
 * routes in tables other than main/local/default, unreachable routes, and
 * lispTun devices. Returns a line per kind of thing removed.
 */
export async function cleanXtr(lab: Lab, node: string): Promise<string[]> {
  const left: string[] = [];
  const json = async (args: string[]) => {
    const text = await lab.execOk(node, ["ip", "-j", ...args]);
    return (text.trim() === "" ? [] : JSON.parse(text)) as Record<string, unknown>[];
  };
  for (const family of ["-4", "-6"]) {
    const rules = (await json([family, "rule"])).filter((r) =>
      !KERNEL_RULES.has(Number(r["priority"]))
    );
    for (const r of rules) {
      await lab.exec(node, ["ip", family, "rule", "del", "priority", String(r["priority"])]);
    }
    if (rules.length > 0) left.push(`${node}: ${rules.length} ip ${family} rules`);
    const routes = await json([family, "route", "show", "table", "all"]);
    const tables = new Set<string>();
    let unreachable = 0;
    for (const r of routes) {
      const t = String(r["table"] ?? "main");
      if (!["main", "local", "default", "254", "255", "253"].includes(t)) tables.add(t);
      else if (t === "main" && r["type"] === "unreachable") {
        unreachable++;
        await lab.exec(node, ["ip", family, "route", "del", "unreachable", String(r["dst"])]);
      }
    }
    for (const t of tables) await lab.exec(node, ["ip", family, "route", "flush", "table", t]);
    if (tables.size > 0) left.push(`${node}: ip ${family} routes in tables ${[...tables]}`);
    if (unreachable > 0) left.push(`${node}: ${unreachable} ip ${family} unreachable routes`);
  }
  const tuns = (await json(["link"])).map((l) => String(l["ifname"])).filter((n) =>
    n.startsWith("lispTun")
  );
  for (const t of tuns) await lab.exec(node, ["ip", "link", "del", t]);
  if (tuns.length > 0) left.push(`${node}: devices ${tuns.join(", ")}`);
  return left;
}
