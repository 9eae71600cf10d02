/**
 * `deno task bench:dataplane` (scripts/bench_dataplane.ts) as a smoke
 * test: `--quick` on three rows (plain veth, kernel VXLAN, our xtr with
 * LISP), its last line parsed as JSON with throughput in every test of
 * every row; and Ctrl-C in the middle of a run, after which nothing of its
 * lab is left. No speed is asserted.
 *
 * @module
 */

import assert from "node:assert/strict";
import { listNamespaces, sleep } from "../../scripts/lab/topology.ts";
import { REPO_ROOT } from "../../scripts/lab/topologies.ts";
import { type RowResult, TESTS } from "../../scripts/dpbench/report.ts";
import { availableCongestion, systemCongestion } from "../../scripts/dpbench/measure.ts";
import { e2e } from "./_lab.ts";
import { commandsMissing } from "../prereq.ts";

const NEEDS = commandsMissing(
  ["iperf3", "ping", "curl"],
  "apt-get install iperf3 iputils-ping curl",
);

function bench(args: string[], signal: AbortSignal): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}/scripts/bench_dataplane.ts`, ...args],
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
}

async function labLeft(lab: string): Promise<string[]> {
  return (await listNamespaces()).filter((ns) => ns.startsWith(`oor-${lab}-`));
}

e2e(
  "bench:dataplane --quick on veth, kernel VXLAN and our LISP xTRs: a JSON last line, throughput in every test",
  async () => {
    const lab = "e2e-bench-dp";
    // A congestion control other than the system's, when the kernel has one.
    const system = systemCongestion();
    const congestion = availableCongestion().find((c) => c !== system) ?? system;
    const p = bench(
      [
        "--quick",
        "--omit",
        "1",
        "--congestion",
        congestion,
        "--rows",
        "veth,vxlan,ours-lisp",
        "--lab",
        lab,
      ],
      AbortSignal.timeout(240_000),
    );
    const out = await p.output();
    const stdout = new TextDecoder().decode(out.stdout);
    const context = `stdout:\n${stdout.slice(-3000)}\nstderr:\n${
      new TextDecoder().decode(out.stderr).slice(-2000)
    }`;
    assert.equal(out.code, 0, context);
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as {
      rows: RowResult[];
      omit: number;
      congestion: string;
      ratios: Record<string, { vsVeth?: unknown; vsKernelVxlan?: unknown }>;
      interrupted: boolean;
    };
    assert.deepEqual(result.rows.map((r) => r.id), ["veth", "vxlan", "ours-lisp"]);
    assert.equal(result.interrupted, false);
    assert.equal(result.omit, 1, "TCP tests leave their first second out");
    assert.equal(result.congestion, congestion, "the TCP tests' congestion control, as asked");
    assert.match(stdout, new RegExp(`TCP congestion control ${congestion};`));
    for (const row of result.rows) {
      assert.equal(row.error, undefined, `${row.id}: ${row.error}`);
      assert.deepEqual(row.tests.map((t) => t.test), TESTS.map((t) => t.id));
      for (const t of row.tests) {
        const what = `${row.id} ${t.test}: ${JSON.stringify(t)}`;
        assert.ok((t.iperf?.receivedBps ?? 0) > 0, what);
        if (t.test.startsWith("udp")) assert.ok((t.iperf?.receivedPps ?? 0) > 0, what);
        assert.ok(t.cpu !== undefined && t.cpu.windowS > 0, what);
        assert.ok((t.limits ?? []).length > 0, what);
      }
      assert.ok((row.rttIdle?.received ?? 0) > 0, `${row.id}: idle pings answered`);
      assert.ok((row.rttLoaded?.received ?? 0) > 0, `${row.id}: pings under load answered`);
    }
    const ours = result.rows[2]!;
    assert.ok(ours.tests.every((t) => t.cpu?.xtr1 !== null && t.cpu?.xtr2 !== null));
    assert.ok(result.ratios["ours-lisp"]?.vsVeth !== undefined);
    assert.ok(result.ratios["ours-lisp"]?.vsKernelVxlan !== undefined);
    assert.match(stdout, /^oor LISP /m, "the table has a row for our xtr");
    assert.deepEqual(await labLeft(lab), [], "no namespace of the lab is left");
  },
  NEEDS,
);

e2e(
  "bench:dataplane stopped with SIGINT mid-run: exits 130, reports what it has, leaves nothing",
  async () => {
    const lab = "e2e-bench-dp-int";
    const p = bench(
      ["--seconds", "10", "--rows", "veth", "--lab", lab],
      AbortSignal.timeout(90_000),
    );
    const [a, b] = p.stdout.tee();
    const output = new Response(a).text();
    // Interrupt once the first test runs.
    const reader = b.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/plain veth: ready/.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    await reader.cancel();
    assert.match(seen, /plain veth: ready/);
    await sleep(1500);
    assert.ok((await labLeft(lab)).length > 0, "the lab is up while the test runs");
    p.kill("SIGINT");
    const status = await p.status;
    const stdout = await output;
    assert.equal(status.code, 130, stdout.slice(-2000));
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as { interrupted: boolean };
    assert.equal(result.interrupted, true);
    assert.deepEqual(await labLeft(lab), [], "no namespace of the lab is left");
  },
  NEEDS,
);
