/**
 * `deno run -A scripts/bench_ms_oor.ts`: the map-server against OOR 1.3.0's
 * in one run, on the loopback of a network namespace of its own (lab
 * `msbench`), driven by the project's load generator (scripts/_loadgen.ts,
 * through the interface it keeps for single-phase scripts: `--phases
 * req` / `reg,req`). `deno task bench:control` is the table of record; this
 * script adds what profiling the ms needs: an older tree beside this one,
 * a count of answering Workers per run, CPU per thread and CPU profiles.
 *
 * Each target runs alone while the generator drives it, in this order:
 *
 * 1. OOR 1.3.0 (`/usr/sbin/oor`, `operating-mode = MS`, `control-iface =
 *    lo`), a site 10.0.0.0/8 with no registrations: Map-Requests only, so
 *    every answer is a negative Map-Reply.
 * 2. `--base DIR`: the ms of another tree (`git archive` of an older
 *    commit, with node_modules linked), through its main.ts.
 * 3. This tree's ms, once per `--workers` count (scripts/_ms_node.ts;
 *    -1: the role's default): the same Map-Requests, then authenticated
 *    registrations (key type 2) and positive Map-Requests against a fresh one.
 *
 * Every ms has `control-rate-limit = 0`, the site with key type 2 and
 * `max-registrations` for every /24. For every run it prints answers/s,
 * loss, median and p99 latency, the server's CPU (from /proc/PID/stat
 * between the generator's start and stop marks) as cores and as µs per
 * answer, split by thread (main, answering Workers, V8's helpers, other),
 * and the generator's own CPU share: when that nears its Workers' count,
 * the generator, not the server, is the limit. The last line is all of it
 * as JSON.
 *
 * ```
 * deno run -A scripts/bench_ms_oor.ts [--duration 5] [--window 128] [--gen-workers 1]
 *   [--workers -1,0,2] [--base DIR] [--loadgen FILE] [--no-oor] [--no-reg]
 *   [--repeat 1] [--prof DIR]
 * ```
 *
 * `--prof DIR` runs each ms with `--cpu-prof` (a profile per thread;
 * scripts/cpuprof_summary.ts reads them). Needs root. Traffic stays on the
 * namespace's loopback; every phase is bounded by `--duration` (at most
 * 30 s).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab, type LabProcess, requireRoot, sleep } from "./lab/topology.ts";

const KEY = "bench-key";
const SITE = "10.0.0.0/8";
const ROOT = new URL("..", import.meta.url).pathname;
const DENO = Deno.execPath();
const CLK_TCK = 100;
/** The load generator (scripts/_loadgen.ts's command line of commit e546c43). */
let loadgenPath = `${ROOT}scripts/_loadgen.ts`;

interface Phase {
  readonly sent: number;
  readonly answered: number;
  readonly lost: number;
  readonly perSecond: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly loadgenCpu: number;
  readonly positive?: number;
}

interface Run {
  readonly target: string;
  readonly phase: string;
  readonly result: Phase;
  /** Server CPU while the generator was sending, in cores. */
  readonly serverCores: number;
  /** Server CPU per answer, µs. */
  readonly serverUsPerAnswer: number;
  /** Server CPU by thread kind, cores. */
  readonly threads?: Record<string, number>;
}

/** utime + stime of a process and its threads, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

/** utime + stime per kind of thread (main, workers, v8 helpers, other), in clock ticks. */
function threadTicks(pid: number): Record<string, number> {
  const out: Record<string, number> = { main: 0, workers: 0, v8: 0, other: 0 };
  for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/stat`);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const t = Number(f[11]) + Number(f[12]);
      const k = e.name === String(pid)
        ? "main"
        : comm.startsWith("worker-")
        ? "workers"
        : comm.startsWith("V8 ")
        ? "v8"
        : "other";
      out[k] = out[k]! + t;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

function oorConfig(): string {
  return [
    "debug = 0",
    "operating-mode = MS",
    "control-iface = lo",
    "lisp-site {",
    `    eid-prefix = ${SITE}`,
    "    iid = 0",
    "    key-type = 1",
    `    key = ${KEY}`,
    "    accept-more-specifics = true",
    "    proxy-reply = true",
    "    merge = false",
    "}",
    "",
  ].join("\n");
}

function msConfig(): string {
  return [
    `operating-mode = "MS"`,
    `debug = 0`,
    `control-address = "127.0.0.1"`,
    `control-port = 4342`,
    `control-rate-limit = 0`,
    ``,
    `[[lisp-site]]`,
    `eid-prefix = "${SITE}"`,
    `iid = 0`,
    `key-type = 2`,
    `key = "${KEY}"`,
    `accept-more-specifics = true`,
    `proxy-reply = true`,
    `max-registrations = 65536`,
    ``,
  ].join("\n");
}

/** Runs the load generator in the lab; samples `pid`'s CPU between its marks. */
async function loadgen(
  lab: Lab,
  pid: number,
  args: readonly string[],
): Promise<{
  out: Record<string, Phase>;
  cpu: Record<string, number>;
  threads: Record<string, Record<string, number>>;
}> {
  const argv = lab.argv("s", [
    "env",
    "DENO_NO_UPDATE_CHECK=1",
    DENO,
    "run",
    "-A",
    loadgenPath,
    "--port",
    "4342",
    "--key",
    KEY,
    "--site",
    SITE,
    ...args,
  ]);
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const cpu: Record<string, number> = {};
  const threads: Record<string, Record<string, number>> = {};
  const started = new Map<
    string,
    { ticks: number; at: number; threads: Record<string, number> }
  >();
  let last = "";
  let rest = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = parts.pop()!;
    for (const line of parts) {
      const m = /^mark (start|stop) (\w+)$/.exec(line);
      if (m === null) {
        if (line.trim() !== "") last = line;
        continue;
      }
      if (m[1] === "start") {
        started.set(m[2]!, {
          ticks: cpuTicks(pid),
          at: performance.now(),
          threads: threadTicks(pid),
        });
      } else {
        const st = started.get(m[2]!);
        if (st === undefined) continue;
        const secs = (performance.now() - st.at) / 1000;
        cpu[m[2]!] = (cpuTicks(pid) - st.ticks) / CLK_TCK / secs;
        const now = threadTicks(pid);
        threads[m[2]!] = Object.fromEntries(
          Object.entries(now).map((
            [k, v],
          ) => [k, Math.round((v - (st.threads[k] ?? 0)) / CLK_TCK / secs * 100) / 100]),
        );
      }
    }
  }
  if (rest.trim() !== "") last = rest;
  const status = await child.status;
  if (!status.success) throw new Error(`load generator failed (exit ${status.code})`);
  return { out: JSON.parse(last) as Record<string, Phase>, cpu, threads };
}

function record(
  target: string,
  phase: string,
  p: Phase,
  cores: number,
  threads?: Record<string, number>,
): Run {
  return {
    target,
    phase,
    result: p,
    serverCores: Math.round(cores * 100) / 100,
    serverUsPerAnswer: p.perSecond > 0 ? Math.round(cores * 1e6 / p.perSecond * 10) / 10 : 0,
    ...(threads !== undefined ? { threads } : {}),
  };
}

function show(r: Run): string {
  const p = r.result;
  const t = r.threads;
  return [
    r.target.padEnd(14),
    r.phase.padEnd(14),
    `${String(p.perSecond).padStart(7)}/s`,
    ` sent ${p.sent} answered ${p.answered} lost ${p.lost}`,
    p.positive !== undefined ? `positive ${p.positive}` : "",
    ` median ${p.medianMs} ms p99 ${p.p99Ms} ms`,
    ` server ${r.serverCores} cores ${r.serverUsPerAnswer} µs/answer`,
    t !== undefined
      ? `(main ${t["main"]} workers ${t["workers"]} v8 ${t["v8"]} other ${t["other"]})`
      : "",
    ` loadgen ${p.loadgenCpu} cores`,
  ].join(" ");
}

async function waitPort(lab: Lab, proc: LabProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await lab.exec("s", ["ss", "-Hlun", "sport = :4342"]);
    if (r.stdout.includes("4342")) return;
    if (!proc.alive()) throw new Error(`${proc.name} exited: ${proc.readLog().slice(-2000)}`);
    await sleep(100);
  }
  throw new Error(`${proc.name} never bound port 4342`);
}

interface Target {
  readonly label: string;
  readonly kind: "oor" | "ms";
  /** Tree whose main.ts runs (ms). */
  readonly root?: string;
  /** Answering Workers (ms; -1: the role's default). */
  readonly workers?: number;
}

/** Starts `t` in the lab; returns its process. */
async function startTarget(lab: Lab, t: Target, name: string, prof?: string): Promise<LabProcess> {
  if (t.kind === "oor") {
    const path = await lab.writeFile(`${name}.conf`, oorConfig());
    return await lab.spawn("s", name, ["stdbuf", "-oL", "oor", "-f", path]);
  }
  const path = await lab.writeFile(`${name}.toml`, msConfig());
  const w = t.workers ?? -1;
  const profArgs = prof !== undefined
    ? ["--cpu-prof", `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${name}.cpuprofile`]
    : [];
  // The tree's own ms entry point when it has one that takes --workers, else main.ts.
  const node = `${t.root}/scripts/_ms_node.ts`;
  let hasNode = false;
  try {
    hasNode = Deno.statSync(node).isFile;
  } catch {
    hasNode = false;
  }
  const argv = hasNode
    ? [
      DENO,
      "run",
      "-A",
      ...profArgs,
      node,
      "--config",
      path,
      ...(w >= 0 ? ["--workers", String(w)] : []),
    ]
    : [DENO, "run", "-A", ...profArgs, `${t.root}/main.ts`, "ms", "--config", path];
  return await lab.spawn("s", name, argv, { env: { DENO_NO_UPDATE_CHECK: "1" } });
}

async function stopTarget(lab: Lab, name: string, p: LabProcess): Promise<void> {
  // SIGINT: a clean stop writes the CPU profile.
  if (p.alive()) Deno.kill(p.pid, "SIGINT");
  for (let i = 0; i < 50 && p.alive(); i++) await sleep(100);
  await lab.stop(name);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string", default: "5" },
      window: { type: "string", default: "128" },
      workers: { type: "string", default: "-1" },
      base: { type: "string" },
      loadgen: { type: "string", default: `${ROOT}scripts/_loadgen.ts` },
      "no-oor": { type: "boolean", default: false },
      "no-reg": { type: "boolean", default: false },
      repeat: { type: "string", default: "1" },
      prof: { type: "string" },
      "gen-workers": { type: "string" },
    },
  });
  requireRoot("bench_ms_oor");
  loadgenPath = values.loadgen;
  const duration = Math.min(30, Number(values.duration));
  const common = [
    "--duration",
    String(duration),
    "--window",
    values.window,
    "--drain",
    "1",
    ...(values["gen-workers"] !== undefined ? ["--workers", values["gen-workers"]] : []),
  ];
  const targets: Target[] = [];
  if (!values["no-oor"]) targets.push({ label: "oor-1.3.0", kind: "oor" });
  if (values.base !== undefined) {
    targets.push({ label: "ms before", kind: "ms", root: values.base });
  }
  for (const w of values.workers.split(",").map(Number)) {
    targets.push({
      label: `ms w=${w < 0 ? "auto" : w}`,
      kind: "ms",
      root: ROOT.replace(/\/$/, ""),
      workers: w,
    });
  }
  const lab = new Lab({ nodes: [{ name: "s" }], links: [] }, { name: "msbench" });
  const runs: Run[] = [];
  const note = (r: Run) => {
    runs.push(r);
    console.log(show(r));
  };
  try {
    await lab.up();
    for (let rep = 0; rep < Number(values.repeat); rep++) {
      for (const [ti, t] of targets.entries()) {
        const phases = t.kind === "oor" || values["no-reg"] ? ["req"] : ["req", "reg,req"];
        for (const ph of phases) {
          const name = `t${ti}-${ph.replace(",", "-")}`;
          const p = await startTarget(lab, t, name, values.prof);
          try {
            await waitPort(lab, p);
            const { out, cpu, threads } = await loadgen(lab, p.pid, [...common, "--phases", ph]);
            if (out["registrations"] !== undefined) {
              note(
                record(
                  t.label,
                  "registrations",
                  out["registrations"],
                  cpu["registrations"] ?? 0,
                  threads["registrations"],
                ),
              );
            }
            note(
              record(
                t.label,
                ph === "req" ? "negative" : "positive",
                out["requests"]!,
                cpu["requests"] ?? 0,
                threads["requests"],
              ),
            );
          } finally {
            await stopTarget(lab, name, p);
          }
        }
      }
    }
  } finally {
    await lab.down();
  }
  console.log(JSON.stringify({ duration, window: Number(values.window), runs }));
  return 0;
}

if (import.meta.main) Deno.exit(await main());
