/**
 * `deno task bench:control --quick`, as a user runs it: our ms and OOR
 * 1.3.0's map-server, each in a namespace of its own, through every phase,
 * then our mr and ddt-mr in front of an ms (the ddt-mr through a DDT root).
 * Checks that the last line is JSON with a positive rate for every phase
 * and server, negative answers where nothing is registered and positive
 * ones after registering, the ratios ours/OOR, and that the lab is gone
 * afterwards. No speed is asserted.
 *
 * @module
 */

import assert from "node:assert/strict";
import { e2e } from "./_lab.ts";
import { OOR_MISSING } from "./_oor.ts";
import { labNamespaces } from "../../scripts/lab/topology.ts";
import type { BenchResult } from "../../scripts/bench_control.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const LAB = "e2e-benchctl";

e2e(
  "e2e bench:control --quick: ours and OOR through every phase, the mr and ddt-mr, one JSON line, lab torn down",
  async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}scripts/bench_control.ts`, "--quick", "--lab", LAB],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(240_000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const context = `exit ${out.code}\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-4000)}`;
    assert.equal(out.code, 0, context);
    const last = stdout.trim().split("\n").pop()!;
    const r = JSON.parse(last) as BenchResult;
    assert.equal(r.bench, "control");
    assert.deepEqual(r.runs.map((x) => x.server), ["ours", "oor", "mr", "ddt-mr"], context);
    const expected = {
      ours: ["negative", "register-kt1", "positive", "register-kt2"],
      oor: ["negative", "register-kt1", "positive"],
      mr: ["negative"],
      "ddt-mr": ["negative"],
    } as const;
    for (const run of r.runs) {
      assert.equal(run.error, undefined, `${run.server}: ${run.error}`);
      const phases = run.load!.phases;
      assert.deepEqual(
        Object.keys(phases).sort(),
        [...expected[run.server as keyof typeof expected]].sort(),
      );
      for (const [kind, p] of Object.entries(phases)) {
        const what = `${run.server} ${kind}: ${JSON.stringify(p)}`;
        assert.ok(!("error" in p), what);
        assert.ok(p.perSecond > 0 && p.answered > 0, what);
        assert.ok(p.serverCpu !== undefined && p.serverCpu > 0, what);
        assert.ok(p.medianMs > 0, what);
      }
      const neg = phases.negative!;
      if (run.server === "mr" || run.server === "ddt-mr") {
        // Passed on to the ms, which proxy-replies: every answer is positive. The
        // warm-up's nonces differ from the phase's, so none is dropped as a
        // duplicate by the forward guard (a window's worth was, stalling the phase).
        assert.ok(!("error" in neg));
        assert.ok(
          neg.positive > 0 && neg.positive === neg.answered,
          `${run.server}: ${neg.positive}`,
        );
        assert.equal(neg.lost, 0, `${run.server}: lost ${neg.lost}`);
        continue;
      }
      const pos = phases.positive!;
      assert.ok(!("error" in neg) && !("error" in pos));
      assert.equal(neg.positive, 0, `${run.server}: negative Map-Requests answered positively`);
      assert.ok(
        pos.positive > 0 && pos.positive === pos.answered,
        `${run.server}: ${pos.positive}`,
      );
    }
    for (const kind of ["negative", "register-kt1", "positive"] as const) {
      assert.ok((r.ratios[kind]?.perSecond ?? 0) > 0, `ratio ${kind}`);
    }
    assert.match(stdout, /ours\/oor/);
    assert.match(stdout, /Map-Requests passed on by a map-resolver/);
    assert.deepEqual(await labNamespaces(LAB), [], "the lab's namespaces are gone");
  },
  OOR_MISSING,
);
