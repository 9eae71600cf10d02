/**
 * `deno run -A scripts/bench_mr.ts`: how many Map-Requests a map-resolver
 * passes on a second, `mr` (to its `[[map-server]]`) and `ddt-mr` (through
 * a DDT root to the map-server it delegates to), in a network namespace of
 * its own (lab `mrbench`), with the project's load generator
 * (scripts/_loadgen.ts, phase `negative`).
 *
 * On the namespace's loopback: the map-server (this tree's ms, answering
 * Workers as by default) at 127.0.0.2, a DDT node at 127.0.0.3 whose
 * root delegates 10.0.0.0/8 to that map-server (MAP_SERVER_DDT_NODE), and
 * the resolver at 127.0.0.1, where the generator sends ECM'd Map-Requests
 * for hosts in 10.0.0.0/8 (`--negative-site`). The map-server has that
 * prefix as an `[[ms-static-registered-site]]`, so it proxy-replies to the
 * ITR (the generator), which counts the answers: every answer is a request
 * the resolver passed on. For `ddt-mr` each request (after the first, which
 * walks from the root) is the ITR's own, sent with the D bit to the
 * map-server of the cached MS-REFERRAL (RFC 8111 §7.3.1), which answers the
 * ITR and returns MS-ACK to the resolver.
 *
 * Printed per resolver: answers/s, loss, median and p99 latency, the
 * resolver's CPU per request (µs, /proc/PID/stat) and the map-server's and
 * the generator's CPU. `--base DIR` also runs an older tree's resolver
 * (its main.ts) the same way, for a before/after in one run.
 *
 * ```
 * deno run -A scripts/bench_mr.ts [--seconds 5] [--window 128] [--gen-workers 1]
 *   [--roles mr,ddt-mr] [--base DIR] [--prof DIR]
 * ```
 *
 * `--prof DIR` runs each resolver with `--cpu-prof` (a profile per thread in
 * DIR, `ROLE-TREE.cpuprofile`; read them with scripts/cpuprof_summary.ts).
 *
 * Needs root. Traffic stays on the namespace's loopback; every phase is
 * bounded by `--seconds` (at most 30).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab, type LabProcess, requireRoot, sleep } from "./lab/topology.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = Deno.execPath();
const CLK_TCK = 100;

function ticks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

const MS = `operating-mode = "MS"
control-address = "127.0.0.2"
control-rate-limit = 0
[api]
enabled = false

[[lisp-site]]
eid-prefix = "10.0.0.0/8"
key-type = 2
key = "bench"

[[ms-static-registered-site]]
eid-prefix = "10.0.0.0/8"
rloc-address = [ { address = "192.0.2.1", priority = 1, weight = 100 } ]
`;

const DDT = `operating-mode = "DDT"
control-address = "127.0.0.3"
control-rate-limit = 0
[api]
enabled = false

[[ddt-auth-site]]
eid-prefix = "0.0.0.0/0"

[[ddt-deleg-site]]
eid-prefix = "10.0.0.0/8"
delegation-type = "MAP_SERVER_DDT_NODE"
deleg-nodes = ["127.0.0.2"]
`;

function resolver(role: "mr" | "ddt-mr"): string {
  return [
    `operating-mode = "${role === "mr" ? "MR" : "DDT-MR"}"`,
    `control-address = "127.0.0.1"`,
    `control-rate-limit = 0`,
    ...(role === "ddt-mr" ? [`ddt-root-addresses = ["127.0.0.3"]`] : []),
    `[api]`,
    `enabled = false`,
    ...(role === "mr" ? [``, `[[map-server]]`, `address = "127.0.0.2"`] : []),
    ``,
  ].join("\n");
}

async function waitBound(lab: Lab, p: LabProcess, address: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const r = await lab.exec("n", ["ss", "-Hlun", `src ${address}:4342`]);
    if (r.stdout.includes(address)) return;
    if (!p.alive()) throw new Error(`${p.name} exited: ${p.readLog().slice(-2000)}`);
    await sleep(100);
  }
  throw new Error(`${p.name} never bound ${address}:4342`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "5" },
      window: { type: "string", default: "128" },
      "gen-workers": { type: "string", default: "1" },
      roles: { type: "string", default: "mr,ddt-mr" },
      base: { type: "string" },
      prof: { type: "string" },
    },
  });
  requireRoot("bench_mr");
  const seconds = Math.min(30, Number(values.seconds));
  const lab = new Lab({ nodes: [{ name: "n" }], links: [] }, { name: "mrbench" });
  const results: Record<string, unknown>[] = [];
  try {
    await lab.up();
    await lab.execOk("n", ["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"]).catch(() => "");
    const ms = await lab.spawn("n", "ms", [
      DENO,
      "run",
      "-A",
      `${ROOT}/main.ts`,
      "ms",
      "--config",
      await lab.writeFile("ms.toml", MS),
    ], { env: { DENO_NO_UPDATE_CHECK: "1" } });
    await waitBound(lab, ms, "127.0.0.2");
    const ddt = await lab.spawn("n", "ddt", [
      DENO,
      "run",
      "-A",
      `${ROOT}/main.ts`,
      "ddt",
      "--config",
      await lab.writeFile("ddt.toml", DDT),
    ], { env: { DENO_NO_UPDATE_CHECK: "1" } });
    await waitBound(lab, ddt, "127.0.0.3");
    const trees = [{ label: "this tree", root: ROOT }];
    if (values.base !== undefined) trees.unshift({ label: "before", root: values.base });
    for (const role of values.roles.split(",") as ("mr" | "ddt-mr")[]) {
      for (const tree of trees) {
        const name = `${role}-${tree.label === "before" ? "before" : "now"}`;
        const prof = values.prof === undefined ? [] : [
          "--cpu-prof",
          `--cpu-prof-dir=${values.prof}`,
          `--cpu-prof-name=${name}.cpuprofile`,
        ];
        const p = await lab.spawn("n", name, [
          DENO,
          "run",
          "-A",
          ...prof,
          `${tree.root}/main.ts`,
          role,
          "--config",
          await lab.writeFile(`${name}.toml`, resolver(role)),
        ], { env: { DENO_NO_UPDATE_CHECK: "1" } });
        try {
          await waitBound(lab, p, "127.0.0.1");
          const t0 = {
            r: ticks(p.pid),
            ms: ticks(ms.pid),
            ddt: ticks(ddt.pid),
            at: performance.now(),
          };
          const out = await lab.execOk("n", [
            "env",
            "DENO_NO_UPDATE_CHECK=1",
            DENO,
            "run",
            "-A",
            `${ROOT}/scripts/_loadgen.ts`,
            "--target",
            "127.0.0.1",
            "--phases",
            "negative",
            "--negative-site",
            "10.0.0.0/8",
            "--seconds",
            String(seconds),
            "--window",
            values.window,
            "--workers",
            values["gen-workers"],
            "--server-pid",
            String(p.pid),
          ]);
          const secs = (performance.now() - t0.at) / 1000;
          const ph = (JSON.parse(out.trim().split("\n").pop()!) as {
            phases: Record<string, Record<string, number>>;
          }).phases["negative"]!;
          const cores = (n: number, before: number) =>
            Math.round((n - before) / CLK_TCK / secs * 100) / 100;
          const r = {
            role,
            tree: tree.label,
            perSecond: ph["perSecond"],
            lost: ph["lost"],
            medianMs: ph["medianMs"],
            p99Ms: ph["p99Ms"],
            resolverCpuMicrosPerRequest: ph["serverCpuMicrosPerMessage"],
            resolverCores: ph["serverCpu"],
            msCores: cores(ticks(ms.pid), t0.ms),
            ddtCores: cores(ticks(ddt.pid), t0.ddt),
            loadgenCpu: ph["loadgenCpu"],
            machineBusy: ph["machineBusy"],
          };
          results.push(r);
          console.log(
            `${role.padEnd(7)} ${tree.label.padEnd(9)} ${
              String(r.perSecond).padStart(7)
            }/s lost ${r.lost} ` +
              `median ${r.medianMs} ms p99 ${r.p99Ms} ms; resolver ${r.resolverCores} cores ` +
              `${r.resolverCpuMicrosPerRequest} µs/request; ms ${r.msCores}, ddt ${r.ddtCores}, ` +
              `generator ${r.loadgenCpu} cores; machine ${r.machineBusy}`,
          );
        } finally {
          await lab.stop(name);
        }
      }
    }
  } finally {
    await lab.down();
  }
  console.log(JSON.stringify({ seconds, window: Number(values.window), results }));
  return 0;
}

if (import.meta.main) Deno.exit(await main());
