/**
 * End-to-end test of an xtr that fails closed: after `kill -9` its policy
 * rules stay (`from <EID> lookup 100`), and so does the unreachable route
 * it keeps in table 100 behind the TUN's default route, so site traffic
 * finds "unreachable" instead of falling through to the main table and
 * leaving natively on the underlay. A restart with the same config adopts
 * what it finds (no error, nothing twice) and carries traffic again; a
 * clean stop removes everything (`assertClean`, run by `withTopology`).
 *
 * Root and Linux only (see tests/e2e/_lab.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sleep } from "../../scripts/lab/topology.ts";
import { lispArgv, PLAN, REPO_ROOT } from "../../scripts/lab/topologies.ts";
import { capture, e2e, pingWorks, PYTHON, registered, withTopology } from "./_lab.ts";

/** Sends `n` UDP datagrams to `dst`:`port`, one every 50 ms, ignoring errors (unreachable). */
const UDP_SEND = `
import socket, sys, time
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    try:
        s.sendto(b"oor-fail-closed-%d" % i, (dst, port))
    except OSError:
        pass
    time.sleep(0.05)
print("sent", flush=True)
`;

e2e(
  "e2e fail closed: a killed xtr leaks no site traffic; a restart adopts its routes",
  async () => {
    await withTopology("basic", "e2e-failclosed", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      await pingWorks(lab, "hosta", PLAN.hostB4);
      const t100 = await lab.execOk("xtr1", ["ip", "-4", "route", "show", "table", "100"]);
      assert.match(t100, /^default dev lispTun0/m, "the TUN's default route");
      assert.match(t100, /^unreachable default .*metric 65535/m, "the fail-closed route behind it");

      // kill -9: no clean-up runs, the TUN goes with the process.
      const xtr1 = ctx.started.find((p) => p.name === "xtr1")!;
      Deno.kill(-xtr1.pid, "SIGKILL");
      await xtr1.stop();
      const links = await lab.execOk("xtr1", ["ip", "-o", "link"]);
      assert.doesNotMatch(links, /lispTun0/, "the TUN is gone");
      const rules = await lab.execOk("xtr1", ["ip", "-4", "rule"]);
      assert.match(rules, /from 10\.1\.0\.0\/24 lookup 100/, "the rules stay");
      const left = await lab.execOk("xtr1", ["ip", "-4", "route", "show", "table", "100"]);
      assert.match(left, /^unreachable default .*metric 65535/m, "the fail-closed route stays");

      // Site traffic toward the other site must not appear on the underlay natively.
      const pcap = await lab.writeFile("native.pcap", "");
      await capture(
        lab,
        "router",
        "to-xtr1",
        `host ${PLAN.hostA4} or host ${PLAN.hostB4}`,
        pcap,
      );
      const ping = await lab.exec("hosta", ["ping", "-n", "-c", "3", "-W", "1", PLAN.hostB4]);
      assert.notEqual(ping.code, 0, "the ping fails");
      await lab.execOk("hosta", [PYTHON, "-c", UDP_SEND, PLAN.hostB4, "7777", "10"]);
      await sleep(500);
      await lab.stop("capture");
      const seen = await lab.execOk("router", [
        "tshark",
        "-n",
        "-r",
        pcap,
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "ip.dst",
        "-e",
        "_ws.col.Protocol",
      ]);
      const leaked = seen.split("\n").filter((l) => l.trim() !== "");
      assert.deepEqual(leaked, [], `site packets left xtr1 natively on the underlay`);

      // A restart with the same config adopts the route (once) and carries traffic again.
      const again = await lab.spawn(
        "xtr1",
        "xtr1",
        lispArgv(lab.path("xtr1.toml"), "xtr"),
        { cwd: REPO_ROOT },
      );
      await again.waitForLog(/ started( |$)/m, 15_000);
      assert.match(again.readLog(), /adopted-existing .*unreachable 0\.0\.0\.0\/0/);
      const adopted = await lab.execOk("xtr1", ["ip", "-4", "route", "show", "table", "100"]);
      assert.equal(
        adopted.split("\n").filter((l) => l.startsWith("unreachable default")).length,
        1,
        `one fail-closed route, not two:\n${adopted}`,
      );
      assert.match(adopted, /^default dev lispTun0/m);
      await again.waitForLog(/ registered /, 20_000);
      await pingWorks(lab, "hosta", PLAN.hostB4);
      // withTopology stops xtr1 with SIGTERM and checks nothing is left (table 100 empty).
    });
  },
);
