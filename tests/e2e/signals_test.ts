/**
 * End-to-end test of how a tunnel router ends: SIGQUIT (any terminating
 * signal but SIGHUP, which reloads the config) stops an xtr the way SIGTERM does, so its rules, routes and TUN go with
 * it (`assertClean`), and so does a SIGTERM while its API has a client
 * that never reads its answers (within 3 s).
 *
 * Root and Linux only (see tests/e2e/_lab.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sleep } from "../../scripts/lab/topology.ts";
import { assertClean, e2e, PYTHON, registered, withTopology } from "./_lab.ts";

/** Asks the API at 127.0.0.1:9942 for many status pages and never reads them. */
const NON_READER = `
import socket, time
s = socket.create_connection(("127.0.0.1", 9942))
s.sendall(b"GET /?refresh=0 HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n" * 2000)
print("sent", flush=True)
time.sleep(60)
`;

e2e(
  "e2e signals: SIGQUIT stops an xtr cleanly, and SIGTERM does within 3 s despite a stuck API client",
  async () => {
    await withTopology("basic", "e2e-signals", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      const rules = await lab.execOk("xtr1", ["ip", "-4", "rule"]);
      assert.match(rules, /lookup 100/, "xtr1 has its rules before the signal");

      // SIGQUIT to xtr1: a clean stop, exit 0, nothing left behind.
      const xtr1 = ctx.started.find((p) => p.name === "xtr1")!;
      Deno.kill(xtr1.pid, "SIGQUIT");
      await xtr1.waitForLog(/ stopped\n/, 5_000);
      assert.equal(await xtr1.stop(), "exited");
      assert.equal(xtr1.status?.code, 0);
      assert.match(xtr1.readLog(), / stopping signal=SIGQUIT\n/);
      assert.match(xtr1.readLog(), / host-restored changes=/);
      await assertClean(lab, "xtr1");

      // SIGTERM to xtr2 while a client holds its API with answers it does not read.
      const client = await lab.spawn("xtr2", "non-reader", [PYTHON, "-c", NON_READER]);
      await client.waitForLog(/sent/, 5_000);
      await sleep(1_000);
      const xtr2 = ctx.started.find((p) => p.name === "xtr2")!;
      const t0 = Date.now();
      Deno.kill(xtr2.pid, "SIGTERM");
      await xtr2.waitForLog(/ stopped\n/, 10_000);
      const took = Date.now() - t0;
      console.log(`  xtr2 stopped ${took} ms after SIGTERM with a non-reading API client`);
      assert.ok(took < 3_000, `xtr2 took ${took} ms to stop`);
      assert.equal(await xtr2.stop(), "exited");
      assert.equal(xtr2.status?.code, 0);
      await assertClean(lab, "xtr2");
      await lab.stop("non-reader");
    });
  },
);
