import assert from "node:assert/strict";
import {
  annotate,
  bestOf,
  formatReport,
  formatRounds,
  headline,
  limitsOf,
  median,
  parseIperf,
  parsePing,
  parseRows,
  ratios,
  roundSummary,
  type RowResult,
  type TestResult,
} from "./report.ts";

/** An iperf3 3.12 client's `-J` output, trimmed to what parseIperf() reads. */
function iperfJson(protocol: "TCP" | "UDP", end: Record<string, unknown>): string {
  return JSON.stringify({ start: { test_start: { protocol } }, end }, null, "\t");
}

const TCP = iperfJson("TCP", {
  sum_sent: { seconds: 5.0, bytes: 400e6, bits_per_second: 640e6, retransmits: 12 },
  sum_received: { seconds: 5.01, bytes: 399e6, bits_per_second: 637e6 },
  cpu_utilization_percent: { host_total: 20.04, remote_total: 33.3 },
});

const UDP = iperfJson("UDP", {
  sum_sent: { seconds: 1, bits_per_second: 155e6, packets: 300000, lost_packets: 0 },
  sum_received: {
    seconds: 1.0001,
    bits_per_second: 150e6,
    packets: 300000,
    lost_packets: 30000,
  },
});

Deno.test("parseIperf() reads a TCP run: both sides' rates, retransmits, iperf3's own CPU", () => {
  assert.deepEqual(parseIperf(TCP), {
    seconds: 5.01,
    sentBps: 640e6,
    receivedBps: 637e6,
    retransmits: 12,
    iperfCpu: { sender: 20, receiver: 33.3 },
  });
});

Deno.test("parseIperf() reads a UDP run: delivered packets and loss are the receiver's", () => {
  const f = parseIperf(UDP);
  assert.equal(f.sentPackets, 300000);
  assert.equal(f.receivedPackets, 270000);
  assert.equal(f.receivedPps, 269973);
  assert.equal(f.lossPct, 10);
  assert.equal(f.receivedBps, 150e6);
  assert.equal(f.retransmits, undefined);
});

Deno.test("parseIperf() skips the warnings iperf3 prints before its JSON", () => {
  const text = "warning: UDP block size 1400 exceeds TCP MSS 1398, may result in " +
    "fragmentation / drops\n" + UDP;
  assert.equal(parseIperf(text).receivedPackets, 270000);
});

Deno.test("parseIperf() throws iperf3's error, and on output that is not its JSON", () => {
  assert.throws(
    () => parseIperf(JSON.stringify({ start: {}, end: {}, error: "unable to connect to server" })),
    /iperf3: unable to connect to server/,
  );
  assert.throws(() => parseIperf(""), /not JSON: \(empty\)/);
  assert.throws(() => parseIperf(iperfJson("TCP", {})), /without end\.sum_sent/);
});

Deno.test("parsePing() takes the median of the replies and counts the lost", () => {
  const text = [
    "PING 10.2.0.10 (10.2.0.10) 56(84) bytes of data.",
    "64 bytes from 10.2.0.10: icmp_seq=1 ttl=62 time=0.300 ms",
    "64 bytes from 10.2.0.10: icmp_seq=2 ttl=62 time=0.100 ms",
    "64 bytes from 10.2.0.10: icmp_seq=4 ttl=62 time=2.50 ms",
    "",
    "--- 10.2.0.10 ping statistics ---",
    "4 packets transmitted, 3 received, 25% packet loss, time 150ms",
  ].join("\n");
  assert.deepEqual(parsePing(text), { sent: 4, received: 3, medianMs: 0.3, maxMs: 2.5 });
  assert.deepEqual(parsePing("2 packets transmitted, 0 received, 100% packet loss"), {
    sent: 2,
    received: 0,
    medianMs: null,
    maxMs: null,
  });
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

Deno.test("parseRows() picks rows by id in the benchmark's order and rejects unknown ones", () => {
  assert.deepEqual(parseRows("ours-lisp,veth").map((r) => r.id), ["veth", "ours-lisp"]);
  assert.equal(parseRows(undefined).length, 8);
  assert.deepEqual(parseRows("ours-lisp-1w").map((r) => "workers" in r && r.workers), [1]);
  assert.deepEqual(parseRows("ours-lisp-cpus").map((r) => "pinned" in r && r.pinned), [true]);
  assert.throws(() => parseRows("veth,kernel"), /unknown row kernel/);
});

const CPU = {
  windowS: 3,
  sender: 40,
  receiver: 20,
  xtr1: 80,
  xtr2: 70,
  ksoftirqd: 0,
  others: 0,
  softirq: 30,
  machine: 150,
};

function udp(pps: number, lossPct: number, extra: Partial<TestResult> = {}): TestResult {
  const sent = Math.round(pps / (1 - lossPct / 100));
  return {
    test: "udp1400",
    iperf: {
      seconds: 1,
      sentBps: sent * 11200,
      receivedBps: pps * 11200,
      sentPackets: sent,
      receivedPackets: pps,
      receivedPps: pps,
      lossPct,
    },
    cpu: CPU,
    ...extra,
  };
}

function tcp(gbps: number, senderCpu: number): TestResult {
  return {
    test: "tcp1",
    iperf: { seconds: 1, sentBps: gbps * 1e9, receivedBps: gbps * 1e9, retransmits: 0 },
    cpu: { ...CPU, sender: senderCpu },
  };
}

Deno.test("limitsOf(): UDP with little loss is sender-limited, heavy loss is the path's", () => {
  assert.deepEqual(limitsOf(udp(120_000, 0.5), undefined, 2), ["sender-limited"]);
  assert.deepEqual(limitsOf(udp(70_000, 40), undefined, 2), ["path-limited"]);
});

Deno.test("limitsOf(): a rate near the plain veth's is sender-limited whatever the CPU", () => {
  const plain = tcp(10, 95);
  assert.deepEqual(limitsOf(tcp(9.5, 30), plain, 2), ["sender-limited"]);
  assert.deepEqual(limitsOf(tcp(0.6, 30), plain, 2), ["path-limited"]);
  assert.deepEqual(limitsOf(tcp(0.6, 97), plain, 2), ["sender-limited"]);
});

Deno.test("limitsOf(): loss mostly in the receiver's socket is receiver-limited; all cores busy", () => {
  const sent = udp(50_000, 50).iperf!.sentPackets!;
  const lost = sent - 50_000;
  const t = udp(50_000, 50, { receiverDrops: lost - 10, cpu: { ...CPU, machine: 199 } });
  assert.deepEqual(limitsOf(t, undefined, 2), ["receiver-limited", "cores-saturated"]);
  assert.deepEqual(limitsOf({ test: "udp64", error: "boom" }, undefined, 2), []);
});

function row(id: RowResult["id"], label: string, tcpGbps: number, pps: number): RowResult {
  return { id, label, tests: [tcp(tcpGbps, 50), udp(pps, 30)] };
}

Deno.test("ratios(): every row against plain veth and kernel VXLAN, ours against OOR alike", () => {
  const rows = [
    row("veth", "plain veth", 12, 120_000),
    row("vxlan", "kernel VXLAN", 10, 100_000),
    row("ours-gpe", "oor VXLAN-GPE", 0.5, 60_000),
    row("oor13-lisp", "OOR 1.3.0 LISP", 0.4, 30_000),
    row("oor13-gpe", "OOR 1.3.0 VXLAN-GPE", 0.25, 20_000),
  ];
  const r = ratios(rows);
  assert.deepEqual(r["ours-gpe"], {
    vsVeth: { tcp1: 0.042, tcp4: null, udp64: null, udp1400: 0.5 },
    vsKernelVxlan: { tcp1: 0.05, tcp4: null, udp64: null, udp1400: 0.6 },
    vsOor13: { tcp1: 2, tcp4: null, udp64: null, udp1400: 3 },
  });
  assert.deepEqual(Object.keys(r["veth"]!), ["vsKernelVxlan"]);
  assert.deepEqual(Object.keys(r["oor13-lisp"]!), ["vsVeth", "vsKernelVxlan"]);
});

Deno.test("formatReport() shows every row, a failed one with why, and the ratios", () => {
  const rows = annotate([
    row("veth", "plain veth", 12, 120_000),
    { id: "oor13-lisp", label: "OOR 1.3.0 LISP", error: "needs /usr/sbin/oor", tests: [] },
    row("ours-lisp", "oor LISP", 0.6, 60_000),
  ], 2);
  const text = formatReport(rows, 2).join("\n");
  assert.match(text, /^plain veth +12\.00 /m);
  assert.match(text, /^OOR 1\.3\.0 LISP +not run: needs \/usr\/sbin\/oor/m);
  assert.match(text, /^oor LISP +0\.60 .* 60\.0k 30%/m);
  assert.match(text, /oor LISP +\/ plain veth +tcp1 0\.05 +tcp4 - +udp64 - +udp1400 0\.50/);
});

Deno.test("limitsOf(): other processes using a quarter of a core flag the figure as noisy", () => {
  const t = { ...udp(70_000, 40), cpu: { ...CPU, others: 60 } };
  assert.deepEqual(limitsOf(t, undefined, 2), ["path-limited", "others-busy"]);
});

Deno.test("bestOf(): each test's best round, the lowest round trips, an error only if none ran", () => {
  const ping = (medianMs: number) => ({ sent: 5, received: 5, medianMs, maxMs: medianMs });
  const r1: RowResult = {
    ...row("ours-lisp", "oor LISP", 0.6, 40_000),
    rttIdle: ping(0.5),
    rttLoaded: ping(9),
  };
  const r2: RowResult = {
    ...row("ours-lisp", "oor LISP", 0.4, 70_000),
    rttIdle: ping(0.7),
    rttLoaded: ping(4),
  };
  const failed: RowResult = { id: "ours-lisp", label: "oor LISP", error: "no ping", tests: [] };
  const b = bestOf([r1, failed, r2]);
  assert.equal(b.rounds, 2);
  assert.deepEqual(b.tests.map((t) => [t.test, headline(t), t.round]), [
    ["tcp1", 0.6, 1],
    ["udp1400", 70_000, 2],
  ]);
  assert.equal(b.rttIdle?.medianMs, 0.5);
  assert.equal(b.rttLoaded?.medianMs, 4);
  assert.equal(bestOf([failed]).error, "no ping");
  assert.equal(bestOf([r1]), r1);
});

Deno.test("formatReport() stars a ratio whose reference figure was sender-limited", () => {
  const vxlan = row("vxlan", "kernel VXLAN", 10, 50_000);
  const rows = annotate([
    { ...vxlan, tests: [vxlan.tests[0]!, udp(50_000, 1)] },
    row("ours-lisp", "oor LISP", 0.5, 60_000),
  ], 2);
  const text = formatReport(rows, 2).join("\n");
  assert.match(
    text,
    /oor LISP +\/ kernel VXLAN +tcp1 0\.05 {2}tcp4 - {2}udp64 - {2}udp1400 1\.20\*/,
  );
});

Deno.test("roundSummary(): figures and ratios within each round, with medians over the rounds that ran", () => {
  const rounds: RowResult[][] = [
    [row("vxlan", "kernel VXLAN", 10, 100_000), row("ours-lisp", "oor LISP", 5, 60_000)],
    [
      row("vxlan", "kernel VXLAN", 14, 100_000),
      { id: "ours-lisp", label: "oor LISP", error: "did not start", tests: [] },
    ],
    [row("vxlan", "kernel VXLAN", 11, 50_000), row("ours-lisp", "oor LISP", 6, 40_000)],
    [row("vxlan", "kernel VXLAN", 12, 80_000), row("ours-lisp", "oor LISP", 7, 40_000)],
  ];
  const s = roundSummary(rounds);
  const ours = s["ours-lisp"]!;
  assert.deepEqual(ours.figures.tcp1, { perRound: [5, null, 6, 7], median: 6 });
  // Each ratio is taken within its round, not from the rounds' best figures.
  assert.deepEqual(ours.vsKernelVxlan?.tcp1, {
    perRound: [0.5, null, 0.545, 0.583],
    median: 0.545,
  });
  assert.deepEqual(ours.vsKernelVxlan?.udp1400, { perRound: [0.6, null, 0.8, 0.5], median: 0.6 });
  assert.deepEqual(ours.vsKernelVxlan?.tcp4, {
    perRound: [null, null, null, null],
    median: null,
  });
  assert.equal(ours.vsOor13, undefined);
  assert.deepEqual(s["vxlan"]!.figures.tcp1, { perRound: [10, 14, 11, 12], median: 11.5 });
  assert.equal(s["vxlan"]!.vsKernelVxlan, undefined);
  const text = formatRounds(s, rounds).join("\n");
  assert.match(text, /Round by round \(4 rounds/);
  assert.match(text, /oor LISP +TCP1 5\.00 \/ - \/ 6\.00 \/ 7\.00 \(median 6\.00\) Gbit\/s/);
  assert.match(text, /\/ kernel VXLAN: TCP1 0\.50 \/ - \/ 0\.55 \/ 0\.58 \(median 0\.55\)/);
  // One round: nothing to add to the main table.
  assert.deepEqual(roundSummary([rounds[0]!]), {});
  assert.deepEqual(formatRounds(roundSummary([rounds[0]!]), [rounds[0]!]), []);
});
