/**
 * `deno task lab`: LISP labs in network namespaces on this machine.
 *
 * ```
 * deno task lab up <topology> [--name NAME] [--dir DIR] [--encapsulation LISP|VXLAN-GPE]
 *                             [--probe-interval S] [--debug N] [--no-start]
 * deno task lab down <lab>... | --all     --all: every lab on this host, anyone's
 * deno task lab status [<lab>...] [--json]   draws each lab: nodes, links, addresses
 * deno task lab exec <lab> <node> -- <command> [args...]
 * deno task lab topologies               the topologies and their nodes
 * deno task lab config <topology> [<process>]   print generated oor.toml files
 * ```
 *
 * A lab is named after its topology unless `--name` says otherwise; its
 * namespaces are `oor-<lab>-<node>`, its configs and logs in `--dir`
 * (default `/tmp/oor-lab/<lab>/`). `up` on a lab that exists rebuilds it.
 * `up`, `down`, `status` and `exec` need root and exit 2 without it.
 *
 * @module
 */

import $ from "dax-sh";
import { parseArgs } from "node:util";
import {
  DEFAULT_LAB_ROOT,
  isRoot,
  LabError,
  labNamespaces,
  labStatus,
  listNamespaces,
  namespaceName,
  NotRootError,
  readAllStates,
  teardownLab,
} from "./lab/topology.ts";
import { drawNetwork, readNetwork } from "./lab/draw.ts";
import {
  isTopologyName,
  makeTopology,
  TOPOLOGY_DESCRIPTIONS,
  TOPOLOGY_NAMES,
  type TopologyOptions,
  upTopology,
} from "./lab/topologies.ts";

const EXIT_USAGE = 2;

const USAGE = `Usage: deno task lab <command> ...

Commands:
  up <topology> [--name NAME] [--dir DIR] [--encapsulation LISP|VXLAN-GPE]
                [--probe-interval S] [--debug N] [--no-start]
                          build a lab (rebuilding it if it exists) and start its LISP processes
  down <lab>... | --all   tear labs down: those named, or with --all every lab on
                          this host (other users' too)
  status [<lab>...] [--json]
                          draw each lab (nodes, links, addresses as they are now),
                          its processes and log files
  exec <lab> <node> -- <command> [args...]
                          run a command inside a node's namespace
  topologies              list the topologies and their nodes
  config <topology> [<process>]
                          print the generated oor.toml files

Topologies: ${TOPOLOGY_NAMES.join(", ")}
Labs live in namespaces oor-<lab>-<node>; files in ${DEFAULT_LAB_ROOT}/<lab>/ unless --dir.
up, down, status and exec need root.
`;

class UsageError extends Error {}

function out(line = ""): void {
  console.log(line);
}

function topologyOptions(values: Record<string, string | boolean | undefined>): TopologyOptions {
  const o: { -readonly [K in keyof TopologyOptions]: TopologyOptions[K] } = {};
  const encap = values["encapsulation"];
  if (typeof encap === "string") {
    const e = encap.toUpperCase();
    if (e !== "LISP" && e !== "VXLAN-GPE") {
      throw new UsageError(`--encapsulation must be LISP or VXLAN-GPE (got "${encap}")`);
    }
    o.encapsulation = e;
  }
  const int = (name: string, max: number): number | undefined => {
    const v = values[name];
    if (typeof v !== "string") return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new UsageError(`--${name} must be an integer from 0 to ${max} (got "${v}")`);
    }
    return n;
  };
  const probe = int("probe-interval", 3600);
  if (probe !== undefined) o.rlocProbeInterval = probe;
  const debug = int("debug", 3);
  if (debug !== undefined) o.debug = debug;
  return o;
}

async function cmdUp(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      name: { type: "string" },
      dir: { type: "string" },
      encapsulation: { type: "string" },
      "probe-interval": { type: "string" },
      debug: { type: "string" },
      "no-start": { type: "boolean" },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError("up takes one topology");
  const name = positionals[0]!;
  if (!isTopologyName(name)) {
    throw new UsageError(`no topology "${name}" (have: ${TOPOLOGY_NAMES.join(", ")})`);
  }
  const topo = makeTopology(name, topologyOptions(values));
  const labName = values.name ?? name;
  const t0 = performance.now();
  const { lab, started, skipped } = await upTopology(topo, {
    name: labName,
    ...(values.dir !== undefined ? { dir: values.dir } : {}),
    detach: true,
    noStart: values["no-start"] === true,
    log: (line) => out(line),
  });
  out(`lab ${lab.name} (${topo.description}) is up in ${Math.round(performance.now() - t0)} ms`);
  out();
  out("nodes:");
  for (const n of topo.nodes) {
    const addrs: string[] = [];
    for (const l of topo.links) {
      for (const end of [l.a, l.b]) {
        if (end.node === n.name) addrs.push(`${end.iface} ${(end.addresses ?? []).join(" ")}`);
      }
    }
    out(`  ${n.name.padEnd(9)} ${lab.ns(n.name).padEnd(22)} ${addrs.join(", ")}`);
  }
  out();
  out(`files in ${lab.dir}:`);
  for (const p of topo.lisp) {
    const running = started.find((s) => s.name === p.name);
    const state = running !== undefined
      ? `running, pid ${running.pid}`
      : `not started: ${skipped.find((s) => s.spec.name === p.name)?.reason ?? "?"}`;
    out(`  ${p.name}.toml  ${p.role} in ${p.node} at ${p.controlAddress} (${state})`);
    if (running !== undefined) out(`  ${p.name}.log   its output`);
  }
  out();
  // deno is not on the PATH after npm ci; npm run lab finds it.
  out("try (from the repository, as root):");
  const q = topo.staticLookup;
  out(
    `  npm run lab -- exec ${lab.name} ${q.from} -- ./node_modules/.bin/deno run -A main.ts ` +
      `lig ${q.eid} --mr ${q.mr}`,
  );
  out(`  npm run lab -- exec ${lab.name} ${q.from} -- ip addr`);
  out(`  npm run lab -- status ${lab.name}`);
  out(`  npm run lab -- down ${lab.name}`);
  return 0;
}

/** Every lab on this host: state files and namespaces. */
async function allLabs(): Promise<string[]> {
  const found = new Set<string>([
    ...readAllStates().map((s) => s.lab),
    ...(await labNamespaces()).map((n) => n.lab),
  ]);
  return [...found].sort();
}

async function cmdDown(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { all: { type: "boolean" } },
    allowPositionals: true,
  });
  let labs = positionals;
  if (values.all === true && labs.length > 0) {
    throw new UsageError("down takes lab names or --all, not both");
  }
  if (labs.length === 0 && values.all !== true) {
    // Labs are shared by everyone on the host: tearing them all down must be asked for.
    const there = await allLabs();
    throw new UsageError(
      "down takes the name of the lab to tear down, or --all for every lab on this host " +
        `(other users' too); labs here: ${there.length > 0 ? there.join(", ") : "none"}`,
    );
  }
  if (values.all === true) {
    labs = await allLabs();
    if (labs.length === 0) {
      out("no labs to tear down");
      return 0;
    }
  }
  for (const lab of labs) {
    const r = await teardownLab(lab);
    const killed = r.killed.length > 0 ? ` (SIGKILL: ${r.killed.join(", ")})` : "";
    out(
      `lab ${lab}: ${r.namespaces.length} namespaces removed, ` +
        `${r.stopped.length} processes stopped${killed}`,
    );
  }
  return 0;
}

async function cmdStatus(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean" } },
    allowPositionals: true,
  });
  const every = await labStatus();
  const labs = positionals.length === 0 ? every : every.filter((l) => positionals.includes(l.lab));
  const missing = positionals.filter((p) => !every.some((l) => l.lab === p));
  if (missing.length > 0) {
    throw new LabError(
      `no lab ${missing.join(", ")} (labs here: ${every.map((l) => l.lab).join(", ") || "none"})`,
    );
  }
  const networks = new Map<string, Awaited<ReturnType<typeof readNetwork>>>();
  for (const l of labs) networks.set(l.lab, await readNetwork(l.lab));
  if (values.json === true) {
    out(JSON.stringify(labs.map((l) => ({ ...l, network: networks.get(l.lab) })), null, 2));
    return 0;
  }
  if (labs.length === 0) {
    out("no labs");
    return 0;
  }
  for (const l of labs) {
    const topo = l.topology !== undefined ? `topology ${l.topology}` : "no state file";
    out(`lab ${l.lab} (${topo}${l.dir !== undefined ? `, files in ${l.dir}` : ""})`);
    // The network as it is: each node's processes after its name.
    const notes = new Map<string, string>();
    for (const p of l.processes) {
      if (p.name === undefined) continue;
      const note = `${p.name}: ${p.alive ? "running" : "exited"}`;
      const before = notes.get(p.node);
      notes.set(p.node, before === undefined ? note : `${before}; ${note}`);
    }
    for (const [node, note] of notes) notes.set(node, `[${note}]`);
    const drawing = drawNetwork(networks.get(l.lab) ?? { nodes: [], links: [] }, notes);
    if (drawing.length === 0) out("  network: no namespaces");
    for (const line of drawing) out(`  ${line}`);
    out(`  namespaces: ${l.namespaces.length > 0 ? l.namespaces.join(" ") : "none"}`);
    if (l.processes.length === 0) out("  processes: none");
    else out("  processes:");
    for (const p of l.processes) {
      out(
        `    ${(p.name ?? "-").padEnd(9)} ${p.node.padEnd(9)} pid ${String(p.pid).padEnd(7)} ` +
          `${p.alive ? "running" : "exited "}  ${p.command}`,
      );
    }
    if (l.logs.length > 0) out("  logs:");
    for (const f of l.logs) out(`    ${f.path} (${f.bytes} bytes)`);
  }
  return 0;
}

async function cmdExec(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const head = dash >= 0 ? args.slice(0, dash) : args.slice(0, 2);
  const argv = dash >= 0 ? args.slice(dash + 1) : args.slice(2);
  if (head.length !== 2 || argv.length === 0) {
    throw new UsageError("exec takes <lab> <node> -- <command> [args...]");
  }
  const [lab, node] = head as [string, string];
  const ns = namespaceName(lab, node);
  if (!(await listNamespaces()).includes(ns)) {
    const nodes = (await labNamespaces(lab)).map((n) => n.node);
    throw new LabError(
      nodes.length > 0
        ? `lab ${lab} has no node "${node}" (nodes: ${nodes.join(", ")})`
        : `no lab "${lab}" is up (deno task lab status)`,
    );
  }
  const r = await $`ip netns exec ${ns} ${argv}`.stdin("inherit").noThrow();
  return r.code;
}

function cmdTopologies(): number {
  for (const name of TOPOLOGY_NAMES) {
    const t = makeTopology(name);
    out(`${name}: ${TOPOLOGY_DESCRIPTIONS[name]}`);
    out(`  nodes: ${t.nodes.map((n) => n.name).join(", ")}`);
    out(`  lisp:  ${t.lisp.map((p) => `${p.name} (${p.role} at ${p.controlAddress})`).join(", ")}`);
  }
  return 0;
}

function cmdConfig(args: string[]): number {
  const { positionals } = parseArgs({ args, options: {}, allowPositionals: true });
  const [name, proc] = positionals;
  if (name === undefined || positionals.length > 2) {
    throw new UsageError("config takes <topology> [<process>]");
  }
  const t = makeTopology(name);
  const procs = t.lisp.filter((p) => proc === undefined || p.name === proc);
  if (procs.length === 0) {
    throw new UsageError(
      `topology ${name} has no process "${proc}" (have: ${t.lisp.map((p) => p.name).join(", ")})`,
    );
  }
  for (const p of procs) {
    if (procs.length > 1) out(`# ----- ${p.name}.toml (${p.role} in node ${p.node})`);
    out(p.config);
  }
  return 0;
}

/** Runs the lab CLI; resolves to the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "up":
      case "down":
      case "status":
      case "exec":
        if (!isRoot()) throw new NotRootError(`lab ${command}`);
        if (command === "up") return await cmdUp(rest);
        if (command === "down") return await cmdDown(rest);
        if (command === "status") return await cmdStatus(rest);
        return await cmdExec(rest);
      case "topologies":
        return cmdTopologies();
      case "config":
        return cmdConfig(rest);
      case undefined:
      case "-h":
      case "--help":
      case "help":
        (command === undefined ? console.error : console.log)(USAGE);
        return command === undefined ? EXIT_USAGE : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof NotRootError) {
      console.error(`lab: ${e.message}`);
      return EXIT_USAGE;
    }
    if (e instanceof UsageError || (e instanceof TypeError && "code" in e)) {
      console.error(`lab: ${e.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    if (e instanceof LabError) {
      console.error(`lab: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
