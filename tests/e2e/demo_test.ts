/**
 * Runs `scripts/demo.ts` as `deno task demo` would, in a lab of its own
 * name, and checks that it exits 0, prints xtr1's map-cache entry for site
 * 2 and leaves no namespace behind. Needs root; skipped otherwise.
 *
 * @module
 */

import assert from "node:assert/strict";
import { labNamespaces } from "../../scripts/lab/topology.ts";
import { PLAN, REPO_ROOT } from "../../scripts/lab/topologies.ts";
import { rootMissing, testNeeding } from "../prereq.ts";

const SKIP = rootMissing();
const LAB = "demo-test";

testNeeding(SKIP, {
  name: "deno task demo: traffic crosses the basic lab, the summary shows the map-cache, " +
    "nothing is left",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t0 = performance.now();
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO_ROOT}/scripts/demo.ts`, "--name", LAB],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(r.stdout);
    const stderr = new TextDecoder().decode(r.stderr);
    const seconds = (performance.now() - t0) / 1000;
    const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;
    assert.equal(r.code, 0, `the demo exits 0\n${context}`);
    assert.match(stdout, /Traffic got through the overlay/, context);
    // xtr1's map-cache entry for site 2, pointing at xtr2's RLOC.
    const site2 = PLAN.site2Eid4.replaceAll(".", "\\.");
    const rloc = PLAN.xtr2Rloc4.replaceAll(".", "\\.");
    const cache = stdout.slice(stdout.indexOf("xtr1's map-cache"));
    assert.match(cache, new RegExp(`^  ${site2}\\b.*-> ${rloc}`, "m"), context);
    assert.match(stdout, new RegExp(`ip netns exec oor-${LAB}-xtr1 curl .*:9942/`), context);
    assert.match(stdout, /torn down/, context);
    assert.deepEqual(await labNamespaces(LAB), [], "no namespace of the lab is left");
    assert.ok(seconds < 30, `the demo took ${seconds.toFixed(1)} s`);
  },
});
