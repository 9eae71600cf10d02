/**
 * End-to-end tests of the ITR's stateless MTU handling (RFC 9300 §7.1):
 * on a lab whose links all have MTU 1400, a packet from hosta that with
 * the 36 bytes of outer IPv4/UDP/LISP headers would exceed xtr1's RLOC
 * interface is answered by xtr1's data plane with ICMP "fragmentation
 * needed" (IPv4, DF) or ICMPv6 "packet too big" carrying MTU 1364: ping
 * reports it, hosta's kernel learns it, and Wireshark's dissector reads
 * the error cleanly (checksums included). A packet that fits still goes
 * through.
 *
 * Root and Linux only (see tests/e2e/_lab.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sleep } from "../../scripts/lab/topology.ts";
import { PLAN } from "../../scripts/lab/topologies.ts";
import { assertClean as assertFrameClean, dissectFile, fieldValues } from "../tshark.ts";
import { capture, e2e, metric, pingWorks, registered, withTopology } from "./_lab.ts";

/** MTU of every lab link; xtr1's path MTU. */
const LINK_MTU = 1400;
/** What xtr1 tells the source: 1400 minus outer IPv4 (20), UDP (8) and LISP (8). */
const INNER_MTU = LINK_MTU - 36;

for (const v6 of [false, true]) {
  const name = v6 ? "IPv6: packet too big" : "IPv4 with DF: fragmentation needed";
  e2e(`e2e mtu: xtr1 answers a packet too big for its path with ICMP, ${name}`, async () => {
    await withTopology(
      v6 ? "ipv6" : "basic",
      v6 ? "e2e-mtu6" : "e2e-mtu4",
      { mtu: LINK_MTU, rlocProbeInterval: 0 },
      async (ctx) => {
        const { lab } = ctx;
        const dst = v6 ? PLAN.hostB6 : PLAN.hostB4;
        const family = v6 ? "-6" : "-4";
        await registered(ctx, ["xtr1", "xtr2"]);
        await pingWorks(lab, "hosta", dst);
        const pcap = await lab.writeFile(`icmp${v6 ? 6 : 4}.pcap`, "");
        await capture(lab, "hosta", "eth0", v6 ? "icmp6" : "icmp", pcap);
        // Payload so that the whole packet is LINK_MTU bytes: too big once encapsulated.
        const size = LINK_MTU - (v6 ? 48 : 28);
        const big = await lab.exec("hosta", [
          "ping",
          family,
          "-n",
          "-Mdo", // one word: the lab runs it through a shell, where `do` is reserved
          "-c",
          "2",
          "-W",
          "1",
          "-s",
          String(size),
          dst,
        ]);
        assert.notEqual(big.code, 0, "the big ping gets no echo");
        assert.match(
          big.stdout + big.stderr,
          new RegExp(`mtu ?= ?${INNER_MTU}`),
          `ping reports MTU ${INNER_MTU}:\n${big.stdout}${big.stderr}`,
        );
        // The source learned it: a packet of that size gets through.
        const fits = INNER_MTU - (v6 ? 48 : 28);
        const ok = await lab.exec("hosta", [
          "ping",
          family,
          "-n",
          "-Mdo", // one word: the lab runs it through a shell, where `do` is reserved
          "-c",
          "2",
          "-W",
          "2",
          "-s",
          String(fits),
          dst,
        ]);
        assert.equal(ok.code, 0, `a ${INNER_MTU}-byte ping goes through:\n${ok.stdout}`);
        await sleep(1200); // the data-plane counters are posted every second
        await lab.stop("capture");
        const xtr1 = ctx.topo.lisp.find((p) => p.name === "xtr1")!;
        const sent = await metric(
          lab,
          xtr1.node,
          xtr1.api,
          "oor_dataplane_icmp_too_big_sent_total",
        );
        assert.ok(sent >= 1, `xtr1 counted ${sent} ICMP errors`);

        // Wireshark reads the errors cleanly: type, code, MTU, good checksum, the quoted packet.
        const frames = (await dissectFile(pcap)).filter((f) =>
          v6
            ? fieldValues(f, "icmpv6.type").includes("2")
            : fieldValues(f, "icmp.type").includes("3")
        );
        assert.ok(frames.length >= 1, "the capture holds the ICMP error");
        for (const f of frames) {
          assertFrameClean(f);
          const p = v6 ? "icmpv6" : "icmp";
          // The first of each is the error's; the quoted packet (an echo request) follows.
          const first = (field: string) => fieldValues(f, field)[0];
          if (!v6) assert.equal(first("icmp.code"), "4");
          assert.equal(first(`${p}.mtu`), String(INNER_MTU));
          assert.equal(first(`${p}.checksum.status`), "1", "a good ICMP checksum");
          const addr = v6 ? "ipv6" : "ip";
          assert.deepEqual(fieldValues(f, `${addr}.src`), [dst, PLAN[v6 ? "hostA6" : "hostA4"]]);
        }
      },
    );
  });
}
