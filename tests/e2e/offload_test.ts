/**
 * End-to-end tests of the data-plane offloads (issue 15): a TCP transfer of
 * 32 MiB through the overlay (hosta - xtr1 - router - xtr2 - hostb)
 * arrives byte for byte (SHA-256) in both directions, with `[data-plane]
 * offloads` on and off; with them on, the counters show TSO super-packets
 * cut into segments, UDP GSO sends, UDP GRO receives and merged TUN writes,
 * and Wireshark finds every inner IPv4 and TCP checksum (and the outer
 * IPv4 one) right on the underlay. With the links at MTU 1400, a TCP transfer through an xTR
 * whose TUN says 1440 still arrives whole: the super-packets too big for
 * the path get the ICMP error that teaches the sender the path MTU.
 *
 * With offloads on, the underlay is set up as real NICs would behave: the
 * xTRs' uplinks cut their UDP GSO sends into datagrams (so that the router
 * forwards, and tshark sees, ordinary datagrams) and coalesce what they
 * receive (GRO), which veth does only from a peer without TSO.
 *
 * Root and Linux only (see tests/e2e/_lab.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Lab } from "../../scripts/lab/topology.ts";
import { PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import { assertClean as assertFrameClean, dissectFile, fieldValues } from "../tshark.ts";
import {
  type Ctx,
  e2e,
  metric,
  pingWorks,
  registered,
  tcpTransferExact,
  withTopology,
} from "./_lab.ts";
import { OOR_MISSING, oorXtrConfig, startOor } from "./_oor.ts";

const SIZE = 32 << 20;

/** Sends `size` bytes over TCP from `a` to `bAddr` on `b`; asserts they arrived byte for byte. */
function transfer(lab: Lab, a: string, b: string, bAddr: string, size = SIZE): Promise<void> {
  return tcpTransferExact(lab, a, b, bAddr, size, 90_000);
}

/** Every xTR config with `[data-plane] offloads = <on>`. */
function withOffloads(on: boolean): (t: Topology) => Topology {
  return (t) => ({
    ...t,
    lisp: t.lisp.map((p) =>
      p.role === "xtr" ? { ...p, config: `${p.config}\n[data-plane]\noffloads = ${on}\n` } : p
    ),
  });
}

/** A data-plane counter of xTR `name`. */
function counter(ctx: Ctx, name: string, key: string): Promise<number> {
  const p = ctx.topo.lisp.find((x) => x.name === name)!;
  return metric(ctx.lab, p.node, p.api, `oor_dataplane_${key}_total`);
}

/** The uplinks behave as NICs: GSO sends cut on the way out, GRO on the way in (see above). */
async function nicLikeUplinks(lab: Lab): Promise<void> {
  for (const x of ["xtr1", "xtr2"]) {
    await lab.execOk(x, ["ethtool", "-K", "rloc0", "tx-udp-segmentation", "off", "gro", "on"]);
    await lab.execOk("router", ["ethtool", "-K", `to-${x}`, "tso", "off"]);
  }
}

e2e(
  "e2e offloads on: TCP arrives byte for byte both ways through TSO, UDP GSO/GRO and merged TUN writes; inner checksums right on the wire",
  async () => {
    await withTopology("basic", "e2e-offl-on", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      for (const x of ["xtr1", "xtr2"]) {
        const log = ctx.started.find((p) => p.name === x)!.readLog();
        assert.match(log, /dataplane-offloads wanted=true tun="csum tso4 tso6/, `${x}'s offloads`);
      }
      await nicLikeUplinks(lab);
      await pingWorks(lab, "hosta", PLAN.hostB4);
      await pingWorks(lab, "hostb", PLAN.hostA4);
      // The underlay, between the router and xtr2: 400 LISP datagrams.
      const pcap = await lab.writeFile("underlay.pcap", "");
      const cap = await lab.spawn("router", "capture", [
        "tshark",
        "-i",
        "to-xtr2",
        "-f",
        "udp port 4341 and greater 1000",
        "-c",
        "400",
        "-w",
        pcap,
      ]);
      await cap.waitForLog(/Capturing on/, 10_000);
      await new Promise((r) => setTimeout(r, 500));
      await transfer(lab, "hosta", "hostb", PLAN.hostB4);
      await transfer(lab, "hostb", "hosta", PLAN.hostA4);
      await new Promise((r) => setTimeout(r, 1200)); // counters are posted every second
      for (const [itr, etr] of [["xtr1", "xtr2"], ["xtr2", "xtr1"]] as const) {
        assert.ok(await counter(ctx, itr, "tun_read_gso") > 0, `${itr} read TSO super-packets`);
        assert.ok(await counter(ctx, itr, "udp_gso_sends") > 0, `${itr} sent with UDP GSO`);
        assert.ok(await counter(ctx, etr, "udp_gro_datagrams") > 0, `${etr} got UDP GRO`);
        assert.ok(await counter(ctx, etr, "tun_written_gso") > 0, `${etr} merged TUN writes`);
        assert.equal(await counter(ctx, etr, "merge_bad_checksums"), 0);
        const p = ctx.topo.lisp.find((x) => x.name === itr)!;
        const series = 'oor_dataplane_dropped_packets_total{reason="bad-offload"}';
        assert.equal(
          await metric(lab, p.node, p.api, series),
          0,
          `${itr}: nothing it could not split`,
        );
      }
      await lab.stop("capture");
      // The outer UDP checksum is not checked: veth offloads it, so a capture sees the partial
      // sum the kernel leaves for the "NIC" (Wireshark's well-known offload artifact); the
      // receiving kernel trusts it. The inner checksums are the data plane's own work.
      const frames = await dissectFile(pcap, {
        preferences: [
          "udp.check_checksum:FALSE",
          "tcp.check_checksum:TRUE",
          "tcp.analyze_sequence_numbers:FALSE",
        ],
      });
      const tcp = frames.filter((f) => fieldValues(f, "tcp.checksum.status").length > 0);
      assert.ok(tcp.length >= 300, `${tcp.length} LISP datagrams with TCP inside`);
      for (const f of tcp) {
        assertFrameClean(f);
        // Outer and inner IPv4 header checksums and the inner TCP one: all good.
        assert.deepEqual(fieldValues(f, "ip.checksum.status"), ["1", "1"], `frame ${f.number}`);
        assert.deepEqual(fieldValues(f, "tcp.checksum.status"), ["1"], `frame ${f.number}`);
        const ipLen = Number(fieldValues(f, "ip.len")[1]);
        assert.ok(ipLen <= 1500 - 36, `frame ${f.number}: inner packet of ${ipLen} bytes`);
      }
    }, withOffloads(true));
  },
);

e2e(
  "e2e offloads off: TCP arrives byte for byte both ways, one plain packet at a time",
  async () => {
    await withTopology("basic", "e2e-offl-off", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      for (const x of ["xtr1", "xtr2"]) {
        const log = ctx.started.find((p) => p.name === x)!.readLog();
        assert.match(log, /dataplane-offloads wanted=false tun=none/, `${x}'s offloads`);
      }
      await pingWorks(lab, "hosta", PLAN.hostB4);
      await pingWorks(lab, "hostb", PLAN.hostA4);
      await transfer(lab, "hosta", "hostb", PLAN.hostB4);
      await transfer(lab, "hostb", "hosta", PLAN.hostA4);
      await new Promise((r) => setTimeout(r, 1200));
      for (const x of ["xtr1", "xtr2"]) {
        assert.ok(await counter(ctx, x, "encapsulated_packets") > SIZE / 1500, `${x} carried it`);
        for (
          const key of ["tun_read_gso", "udp_gso_sends", "udp_gro_datagrams", "tun_written_gso"]
        ) {
          assert.equal(await counter(ctx, x, key), 0, `${x}: ${key}`);
        }
      }
    }, withOffloads(false));
  },
);

e2e(
  "e2e offloads on, links at MTU 1400: TCP super-packets too big for the path get ICMP, and the transfer arrives whole",
  async () => {
    await withTopology(
      "basic",
      "e2e-offl-mtu",
      { rlocProbeInterval: 0, mtu: 1400 },
      async (ctx) => {
        const { lab } = ctx;
        await registered(ctx, ["xtr1", "xtr2"]);
        await pingWorks(lab, "hosta", PLAN.hostB4);
        await lab.execOk("hosta", ["ip", "route", "flush", "cache"]);
        await transfer(lab, "hosta", "hostb", PLAN.hostB4);
        await new Promise((r) => setTimeout(r, 1200));
        const icmp = await counter(ctx, "xtr1", "icmp_too_big_sent");
        assert.ok(icmp >= 1, `xtr1 sent ${icmp} ICMP errors`);
        assert.ok(await counter(ctx, "xtr1", "tun_read_gso") > 0, "TSO super-packets");
      },
      withOffloads(true),
    );
  },
);

/**
 * OOR 1.3.0's xTR at site 1 (it reads data from a raw socket: no GRO, no
 * GSO), ours at site 2 with offloads on, and `udp-gso` as given. With it
 * on, xtr2's uplink cuts the GSO sends as a NIC would (over plain veth they
 * would reach OOR's raw socket whole, which it cannot read: hence the key).
 */
async function throughOor(labName: string, udpGso: boolean): Promise<void> {
  const edit = (t: Topology): Topology => {
    const on = withOffloads(true)(t);
    return {
      ...on,
      lisp: on.lisp.filter((p) => p.name !== "xtr1").map((p) => ({
        ...p,
        // OOR has HMAC-SHA-1-96 only.
        config: p.config.replaceAll("key-type = 2", "key-type = 1") +
          (p.name === "xtr2" ? `udp-gso = ${udpGso}\n` : ""),
      })),
    };
  };
  await withTopology("basic", labName, { rlocProbeInterval: 0 }, async (ctx) => {
    const { lab } = ctx;
    const oor = await startOor(
      lab,
      "xtr1",
      "oor-xtr1",
      oorXtrConfig({
        mapResolver: PLAN.mr4,
        mapServer: PLAN.ms4,
        key: PLAN.site1Key,
        mappings: [{ eid: PLAN.site1Eid4, iface: "rloc0" }],
      }),
    );
    await oor.waitForLog(/Map-Notify message confirms correct registration/);
    await registered(ctx, ["xtr2"]);
    const log = ctx.started.find((p) => p.name === "xtr2")!.readLog();
    assert.match(log, new RegExp(`udp-gso=${udpGso ? '"ipv4 ipv6"' : "none"}`));
    if (udpGso) {
      await lab.execOk("xtr2", ["ethtool", "-K", "rloc0", "tx-udp-segmentation", "off"]);
    }
    await pingWorks(lab, "hosta", PLAN.hostB4);
    await pingWorks(lab, "hostb", PLAN.hostA4);
    // xtr2 cuts hostb's TSO super-packets and sends the segments; OOR takes them one by one.
    await transfer(lab, "hostb", "hosta", PLAN.hostA4, 8 << 20);
    await transfer(lab, "hosta", "hostb", PLAN.hostB4, 8 << 20);
    await new Promise((r) => setTimeout(r, 1200));
    assert.ok(await counter(ctx, "xtr2", "tun_read_gso") > 0, "xtr2 cut TSO super-packets");
    assert.ok(await counter(ctx, "xtr2", "tun_written_gso") > 0, "xtr2 merged OOR's segments");
    const gso = await counter(ctx, "xtr2", "udp_gso_sends");
    assert.ok(udpGso ? gso > 0 : gso === 0, `xtr2 made ${gso} GSO sends`);
  }, edit);
}

e2e(
  "e2e offloads on, with OOR 1.3.0's xTR (no GSO, no GRO) at site 1: TCP byte for byte both ways, GSO sends cut by the uplink",
  () => throughOor("e2e-offl-oor", true),
  OOR_MISSING,
);

e2e(
  "e2e offloads on, udp-gso = false, with OOR 1.3.0's xTR at site 1 over plain veth: TCP byte for byte both ways",
  () => throughOor("e2e-offl-oor2", false),
  OOR_MISSING,
);
