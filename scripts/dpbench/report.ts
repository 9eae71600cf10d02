/**
 * The pure half of `deno task bench:dataplane` (scripts/bench_dataplane.ts):
 * the rows and tests it runs, reading iperf3's and ping's output, deciding
 * what limited each figure, the ratios between rows, and the table.
 * Nothing here runs a command.
 *
 * @module
 */

/** What each row of the benchmark routes the traffic through. */
export const ROWS = [
  { id: "veth", label: "plain veth", kind: "veth" },
  { id: "vxlan", label: "kernel VXLAN", kind: "vxlan" },
  { id: "ours-lisp", label: "oor LISP", kind: "ours", encapsulation: "LISP" },
  { id: "ours-gpe", label: "oor VXLAN-GPE", kind: "ours", encapsulation: "VXLAN-GPE" },
  // `[data-plane] workers = 1` (the rows above run the default: one Worker per core).
  {
    id: "ours-lisp-1w",
    label: "oor LISP 1 Worker",
    kind: "ours",
    encapsulation: "LISP",
    workers: 1,
  },
  // `[data-plane] cpus`: xtr1's Workers pinned to one CPU, xtr2's to another
  // (as two machines would each have their own), the rest unpinned.
  {
    id: "ours-lisp-cpus",
    label: "oor LISP, pinned",
    kind: "ours",
    encapsulation: "LISP",
    pinned: true,
  },
  { id: "oor13-lisp", label: "OOR 1.3.0 LISP", kind: "oor13", encapsulation: "LISP" },
  { id: "oor13-gpe", label: "OOR 1.3.0 VXLAN-GPE", kind: "oor13", encapsulation: "VXLAN-GPE" },
] as const;

/** One row's declaration. */
export type RowSpec = typeof ROWS[number];

/**
 * A row's id: `veth`, `vxlan`, `ours-lisp`, `ours-gpe`, `ours-lisp-1w`, `ours-lisp-cpus`,
 * `oor13-lisp`, `oor13-gpe`.
 */
export type RowId = RowSpec["id"];

/**
 * The iperf3 tests of every row, in order. UDP runs unpaced (`-b 0`) with
 * 4 MiB socket buffers (`-w`, bounded by net.core.rmem_max/wmem_max): the
 * receiver's default 208 KiB overflows on the bursts a batching xTR
 * delivers whenever the receiver waits for a core, and would make the
 * load generator, not the path, the limit.
 */
export const TESTS = [
  { id: "tcp1", label: "TCP 1 stream", args: [] },
  { id: "tcp4", label: "TCP 4 streams", args: ["-P", "4"] },
  { id: "udp64", label: "UDP 64 B", args: ["-u", "-b", "0", "-l", "64", "-w", "4M"] },
  { id: "udp1400", label: "UDP 1400 B", args: ["-u", "-b", "0", "-l", "1400", "-w", "4M"] },
] as const;

/** A test's id. */
export type TestId = typeof TESTS[number]["id"];

/** iperf3 CPU (% of one core) from which a TCP sender, or any receiver, is the limit. */
export const BUSY_PCT = 90;

/** A rate at least this share of the plain veth's is the path's limit, not the tunnel's. */
export const AT_LIMIT_SHARE = 0.9;

/** UDP loss (%) under which a busy sender, not the tunnel, set the rate. */
export const SENDER_LOSS_PCT = 5;

/** CPU of processes outside the test (% of one core) from which a figure is flagged noisy. */
export const OTHERS_PCT = 25;

/** Parses `--rows a,b,c` (ids of {@link ROWS}); throws on an unknown id, keeps the order of ROWS. */
export function parseRows(text: string | undefined): RowSpec[] {
  if (text === undefined || text.trim() === "" || text === "all") return [...ROWS];
  const want = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = want.filter((w) => !ROWS.some((r) => r.id === w));
  if (bad.length > 0) {
    throw new RangeError(
      `unknown row ${bad.join(", ")} (rows: ${ROWS.map((r) => r.id).join(", ")})`,
    );
  }
  return ROWS.filter((r) => want.includes(r.id));
}

/** What one iperf3 run gave, from the client's `-J` output (the receiver's side included). */
export interface IperfFigures {
  /** Seconds the receiver counted. */
  readonly seconds: number;
  /** Payload bits per second the sender sent. */
  readonly sentBps: number;
  /** Payload bits per second the receiver got. */
  readonly receivedBps: number;
  /** UDP: datagrams sent. */
  readonly sentPackets?: number;
  /** UDP: datagrams the receiver got (sent less lost). */
  readonly receivedPackets?: number;
  /** UDP: datagrams the receiver got, per second. */
  readonly receivedPps?: number;
  /** UDP: lost datagrams, % of sent (the receiver's count). */
  readonly lossPct?: number;
  /** TCP: retransmitted segments (the sender's count). */
  readonly retransmits?: number;
  /** iperf3's own CPU figures (getrusage, % of one core): sender and receiver. */
  readonly iperfCpu?: { readonly sender: number; readonly receiver: number };
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null ? v as Record<string, unknown> : undefined;
}

/**
 * Reads an iperf3 client's `-J` output (iperf3 3.x): `end.sum_sent` and
 * `end.sum_received`, for UDP the receiver's packet and loss counts.
 * Throws with iperf3's `error` when it reports one, or when the figures are
 * missing.
 */
export function parseIperf(text: string): IperfFigures {
  let j: Record<string, unknown> | undefined;
  // Warnings ("UDP block size 1400 exceeds TCP MSS ...") come before the JSON object.
  const start = text.search(/^\{/m);
  try {
    j = obj(JSON.parse(start < 0 ? text : text.slice(start)));
  } catch {
    // iperf3 printed something that is not its JSON (a crash, a kill): show its start.
    throw new Error(`iperf3 output is not JSON: ${text.slice(0, 200).trim() || "(empty)"}`);
  }
  if (typeof j?.["error"] === "string") throw new Error(`iperf3: ${j["error"]}`);
  const end = obj(j?.["end"]);
  const sent = obj(end?.["sum_sent"]);
  const received = obj(end?.["sum_received"]);
  const sentBps = num(sent?.["bits_per_second"]);
  const receivedBps = num(received?.["bits_per_second"]);
  const seconds = num(received?.["seconds"]) ?? num(sent?.["seconds"]);
  if (sentBps === undefined || receivedBps === undefined || seconds === undefined) {
    throw new Error("iperf3 JSON without end.sum_sent / end.sum_received");
  }
  const cpu = obj(end?.["cpu_utilization_percent"]);
  const hostCpu = num(cpu?.["host_total"]);
  const remoteCpu = num(cpu?.["remote_total"]);
  const iperfCpu = hostCpu !== undefined && remoteCpu !== undefined
    ? { iperfCpu: { sender: round(hostCpu, 1), receiver: round(remoteCpu, 1) } }
    : {};
  const udp = obj(obj(j?.["start"])?.["test_start"])?.["protocol"] === "UDP";
  if (udp) {
    const packets = num(received?.["packets"]) ?? num(sent?.["packets"]) ?? 0;
    const lost = num(received?.["lost_packets"]) ?? 0;
    const got = Math.max(0, packets - lost);
    return {
      seconds,
      sentBps,
      receivedBps,
      sentPackets: packets,
      receivedPackets: got,
      receivedPps: seconds > 0 ? Math.round(got / seconds) : 0,
      lossPct: packets > 0 ? round((lost / packets) * 100, 2) : 0,
      ...iperfCpu,
    };
  }
  return {
    seconds,
    sentBps,
    receivedBps,
    retransmits: num(sent?.["retransmits"]) ?? 0,
    ...iperfCpu,
  };
}

/** Round trips of one ping run. */
export interface PingFigures {
  /** Echo requests sent. */
  readonly sent: number;
  /** Replies received. */
  readonly received: number;
  /** Median round trip, ms (null without a reply). */
  readonly medianMs: number | null;
  /** Largest round trip, ms (null without a reply). */
  readonly maxMs: number | null;
}

/** Reads `ping -n` output (one `time=X ms` per reply, then the summary). */
export function parsePing(text: string): PingFigures {
  const times = [...text.matchAll(/ time=([0-9.]+) ms/g)].map((m) => Number(m[1]));
  const summary = text.match(/(\d+) packets transmitted, (\d+) (?:packets )?received/);
  const sent = summary ? Number(summary[1]) : times.length;
  return {
    sent,
    received: times.length,
    medianMs: times.length > 0 ? round(median(times), 3) : null,
    maxMs: times.length > 0 ? round(Math.max(...times), 3) : null,
  };
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Rounds to `digits` decimals. */
export function round(v: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** CPU of the processes and of the machine over a test's measuring window. */
export interface CpuFigures {
  /** Seconds the window lasted. */
  readonly windowS: number;
  /** iperf3 sender, % of one core (utime+stime from /proc/<pid>/stat). */
  readonly sender: number | null;
  /** iperf3 receiver, % of one core. */
  readonly receiver: number | null;
  /** xTR 1 process (all its threads), % of one core; null for the kernel paths. */
  readonly xtr1: number | null;
  /** xTR 2 process, % of one core; null for the kernel paths. */
  readonly xtr2: number | null;
  /** The ksoftirqd threads (softirq work deferred to them), % of one core. */
  readonly ksoftirqd: number;
  /**
   * Every other process on the machine (the lab's ms and mr, and whatever
   * else runs here: other people's work shows here), % of one core.
   */
  readonly others: number;
  /** Softirq time of all CPUs (/proc/stat), % of one core. */
  readonly softirq: number;
  /** Busy time of all CPUs (/proc/stat), % of one core (at most cores × 100). */
  readonly machine: number;
}

/** One test of one row. */
export interface TestResult {
  /** The test. */
  readonly test: TestId;
  /** iperf3's figures, absent when it failed. */
  readonly iperf?: IperfFigures;
  /** Why it failed. */
  readonly error?: string;
  /** CPU over the window. */
  readonly cpu?: CpuFigures;
  /** Kernel UDP receive-buffer drops (/proc/net/snmp RcvbufErrors) during the test, by node. */
  readonly rcvbufErrors?: Readonly<Record<string, number>>;
  /** Of those, the drops at the iperf3 receiver's socket (its node's count). */
  readonly receiverDrops?: number;
  /** What limited the figure (filled by {@link annotate}). */
  readonly limits?: readonly string[];
  /** The round it came from (1-based), when the row ran more than once. */
  readonly round?: number;
}

/** One row: its set-up, its tests and its round trips. */
export interface RowResult {
  /** Row id. */
  readonly id: RowId;
  /** Row label. */
  readonly label: string;
  /** Why the row did not run (set-up failed, OOR missing), when it did not. */
  readonly error?: string;
  /** Seconds the row took to set up (xTRs started, registered, first packets through). */
  readonly setupS?: number;
  /** The tests, in {@link TESTS} order. */
  readonly tests: readonly TestResult[];
  /** Ping with nothing else running. */
  readonly rttIdle?: PingFigures;
  /** Ping during the 1-stream TCP test. */
  readonly rttLoaded?: PingFigures;
  /** Our xTRs' non-zero drop and error counters after the row (from their /metrics). */
  readonly xtrDrops?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Rounds the figures are the best of, when more than one. */
  readonly rounds?: number;
}

/** The figure the ratios compare: Gbit/s delivered for TCP, packets/s delivered for UDP. */
export function headline(t: TestResult | undefined): number | undefined {
  if (t?.iperf === undefined) return undefined;
  return t.test.startsWith("udp") ? t.iperf.receivedPps : t.iperf.receivedBps / 1e9;
}

/**
 * What limited a test's figure, given the plain-veth row's result of the
 * same test (undefined for that row itself or when it did not run):
 *
 * - `sender-limited`: TCP: the iperf3 sender used ≥ {@link BUSY_PCT}% of a
 *   core; UDP (unpaced): less than {@link SENDER_LOSS_PCT}% was lost, so the
 *   path carried all the sender could offer (busy, or waiting for a core);
 *   either: the rate is ≥ {@link AT_LIMIT_SHARE} of the plain veth's, which
 *   a tunnel cannot beat.
 * - `receiver-limited`: the iperf3 receiver used ≥ {@link BUSY_PCT}% of a
 *   core, or (UDP) at least half of the lost datagrams overflowed its
 *   socket's receive buffer: they crossed the path and the receiver did not
 *   keep up.
 * - `path-limited`: neither; the tunnel (or the CPU it shares) set the rate.
 * - `cores-saturated`: the machine was ≥ 95% busy on every core.
 * - `others-busy`: processes outside the test (other work on the machine)
 *   used ≥ {@link OTHERS_PCT}% of a core: the figure is noisy.
 */
export function limitsOf(t: TestResult, plain: TestResult | undefined, cores: number): string[] {
  const out: string[] = [];
  if (t.iperf === undefined || t.cpu === undefined) return out;
  const udp = t.test.startsWith("udp");
  const senderBound = udp
    ? (t.iperf.lossPct ?? 0) < SENDER_LOSS_PCT
    : (t.cpu.sender ?? 0) >= BUSY_PCT;
  const mine = headline(t) ?? 0;
  const limit = plain === t ? undefined : headline(plain);
  const atLimit = limit !== undefined && limit > 0 && mine >= AT_LIMIT_SHARE * limit;
  if (senderBound || atLimit) out.push("sender-limited");
  const sent = t.iperf.sentPackets ?? 0;
  const lost = sent - (t.iperf.receivedPackets ?? sent);
  const overflowed = udp && lost > 0 && (t.receiverDrops ?? 0) >= lost / 2;
  if ((t.cpu.receiver ?? 0) >= BUSY_PCT || overflowed) out.push("receiver-limited");
  if (out.length === 0) out.push("path-limited");
  if (t.cpu.machine >= cores * 95) out.push("cores-saturated");
  if (t.cpu.others >= OTHERS_PCT) out.push("others-busy");
  return out;
}

/** The rows with every test's {@link TestResult.limits} filled in. */
export function annotate(rows: readonly RowResult[], cores: number): RowResult[] {
  const plain = rows.find((r) => r.id === "veth");
  return rows.map((r) => ({
    ...r,
    tests: r.tests.map((t) => ({
      ...t,
      limits: limitsOf(t, plain?.tests.find((p) => p.test === t.test), cores),
    })),
  }));
}

/**
 * One row out of several rounds of it: each test's best figure (see
 * {@link headline}) with the round it came from, the lowest idle and
 * loaded round-trip medians, and the first round's error when no round
 * ran. Interleaved rounds let a burst of other work on the machine spoil
 * one round of a row, not the row.
 */
export function bestOf(rounds: readonly RowResult[]): RowResult {
  if (rounds.length === 1) return rounds[0]!;
  const ran = rounds.filter((r) => r.error === undefined);
  if (ran.length === 0) return rounds[0]!;
  const tests: TestResult[] = [];
  for (const { id } of TESTS) {
    let best: TestResult | undefined;
    let from = 0;
    ran.forEach((r, i) => {
      const t = r.tests.find((x) => x.test === id);
      if (t === undefined) return;
      if (best === undefined || (headline(t) ?? -1) > (headline(best) ?? -1)) {
        best = t;
        from = i + 1;
      }
    });
    if (best !== undefined) tests.push(ran.length > 1 ? { ...best, round: from } : best);
  }
  const lowest = (pick: (r: RowResult) => PingFigures | undefined) =>
    ran.map(pick).filter((p): p is PingFigures => p?.medianMs !== undefined && p.medianMs !== null)
      .reduce<PingFigures | undefined>(
        (a, p) => (a === undefined || p.medianMs! < a.medianMs! ? p : a),
        undefined,
      );
  const rttIdle = lowest((r) => r.rttIdle);
  const rttLoaded = lowest((r) => r.rttLoaded);
  const last = ran[ran.length - 1]!;
  return {
    id: last.id,
    label: last.label,
    ...(last.setupS !== undefined ? { setupS: last.setupS } : {}),
    tests,
    ...(rttIdle !== undefined ? { rttIdle } : {}),
    ...(rttLoaded !== undefined ? { rttLoaded } : {}),
    ...(last.xtrDrops !== undefined ? { xtrDrops: last.xtrDrops } : {}),
    ...(ran.length > 1 ? { rounds: ran.length } : {}),
  };
}

/** Ratios of one row against a reference row, per test (null when either figure is missing). */
export type RatioSet = Readonly<Record<TestId, number | null>>;

/** The reference rows a row is compared with. */
export interface RowRatios {
  /** Against plain veth (the limit). */
  readonly vsVeth?: RatioSet;
  /** Against the kernel's VXLAN. */
  readonly vsKernelVxlan?: RatioSet;
  /** Our rows against OOR 1.3.0 with the same encapsulation. */
  readonly vsOor13?: RatioSet;
}

function ratioSet(a: RowResult, b: RowResult): RatioSet {
  const out = {} as Record<TestId, number | null>;
  for (const { id } of TESTS) {
    const x = headline(a.tests.find((t) => t.test === id));
    const y = headline(b.tests.find((t) => t.test === id));
    out[id] = x !== undefined && y !== undefined && y > 0 ? round(x / y, 3) : null;
  }
  return out;
}

/**
 * Every row against plain veth and kernel VXLAN, and our rows against OOR
 * 1.3.0 with the same encapsulation; rows without a reference get none.
 */
export function ratios(rows: readonly RowResult[]): Record<string, RowRatios> {
  const byId = new Map(rows.filter((r) => r.error === undefined).map((r) => [r.id, r]));
  const out: Record<string, RowRatios> = {};
  for (const r of byId.values()) {
    const veth = byId.get("veth");
    const vxlan = byId.get("vxlan");
    const oor13 = r.id === "ours-lisp" || r.id === "ours-lisp-1w" || r.id === "ours-lisp-cpus"
      ? byId.get("oor13-lisp")
      : r.id === "ours-gpe"
      ? byId.get("oor13-gpe")
      : undefined;
    out[r.id] = {
      ...(veth !== undefined && r !== veth ? { vsVeth: ratioSet(r, veth) } : {}),
      ...(vxlan !== undefined && r !== vxlan ? { vsKernelVxlan: ratioSet(r, vxlan) } : {}),
      ...(oor13 !== undefined ? { vsOor13: ratioSet(r, oor13) } : {}),
    };
  }
  return out;
}

/** One figure over the rounds: each round's value (null where it did not run) and their median. */
export interface Spread {
  readonly perRound: readonly (number | null)[];
  /** Median of the rounds that ran (null when none did). */
  readonly median: number | null;
}

/** A row's figures and ratios round by round (see {@link roundSummary}). */
export interface RowRounds {
  /** Each test's headline figure (Gbit/s, or packets/s delivered). */
  readonly figures: Readonly<Record<TestId, Spread>>;
  /** Against the kernel's VXLAN of the same round. */
  readonly vsKernelVxlan?: Readonly<Record<TestId, Spread>>;
  /** Our rows against OOR 1.3.0 (same encapsulation) of the same round. */
  readonly vsOor13?: Readonly<Record<TestId, Spread>>;
}

function spread(values: readonly (number | null)[], digits: number): Spread {
  const ran = values.filter((v): v is number => v !== null);
  return {
    perRound: values.map((v) => (v === null ? null : round(v, digits))),
    median: ran.length > 0 ? round(median(ran), digits) : null,
  };
}

/**
 * Every row's figures and ratios round by round, each ratio taken within
 * one round (the rows of a round ran minutes apart, the rounds longer),
 * with their medians: the view that {@link bestOf}'s best rounds do not
 * give. Empty with one round.
 */
export function roundSummary(
  rounds: readonly (readonly RowResult[])[],
): Record<string, RowRounds> {
  if (rounds.length < 2) return {};
  const perRound = rounds.map((r) => ratios(r));
  const ids: string[] = [];
  for (const r of rounds) for (const x of r) if (!ids.includes(x.id)) ids.push(x.id);
  const out: Record<string, RowRounds> = {};
  for (const id of ids) {
    const testsOf = (pick: (k: number, t: TestId) => number | null, digits: number) => {
      const o = {} as Record<TestId, Spread>;
      for (const { id: t } of TESTS) o[t] = spread(rounds.map((_, k) => pick(k, t)), digits);
      return o;
    };
    const figures = testsOf((k, t) => {
      const r = rounds[k]!.find((x) => x.id === id);
      if (r === undefined || r.error !== undefined) return null;
      const v = headline(r.tests.find((x) => x.test === t));
      return v === undefined ? null : v;
    }, 3);
    const has = (which: "vsKernelVxlan" | "vsOor13") =>
      perRound.some((p) => p[id]?.[which] !== undefined);
    const ratioOf = (which: "vsKernelVxlan" | "vsOor13") =>
      testsOf((k, t) => perRound[k]![id]?.[which]?.[t] ?? null, 3);
    out[id] = {
      figures,
      ...(has("vsKernelVxlan") ? { vsKernelVxlan: ratioOf("vsKernelVxlan") } : {}),
      ...(has("vsOor13") ? { vsOor13: ratioOf("vsOor13") } : {}),
    };
  }
  return out;
}

/**
 * The per-round view as text (`sum`, the {@link roundSummary} of `rounds`):
 * each row's TCP 1-stream and UDP 1400-byte figures round by round, and
 * its ratios against the kernel's VXLAN and OOR 1.3.0 within each round,
 * with medians. Nothing with one round.
 */
export function formatRounds(
  sum: Readonly<Record<string, RowRounds>>,
  rounds: readonly (readonly RowResult[])[],
): string[] {
  const labels = new Map<string, string>();
  for (const r of rounds) for (const x of r) labels.set(x.id, x.label);
  const out: string[] = [];
  const show = (s: Spread, digits: number, scale = 1) =>
    `${s.perRound.map((v) => fixed(v === null ? null : v / scale, digits)).join(" / ")} ` +
    `(median ${fixed(s.median === null ? null : s.median / scale, digits)})`;
  for (const [id, r] of Object.entries(sum)) {
    const label = cell(labels.get(id) ?? id, 20, true);
    out.push(
      `  ${label} TCP1 ${show(r.figures.tcp1, 2)} Gbit/s;  UDP1400 ${
        show(r.figures.udp1400, 1, 1000)
      }k pps`,
    );
    if (r.vsKernelVxlan !== undefined) {
      out.push(
        `  ${cell("", 20)} / kernel VXLAN: TCP1 ${show(r.vsKernelVxlan.tcp1, 2)};  UDP1400 ${
          show(r.vsKernelVxlan.udp1400, 2)
        }`,
      );
    }
    if (r.vsOor13 !== undefined) {
      out.push(
        `  ${cell("", 20)} / OOR 1.3.0:    TCP1 ${show(r.vsOor13.tcp1, 2)};  UDP1400 ${
          show(r.vsOor13.udp1400, 2)
        }`,
      );
    }
  }
  if (out.length === 0) return [];
  return [
    "",
    `Round by round (${rounds.length} rounds; ratios within each round, then their median):`,
    ...out,
  ];
}

// ---------------------------------------------------------------------------
// Text.

function cell(text: string, width: number, left = false): string {
  return left ? text.padEnd(width) : text.padStart(width);
}

function fixed(v: number | undefined | null, digits: number): string {
  return v === undefined || v === null ? "-" : v.toFixed(digits);
}

function pct(v: number | null | undefined): string {
  return v === undefined || v === null ? "-" : `${Math.round(v)}`;
}

const SHORT: Readonly<Record<string, string>> = {
  "sender-limited": "S",
  "receiver-limited": "R",
  "path-limited": "",
  "cores-saturated": "C",
  "others-busy": "N",
};

function flag(t: TestResult | undefined): string {
  return (t?.limits ?? []).map((l) => SHORT[l] ?? "?").join("");
}

/** The figures of one test of a row as the table shows them, with its limit flags. */
function figure(t: TestResult | undefined): string {
  if (t === undefined) return "-";
  if (t.iperf === undefined) return "error";
  const f = flag(t);
  const v = t.test.startsWith("udp")
    ? `${fixed((t.iperf.receivedPps ?? 0) / 1000, 1)}k ${fixed(t.iperf.lossPct, 0)}%`
    : `${fixed(t.iperf.receivedBps / 1e9, 2)}`;
  return f === "" ? v : `${v} ${f}`;
}

/** The results as text: the main table, CPU per test, round trips, ratios, and a legend. */
export function formatReport(rows: readonly RowResult[], cores: number): string[] {
  const out: string[] = [];
  const w = [20, 12, 12, 17, 17, 8, 16];
  out.push(
    cell("row", w[0]!, true) + cell("TCP1 Gb/s", w[1]!) + cell("TCP4 Gb/s", w[2]!) +
      cell("UDP64 pps loss", w[3]!) + cell("UDP1400 pps loss", w[4]!) + cell("Gb/s", w[5]!) +
      cell("RTT idle/load", w[6]!),
  );
  for (const r of rows) {
    if (r.error !== undefined) {
      out.push(cell(r.label, w[0]!, true) + `  not run: ${r.error}`);
      continue;
    }
    const t = (id: TestId) => r.tests.find((x) => x.test === id);
    const u1400 = t("udp1400");
    const rtt = `${fixed(r.rttIdle?.medianMs, 2)}/${fixed(r.rttLoaded?.medianMs, 2)} ms`;
    out.push(
      cell(r.label, w[0]!, true) + cell(figure(t("tcp1")), w[1]!) +
        cell(figure(t("tcp4")), w[2]!) + cell(figure(t("udp64")), w[3]!) +
        cell(figure(u1400), w[4]!) +
        cell(fixed((u1400?.iperf?.receivedBps ?? NaN) / 1e9, 2), w[5]!) +
        cell(rtt, w[6]!),
    );
  }
  out.push(
    "  (TCP: Gbit/s delivered; UDP: packets/s delivered and loss; flags: S sender-limited, " +
      "R receiver-limited, C every core busy, N other processes busy (noisy); without S or R the " +
      "path set the rate)",
  );
  out.push("");
  out.push(
    "CPU, % of one core over each test's window: iperf3 sender and receiver, xTR1 and xTR2 " +
      "processes, ksoftirqd threads, every other process; softirq and busy time of all cores:",
  );
  for (const r of rows) {
    if (r.error !== undefined) continue;
    for (const t of r.tests) {
      const c = t.cpu;
      const what = t.error !== undefined
        ? `error: ${t.error}`
        : c === undefined
        ? "-"
        : `snd ${pct(c.sender)} rcv ${pct(c.receiver)} xtr1 ${pct(c.xtr1)} xtr2 ${
          pct(c.xtr2)
        } ksoftirqd ${pct(c.ksoftirqd)} others ${pct(c.others)} softirq ${pct(c.softirq)} machine ${
          pct(c.machine)
        }/${cores * 100}` +
          (t.iperf?.retransmits !== undefined ? `  retransmits ${t.iperf.retransmits}` : "") +
          (t.rcvbufErrors !== undefined && Object.values(t.rcvbufErrors).some((v) => v > 0)
            ? `  rcvbuf drops ${
              Object.entries(t.rcvbufErrors).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`)
                .join(" ")
            }`
            : "") +
          (t.limits !== undefined ? `  [${t.limits.join(", ")}]` : "") +
          (t.round !== undefined ? ` (round ${t.round})` : "");
      out.push(`  ${cell(r.label, 20, true)} ${cell(t.test, 8, true)} ${what}`);
    }
    for (const [node, counters] of Object.entries(r.xtrDrops ?? {})) {
      const list = Object.entries(counters).map(([k, v]) => `${k}=${v}`).join(" ");
      out.push(`  ${cell(r.label, 20, true)} ${node} drops: ${list || "none"}`);
    }
  }
  const rs = ratios(rows);
  const lines: string[] = [];
  for (const r of rows) {
    const set = rs[r.id];
    if (set === undefined) continue;
    const fmt = (name: string, s: RatioSet | undefined, ref: RowResult | undefined) => {
      if (s === undefined) return;
      const vals = TESTS.map((t) => {
        const capped = ref?.tests.find((x) => x.test === t.id)?.limits?.includes("sender-limited");
        return `${t.id} ${fixed(s[t.id], 2)}${capped === true && s[t.id] !== null ? "*" : ""}`;
      }).join("  ");
      lines.push(`  ${cell(r.label, 20, true)} / ${cell(name, 19, true)} ${vals}`);
    };
    const find = (id: RowId) => rows.find((x) => x.id === id);
    fmt("plain veth", set.vsVeth, find("veth"));
    fmt("kernel VXLAN", set.vsKernelVxlan, find("vxlan"));
    const oor13 = r.id === "ours-gpe" ? "oor13-gpe" : "oor13-lisp";
    fmt(`OOR 1.3.0 ${r.id === "ours-gpe" ? "VXLAN-GPE" : "LISP"}`, set.vsOor13, find(oor13));
  }
  if (lines.length > 0) {
    out.push("");
    out.push(
      "Ratios (TCP: Gbit/s; UDP: packets/s delivered; * the reference's figure was " +
        "sender-limited, so the ratio is an upper bound):",
    );
    out.push(...lines);
  }
  return out;
}
