/**
 * `deno task bench:dataplane`: throughput, packet rate, loss, CPU and round
 * trips of the data plane, against the paths it competes with, measured
 * with a load generator that is not the limit (iperf3).
 *
 * One lab, the `basic` topology (root; namespaces `oor-<lab>-*`, torn
 * down at the end and on Ctrl-C):
 *
 * ```
 *  hosta ── xtr1 ── router ── xtr2 ── hostb        ms (our ms and mr) on the router too
 *  iperf3 -c                           iperf3 -s
 * ```
 *
 * Rows, in turn over the same links (scripts/dpbench/rows.ts): `veth`
 * (plain routing: the limit), `vxlan` (the kernel's VXLAN), `ours-lisp` and
 * `ours-gpe` (`oor xtr`, LISP and VXLAN-GPE, a data-plane Worker per core),
 * `ours-lisp-1w` (LISP with one Worker), `ours-lisp-cpus` (LISP with each
 * xTR's Workers pinned to a CPU of its own), `oor13-lisp` and `oor13-gpe`
 * (the real OOR 1.3.0, `/usr/sbin/oor`). Each row runs the same tests from
 * hosta to hostb: iperf3 TCP with 1 and 4 streams, UDP `-b 0` with 64 and
 * 1400-byte datagrams (the receiver's count: packets/s delivered and loss),
 * each `--seconds` long (a TCP test measures after its first `--omit`
 * seconds, default 1, which iperf3 leaves out: slow start, and the first
 * packets through a freshly started xTR, whose JavaScript is not compiled
 * yet); ping idle (20 at 0.05 s) and during the 1-stream TCP test (the
 * median of each).
 *
 * Reported per test: Gbit/s (payload), UDP packets/s delivered and loss,
 * TCP retransmits, the CPU of the iperf3 sender and receiver and of each
 * xTR process (from /proc/<pid>/stat over the middle of the test), the
 * machine's softirq and busy time, UDP receive-buffer drops in xtr1, xtr2
 * and hostb, our xTRs' drop counters; what limited the figure (the sender,
 * the receiver, or the path: scripts/dpbench/report.ts); then ratios
 * against plain veth, kernel VXLAN and OOR 1.3.0. The last line is all of
 * it as one JSON object.
 *
 * ```
 * deno task bench:dataplane [--seconds N] [--omit N] [--congestion NAME]
 *                           [--rows veth,vxlan,ours-lisp,...] [--repeat N] [--quick] [--lab NAME] [--keep]
 * ```
 *
 * TCP tests use the system's congestion control (printed, JSON
 * `congestion`) unless `--congestion NAME` gives the iperf3 sender another
 * (`-C`; one of /proc/sys/net/ipv4/tcp_available_congestion_control), for
 * every row alike: BBR paces at the rate it measures, which a userspace
 * tunnel that batches makes burstier than the kernel's.
 *
 * `--repeat N` runs every row N times, the rows interleaved (round 1 of
 * every row, then round 2...), and reports each test's best round: other
 * work on a shared machine then spoils a round, not a row. Below the
 * ratios it then shows each row round by round, with its ratios against
 * the kernel's VXLAN and OOR 1.3.0 taken within each round and their
 * medians (JSON `roundRatios`).
 * `--quick` (the smoke test): 1-second tests, nothing omitted, 5 pings. `--keep` keeps the
 * configs and logs (printed path). Two cores carry the sender, the
 * receiver, both xTRs and every softirq: the figures belong to this
 * machine, and anything else running on it shows in them (the background
 * load is measured first and printed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isRoot, Lab } from "./lab/topology.ts";
import { PLAN } from "./lab/topologies.ts";
import {
  availableCongestion,
  backgroundLoad,
  ping,
  runTest,
  systemCongestion,
  windowLead,
} from "./dpbench/measure.ts";
import {
  annotate,
  bestOf,
  formatReport,
  formatRounds,
  parseRows,
  type PingFigures,
  ratios,
  round,
  roundSummary,
  type RowResult,
  type RowRounds,
  type RowSpec,
  type TestResult,
  TESTS,
} from "./dpbench/report.ts";
import { benchTopology, type RowRun, setUpRow, startMappingSystem } from "./dpbench/rows.ts";

/** Longest test allowed, seconds. */
const MAX_SECONDS = 60;
/** Longest start of a TCP test left out, seconds. */
const MAX_OMIT = 10;
/** Most rounds allowed. */
const MAX_REPEAT = 10;
const EXIT_USAGE = 2;

/** Options of one benchmark run. */
export interface BenchOptions {
  /** Seconds of each iperf3 test. */
  readonly seconds: number;
  /** Seconds at the start of each TCP test left out of its figures (iperf3 `--omit`). */
  readonly omit: number;
  /** TCP congestion control of the iperf3 sender (`-C`); absent: the system's. */
  readonly congestion?: string;
  /** Rows to run. */
  readonly rows: readonly RowSpec[];
  /** Rounds: every row runs this many times, interleaved; each figure is the best. */
  readonly repeat: number;
  /** Pings of each round-trip measure. */
  readonly pings: number;
  /** Lab name. */
  readonly lab: string;
  /** Keep configs and logs. */
  readonly keep: boolean;
  /** Stops the run (Ctrl-C). */
  readonly signal: AbortSignal;
  /** Progress lines. */
  readonly log: (line: string) => void;
}

/** What a run measured: the JSON of the last line. */
export interface BenchResult {
  readonly bench: "dataplane";
  readonly command: string;
  readonly seconds: number;
  /** Seconds at the start of each TCP test left out (iperf3 `--omit`). */
  readonly omit: number;
  /** The TCP tests' congestion control: the one asked for, or the system's. */
  readonly congestion: string;
  readonly cores: number;
  readonly kernel: string;
  readonly iperf3: string;
  /** Busy share of the machine before the run, % of one core (other work on it). */
  readonly backgroundLoad: number;
  readonly repeat: number;
  /** Each row's best figures over the rounds, with what limited them. */
  readonly rows: readonly RowResult[];
  /** Every round's rows as measured (one round: the same as `rows`). */
  readonly rounds: readonly (readonly RowResult[])[];
  readonly ratios: Record<string, unknown>;
  /** With more than one round: each row's figures and ratios round by round, and their medians. */
  readonly roundRatios: Record<string, RowRounds>;
  /** Things the teardowns had to clean after the xTRs, and other remarks. */
  readonly notes: readonly string[];
  /** The run was interrupted. */
  readonly interrupted: boolean;
}

function firstLine(argv: string[]): string {
  try {
    const o = new Deno.Command(argv[0]!, { args: argv.slice(1), stdout: "piped", stderr: "null" })
      .outputSync();
    return new TextDecoder().decode(o.stdout).split("\n")[0]!.trim();
  } catch {
    return "";
  }
}

function oor13Missing(): string | undefined {
  try {
    Deno.statSync("/usr/sbin/oor");
    return undefined;
  } catch {
    return "needs /usr/sbin/oor (apt-get install openoverlayrouter)";
  }
}

function describe(t: TestResult): string {
  if (t.iperf === undefined) return `error: ${t.error}`;
  const f = t.iperf;
  const rate = f.receivedPps !== undefined
    ? `${Math.round(f.receivedPps).toLocaleString("en")} pkt/s, ${
      (f.receivedBps / 1e9).toFixed(3)
    } Gbit/s, loss ${f.lossPct}%`
    : `${(f.receivedBps / 1e9).toFixed(3)} Gbit/s, ${f.retransmits} retransmits`;
  const c = t.cpu;
  const cpu = c === undefined
    ? ""
    : `; cpu snd ${c.sender} rcv ${c.receiver} xtr1 ${c.xtr1 ?? "-"} xtr2 ${c.xtr2 ?? "-"} ` +
      `softirq ${c.softirq} machine ${c.machine}`;
  return rate + cpu;
}

async function runRow(
  lab: Lab,
  row: RowSpec,
  o: BenchOptions,
  notes: string[],
): Promise<RowResult> {
  const t0 = performance.now();
  let run: RowRun;
  try {
    run = await setUpRow(lab, row);
  } catch (e) {
    return { id: row.id, label: row.label, error: (e as Error).message.split("\n")[0]!, tests: [] };
  }
  const setupS = round((performance.now() - t0) / 1000, 1);
  o.log(`${row.label}: ready in ${setupS} s`);
  const tests: TestResult[] = [];
  let rttIdle: PingFigures | undefined;
  let rttLoaded: PingFigures | undefined;
  let xtrDrops: Record<string, Record<string, number>> | undefined;
  try {
    rttIdle = await ping(lab, "hosta", PLAN.hostB4, o.pings, 0.05);
    for (const test of TESTS) {
      if (o.signal.aborted) break;
      const lead = windowLead(o.seconds);
      const loadedPings = Math.max(3, Math.floor((o.seconds - lead - 0.6) / 0.05));
      const result = await runTest({
        lab,
        sender: "hosta",
        receiver: "hostb",
        receiverAddress: PLAN.hostB4,
        seconds: o.seconds,
        omit: o.omit,
        ...(o.congestion !== undefined ? { congestion: o.congestion } : {}),
        xtrPids: run.xtrPids,
        dropNodes: ["xtr1", "xtr2", "hostb"],
        name: `${row.id}-${test.id}`,
        signal: o.signal,
        ...(test.id === "tcp1"
          ? {
            during: async () => {
              rttLoaded = await ping(lab, "hosta", PLAN.hostB4, loadedPings, 0.05);
            },
          }
          : {}),
      }, test.id);
      o.log(`  ${row.label} ${test.label}: ${describe(result)}`);
      tests.push(result);
    }
    xtrDrops = await run.drops();
  } finally {
    const left = await run.stop();
    for (const l of left) notes.push(`${row.label}: cleaned after the xTRs: ${l}`);
  }
  return {
    id: row.id,
    label: row.label,
    setupS,
    tests,
    ...(rttIdle !== undefined ? { rttIdle } : {}),
    ...(rttLoaded !== undefined ? { rttLoaded } : {}),
    ...(xtrDrops !== undefined && Object.keys(xtrDrops).length > 0 ? { xtrDrops } : {}),
  };
}

/** Runs the benchmark: builds the lab, runs each row, tears everything down. */
export async function bench(o: BenchOptions, command: string): Promise<BenchResult> {
  const cores = navigator.hardwareConcurrency;
  const notes: string[] = [];
  const background = await backgroundLoad(1000);
  const congestion = o.congestion ?? `${systemCongestion()} (the system's)`;
  o.log(
    `bench:dataplane: ${o.rows.map((r) => r.id).join(", ")}; ${o.seconds} s tests` +
      (o.omit > 0 ? ` (TCP after its first ${o.omit} s)` : "") +
      `; TCP congestion control ${congestion}; ` +
      `${cores} cores; background load ${background}% of one core`,
  );
  const stateDir = await Deno.makeTempDir({ prefix: "oor-bench-dp-" });
  const lab = new Lab(benchTopology(), { name: o.lab, stateDir, stopTimeoutMs: 8000 });
  const rounds: RowResult[][] = [];
  try {
    await lab.up();
    const missing = oor13Missing();
    if (o.rows.some((r) => r.kind === "ours" || r.kind === "oor13")) {
      await startMappingSystem(lab);
    }
    for (let i = 1; i <= o.repeat && !o.signal.aborted; i++) {
      const rows: RowResult[] = [];
      rounds.push(rows);
      for (const row of o.rows) {
        if (o.signal.aborted) break;
        if (row.kind === "oor13" && missing !== undefined) {
          rows.push({ id: row.id, label: row.label, error: missing, tests: [] });
          continue;
        }
        o.log(`${row.label}: setting up${o.repeat > 1 ? ` (round ${i} of ${o.repeat})` : ""}`);
        rows.push(await runRow(lab, row, o, notes));
      }
    }
  } finally {
    await lab.down();
    if (o.keep) o.log(`configs and logs kept in ${lab.dir}`);
    else await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
  const rows = o.rows.flatMap((spec) => {
    const mine = rounds.flatMap((r) => r.filter((x) => x.id === spec.id));
    return mine.length > 0 ? [bestOf(mine)] : [];
  });
  const annotated = annotate(rows, cores);
  return {
    bench: "dataplane",
    command,
    seconds: o.seconds,
    omit: o.omit,
    congestion: o.congestion ?? systemCongestion(),
    cores,
    kernel: Deno.osRelease(),
    iperf3: firstLine(["iperf3", "--version"]),
    backgroundLoad: background,
    repeat: o.repeat,
    rows: annotated,
    rounds: o.repeat > 1 ? rounds.map((r) => annotate(r, cores)) : [annotated],
    ratios: ratios(annotated),
    roundRatios: roundSummary(rounds),
    notes,
    interrupted: o.signal.aborted,
  };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: "string" },
      omit: { type: "string" },
      congestion: { type: "string" },
      rows: { type: "string" },
      repeat: { type: "string", default: "1" },
      quick: { type: "boolean", default: false },
      lab: { type: "string", default: "bench-dp" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench:dataplane [--seconds N] [--omit N] [--congestion NAME]" +
        " [--rows veth,vxlan,ours-lisp,ours-gpe," +
        "ours-lisp-1w,ours-lisp-cpus,oor13-lisp,oor13-gpe] [--repeat N] [--quick] [--lab NAME]" +
        " [--keep]",
    );
    return 0;
  }
  let rows: RowSpec[];
  try {
    rows = parseRows(values.rows);
  } catch (e) {
    console.error((e as Error).message);
    return EXIT_USAGE;
  }
  const seconds = Number(values.seconds ?? (values.quick ? 1 : 5));
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_SECONDS) {
    console.error(`--seconds must be 1..${MAX_SECONDS}`);
    return EXIT_USAGE;
  }
  const omit = Number(values.omit ?? (values.quick ? 0 : 1));
  if (!Number.isInteger(omit) || omit < 0 || omit > MAX_OMIT) {
    console.error(`--omit must be 0..${MAX_OMIT}`);
    return EXIT_USAGE;
  }
  const congestion = values.congestion;
  const have = availableCongestion();
  if (congestion !== undefined && !have.includes(congestion)) {
    console.error(
      `--congestion must be one this kernel has: ${have.join(", ")}` +
        ` (/proc/sys/net/ipv4/tcp_available_congestion_control)`,
    );
    return EXIT_USAGE;
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) {
    console.error(`--repeat must be 1..${MAX_REPEAT}`);
    return EXIT_USAGE;
  }
  if (!isRoot()) {
    console.error("bench:dataplane needs root (network namespaces, TUN devices)");
    return EXIT_USAGE;
  }
  if (firstLine(["iperf3", "--version"]) === "") {
    console.error("bench:dataplane needs iperf3 (apt-get install iperf3)");
    return EXIT_USAGE;
  }
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) return;
    console.error("bench:dataplane: interrupted, tearing the lab down");
    ac.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const result = await bench({
      seconds,
      omit,
      ...(congestion !== undefined ? { congestion } : {}),
      rows,
      repeat,
      pings: values.quick ? 5 : 20,
      lab: values.lab,
      keep: values.keep,
      signal: ac.signal,
      log: (l) => console.log(l),
    }, ["deno task bench:dataplane", ...args].join(" "));
    console.log("");
    for (const line of formatReport(result.rows, result.cores)) console.log(line);
    for (const line of formatRounds(result.roundRatios, result.rounds)) console.log(line);
    for (const n of result.notes) console.log(`note: ${n}`);
    console.log(JSON.stringify(result));
    if (result.interrupted) return 130;
    const failed = result.rows.some((r) => r.error !== undefined || r.tests.some((t) => t.error));
    return failed ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
