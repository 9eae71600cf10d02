/**
 * End-to-end tests of the overlay features beyond plain xTR-to-xTR
 * traffic, in the lab topologies of scripts/lab/topologies.ts:
 *
 * - tenants: two tenants with the same prefixes in iid 1 and iid 2 behind
 *   the same pair of xTRs and one map-server (LISP, then VXLAN-GPE):
 *   each tenant's traffic reaches only that tenant's hosts, both ways;
 * - destination filters (`destination-prefixes`) on an xtr and on an mn:
 *   only the listed destinations enter the TUN, the rest is routed
 *   natively;
 * - remote RLOCs: a database mapping naming an address that is on no local
 *   interface registers it, and the peer's map-cache holds and probes it.
 *
 * Root and Linux only (see tests/_e2e.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Lab, type LabProcess, sleep, waitFor } from "../../scripts/lab/topology.ts";
import { PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import {
  apiGet,
  bothWays,
  capture,
  e2e,
  metric,
  pingWorks,
  PYTHON,
  registered,
  udpEcho,
  udpRoundTrips,
  withTopology,
} from "./_lab.ts";

const TAG_PORT = 7788;

/** UDP echo that prefixes every reply with its tag: `tagged.py ADDRESS PORT TAG`. */
const TAGGED_ECHO = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
tag = sys.argv[3].encode() + b":"
print("listening", flush=True)
while True:
    d, a = s.recvfrom(4096)
    s.sendto(tag + d, a)
`;

/** Sends N datagrams; prints the tags of the replies, one per line. */
const TAGGED_CLIENT = `
import socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for i in range(n):
    msg = ("oor-tenant-%d" % i).encode()
    s.sendto(msg, (dst, port))
    try:
        d, _ = s.recvfrom(4096)
        tag, _, body = d.partition(b":")
        print(tag.decode() if body == msg else "garbled", flush=True)
    except socket.timeout:
        print("lost", flush=True)
`;

async function taggedEcho(lab: Lab, node: string, address: string, tag: string) {
  const p = await lab.spawn(node, `tagged-${node}`, [
    PYTHON,
    "-c",
    TAGGED_ECHO,
    address,
    String(TAG_PORT),
    tag,
  ]);
  await p.waitForLog(/listening/, 5000);
  return p;
}

/** The tags of the echoes `node` gets from `dst` for `n` datagrams. */
async function tagsFrom(lab: Lab, node: string, dst: string, n = 10): Promise<string[]> {
  const out = await lab.execOk(
    node,
    [PYTHON, "-c", TAGGED_CLIENT, dst, String(TAG_PORT), String(n)],
    { timeoutMs: n * 1000 + 5000 },
  );
  return out.trim().split("\n");
}

function apiOf(ctx: { topo: Topology }, name: string): { node: string; api: string } {
  const p = ctx.topo.lisp.find((x) => x.name === name);
  assert.ok(p !== undefined, `${name} in the topology`);
  return { node: p.node, api: p.api };
}

/** Packets the kernel sent into `dev` (what entered the overlay) on `node`. */
async function tunTx(lab: Lab, node: string, dev: string): Promise<number> {
  const j = JSON.parse(await lab.execOk(node, ["ip", "-s", "-j", "link", "show", "dev", dev]));
  return Number(j[0]?.stats64?.tx?.packets ?? 0);
}

// ---------------------------------------------------------------------------
// Instance ids.

for (const encapsulation of ["LISP", "VXLAN-GPE"] as const) {
  e2e(
    `e2e tenants (${encapsulation}): the same prefixes in iid 1 and iid 2 share the xTRs and the ms without mixing`,
    async () => {
      const lab = `e2e-iid-${encapsulation === "LISP" ? "lisp" : "gpe"}`;
      await withTopology("tenants", lab, { encapsulation }, async (ctx) => {
        const { lab } = ctx;
        await registered(ctx, ["xtr1", "xtr2"]);
        const A = PLAN.tenantHostA;
        const B = PLAN.tenantHostB;
        for (const t of [1, 2]) {
          await taggedEcho(lab, `t${t}a`, A, `tenant${t}`);
          await taggedEcho(lab, `t${t}b`, B, `tenant${t}`);
        }
        for (const t of [1, 2]) {
          await pingWorks(lab, `t${t}a`, B);
          await pingWorks(lab, `t${t}b`, A);
        }
        for (const t of [1, 2]) {
          for (const [from, dst] of [[`t${t}a`, B], [`t${t}b`, A]] as const) {
            const tags = await tagsFrom(lab, from, dst);
            const mine = tags.filter((x) => x === `tenant${t}`).length;
            assert.ok(mine >= 8, `${from} → ${dst}: ${mine}/10 echoes from tenant ${t}`);
            assert.deepEqual(
              tags.filter((x) => x !== `tenant${t}` && x !== "lost"),
              [],
              `${from} → ${dst}: no echo from another tenant`,
            );
          }
        }
        // Each xTR has one TUN per instance, and one map-cache entry per iid
        // for the remote 10.0.x.0/24.
        const links = await lab.execOk("xtr1", ["ip", "-o", "link", "show"]);
        assert.match(links, /lispTun0-1/);
        assert.match(links, /lispTun0-2/);
        const { node, api } = apiOf(ctx, "xtr1");
        const mc = await apiGet(lab, node, api, "/api/v1/map-cache") as {
          entries: { "eid-prefix": string; iid: number; "rloc-address": { address: string }[] }[];
        };
        const remote = mc.entries
          .filter((e) => e["eid-prefix"] === PLAN.tenantSiteB)
          .map((e) => `${e.iid} ${e["rloc-address"].map((r) => r.address).join(",")}`)
          .sort();
        assert.deepEqual(remote, [`1 ${PLAN.xtr2Rloc4}`, `2 ${PLAN.xtr2Rloc4}`]);
      });
    },
  );
}

// ---------------------------------------------------------------------------
// Destination filters.

/** Adds `destination-prefixes` to the config of the process `name`. */
function withDestinations(name: string, prefixes: readonly string[]) {
  return (t: Topology): Topology => ({
    ...t,
    lisp: t.lisp.map((p) =>
      p.name === name
        ? {
          ...p,
          config: p.config.replace(
            /^(operating-mode = .*\n)/m,
            `$1destination-prefixes = ${JSON.stringify(prefixes)}\n`,
          ),
        }
        : p
    ),
  });
}

/** A UDP listener on `node` that prints the source of every datagram it gets. */
const UDP_SINK = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(4096)
    print("from", a[0], flush=True)
`;

async function sendUdp(lab: Lab, node: string, dst: string, port: number, n: number) {
  await lab.execOk(node, [
    PYTHON,
    "-c",
    "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" +
    "for i in range(int(sys.argv[3])): s.sendto(b'x', (sys.argv[1], int(sys.argv[2])))",
    dst,
    String(port),
    String(n),
  ]);
}

e2e("e2e destination filter (xtr): only the listed prefixes enter the overlay", async () => {
  await withTopology("basic", "e2e-dst-xtr", {}, async (ctx) => {
    const { lab } = ctx;
    await registered(ctx, ["xtr1", "xtr2"]);
    const t100 = await lab.execOk("xtr1", ["ip", "-4", "route", "show", "table", "100"]);
    assert.match(t100, new RegExp(`^${PLAN.site2Eid4.replace(/\./g, "\\.")} dev lispTun0`, "m"));
    assert.doesNotMatch(t100, /default/, "no default route into the TUN");
    await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
    // Outside the filter: routed natively (the router's own address sees
    // hosta's EID as source), and nothing more entered the TUN.
    const sink = await lab.spawn("router", "sink", [
      PYTHON,
      "-c",
      UDP_SINK,
      PLAN.routerXtr2,
      "9999",
    ]);
    await sink.waitForLog(/listening/, 5000);
    const before = await tunTx(lab, "xtr1", "lispTun0");
    await sendUdp(lab, "hosta", PLAN.routerXtr2, 9999, 5);
    await waitFor("the router got hosta's datagrams natively", () => {
      return Promise.resolve(
        (sink.readLog().match(new RegExp(`from ${PLAN.hostA4.replace(/\./g, "\\.")}`, "g")) ?? [])
          .length >= 5,
      );
    }, { timeoutMs: 5000, intervalMs: 200 });
    assert.equal(await tunTx(lab, "xtr1", "lispTun0"), before, "nothing entered lispTun0");
    await lab.stop("sink");
  }, withDestinations("xtr1", [PLAN.site2Eid4]));
});

e2e("e2e destination filter (mn): only the listed prefixes go through the TUN", async () => {
  await withTopology("mn", "e2e-dst-mn", {}, async (ctx) => {
    const { lab } = ctx;
    await registered(ctx, ["mn", "xtr2"]);
    const routes = await lab.execOk("mn", ["ip", "-4", "route", "show", "dev", "lispTun0"]);
    assert.match(
      routes,
      new RegExp(
        `^${PLAN.site2Eid4.replace(/\./g, "\\.")} .*src ${PLAN.mnEid4.replace(/\./g, "\\.")}`,
        "m",
      ),
    );
    assert.doesNotMatch(routes, /0\.0\.0\.0\/1|128\.0\.0\.0\/1/, "no half routes");
    await pingWorks(lab, "mn", PLAN.hostB4);
    await udpEcho(lab, "hostb", PLAN.hostB4);
    const n = await udpRoundTrips(lab, "mn", PLAN.hostB4);
    assert.ok(n >= 8, `mn → hostb UDP: ${n}/10 echoes`);
    // The underlay is reached natively, from the RLOC, without the TUN.
    const before = await tunTx(lab, "mn", "lispTun0");
    assert.ok(await lab.ping("mn", PLAN.routerXtr2, { count: 3, waitS: 2 }), "native ping");
    assert.equal(await tunTx(lab, "mn", "lispTun0"), before, "nothing entered lispTun0");
  }, withDestinations("mn", [PLAN.site2Eid4]));
});

// ---------------------------------------------------------------------------
// Remote RLOCs.

/** An address on no interface of the lab (xtr2's link, host .3). */
const REMOTE_RLOC = "100.64.2.3";

e2e("e2e remote RLOC: a locator on no local interface is registered and probed", async () => {
  await withTopology("basic", "e2e-remote", { rlocProbeInterval: 2 }, async (ctx) => {
    const { lab } = ctx;
    await registered(ctx, ["xtr1", "xtr2"]);
    const xtr2 = ctx.started.find((p) => p.name === "xtr2")!;
    await xtr2.waitForLog(
      new RegExp(
        `registered prefix=10\\.2\\.0\\.0/24 .*rlocs=.*${REMOTE_RLOC.replace(/\./g, "\\.")}`,
      ),
      10_000,
    );
    const ms: LabProcess = ctx.started.find((p) => p.name === "ms")!;
    assert.match(
      ms.readLog(),
      new RegExp(
        `registered prefix=10\\.2\\.0\\.0/24 .*rlocs=[^ ]*${REMOTE_RLOC.replace(/\./g, "\\.")}`,
      ),
    );
    await pingWorks(lab, "hosta", PLAN.hostB4);
    // xtr1 holds both locators and probes the remote one like the other:
    // nothing answers there, so it goes down; the local one stays up.
    const { node, api } = apiOf(ctx, "xtr1");
    let states = "";
    await waitFor("xtr1 probed both locators of 10.2.0.0/24", async () => {
      const mc = await apiGet(lab, node, api, "/api/v1/map-cache") as {
        entries: { "eid-prefix": string; "rloc-address": { address: string; state: string }[] }[];
      };
      const e = mc.entries.find((x) => x["eid-prefix"] === PLAN.site2Eid4);
      states = (e?.["rloc-address"] ?? []).map((r) => `${r.address} ${r.state}`).sort().join(", ");
      return states === `${PLAN.xtr2Rloc4} up, ${REMOTE_RLOC} down`;
    }, { timeoutMs: 20_000, intervalMs: 500 }).catch((e) => {
      throw new Error(`${(e as Error).message}; last seen: ${states}`);
    });
    const xtr1 = ctx.started.find((p) => p.name === "xtr1")!;
    assert.match(
      xtr1.readLog(),
      new RegExp(`locator-down rloc=${REMOTE_RLOC.replace(/\./g, "\\.")}`),
    );
    // Traffic keeps using the one that answers.
    await sleep(500);
    assert.ok(await lab.ping("hosta", PLAN.hostB4, { count: 3, waitS: 2 }), "hosta → hostb");
  }, (t) => ({
    ...t,
    lisp: t.lisp.map((p) =>
      p.name === "xtr2"
        ? {
          ...p,
          config: p.config.replace(
            /(\[\[database-mapping\.rloc-address\]\]\naddress = "100\.64\.2\.2"\npriority = 1\nweight = 100\n)/,
            `$1\n[[database-mapping.rloc-address]]\naddress = "${REMOTE_RLOC}"\npriority = 2\nweight = 100\n`,
          ),
        }
        : p
    ),
  }));
});

// ---------------------------------------------------------------------------
// Map-server extras: ddt-ms-peers in MS-ACK referrals.

/**
 * The ddt lab with site 1 served by both map-servers: xtr1 registers with
 * ms1 and ms2, each names the other in `ddt-ms-peers` (complete).
 */
function withMsPeers(t: Topology): Topology {
  const site1 = `[[lisp-site]]\neid-prefix = "${PLAN.site1Eid4}"\niid = 0\nkey-type = 2\n` +
    `key = "${PLAN.site1Key}"\naccept-more-specifics = false\n`;
  const peers = (other: string) => `ddt-ms-peers = ["${other}"]\nddt-ms-peers-complete = true\n`;
  return {
    ...t,
    lisp: t.lisp.map((p) => {
      if (p.name === "ms1") {
        assert.ok(p.config.includes(site1), "ms1 has the site-1 table this edit expects");
        return { ...p, config: p.config.replace(site1, site1 + peers(PLAN.ms2)) };
      }
      if (p.name === "ms2") return { ...p, config: `${p.config}\n${site1}${peers(PLAN.ms1)}` };
      if (p.name === "xtr1") {
        return {
          ...p,
          config: `${p.config}\n[[map-server]]\naddress = "${PLAN.ms2}"\nkey-type = 2\n` +
            `key = "${PLAN.site1Key}"\n`,
        };
      }
      return p;
    }),
  };
}

e2e("e2e ddt: MS-ACK referrals carry the site's ddt-ms-peers, and the tree resolves", async () => {
  const pcap = await Deno.makeTempFile({ prefix: "oor-e2e-msack-", suffix: ".pcap" });
  try {
    await withTopology("ddt", "e2e-ddt-peers", {}, async (ctx) => {
      const { lab } = ctx;
      const xtr1 = ctx.started.find((p) => p.name === "xtr1")!;
      // With both map-servers: ms1's MS-ACK is what the capture below checks.
      for (const ms of [PLAN.ms1, PLAN.ms2]) {
        await xtr1.waitForLog(
          new RegExp(`registered .*mapServer=${ms.replace(/\./g, "\\.")}`),
          20_000,
        );
      }
      await registered(ctx, ["xtr2"]);
      // ms1's referrals, as they leave it.
      await capture(lab, "ms1", "eth0", `udp and src host ${PLAN.ms1} and src port 4342`, pcap);
      await bothWays(lab, "hostb", PLAN.hostB4, "hosta", PLAN.hostA4);
      await lab.stop("capture");
      const fields = await lab.execOk("ms1", [
        "tshark",
        "-r",
        pcap,
        "-Y",
        "lisp.referral.incomplete",
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-e",
        "lisp.mapping.act",
        "-e",
        "lisp.referral.incomplete",
        "-e",
        "lisp.loc.locator",
      ]);
      const referrals = fields.trim().split("\n").filter((l) => l !== "");
      assert.ok(referrals.length > 0, "ms1 sent Map-Referrals");
      for (const r of referrals) {
        const [act, incomplete, locators] = r.split(";");
        // Action 2 is MS-ACK (RFC 8111 §6.4.1); I bit clear: the set is complete.
        assert.deepEqual(
          [act, incomplete, locators?.split(",").sort()],
          ["2", "0", [PLAN.ms1, PLAN.ms2].sort()],
          `referral ${r}`,
        );
      }
    }, withMsPeers);
  } finally {
    await Deno.remove(pcap).catch(() => {});
  }
});

e2e(
  "e2e elp: traffic to site 2 crosses rtr then rtr2, as its explicit locator path says",
  async () => {
    const pcap = await Deno.makeTempFile({ prefix: "oor-e2e-elp-", suffix: ".pcap" });
    try {
      await withTopology("elp", "e2e-elp", {}, async (ctx) => {
        const { lab } = ctx;
        await registered(ctx, ["xtr1", "xtr2"]);
        // The map-server holds site 2 with its path (an ELP LCAF locator).
        const ms = ctx.started.find((p) => p.name === "ms")!;
        await ms.waitForLog(
          new RegExp(
            `registered .*prefix=10\\.2\\.0\\.0/24 .*rlocs="elp\\{${
              [PLAN.rtrRloc4, PLAN.rtr2Rloc4, PLAN.xtr2Rloc4].join(",").replaceAll(".", "\\.")
            }\\}"`,
          ),
          5_000,
        );
        // Every LISP data packet the router forwards, as it enters the router.
        await capture(lab, "router", "any", "udp dst port 4341 and inbound", pcap);
        const before = new Map<string, number>();
        for (const r of ["rtr", "rtr2"]) {
          const { node, api } = apiOf(ctx, r);
          before.set(r, await metric(lab, node, api, "oor_dataplane_decapsulated_packets_total"));
        }
        await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
        await sleep(1500); // the data-plane counters are posted every second
        await lab.stop("capture");
        // Both RTRs decapsulated and re-encapsulated the packets to hostb.
        for (const r of ["rtr", "rtr2"]) {
          const { node, api } = apiOf(ctx, r);
          const dec = (await metric(lab, node, api, "oor_dataplane_decapsulated_packets_total")) -
            before.get(r)!;
          const enc = await metric(lab, node, api, "oor_dataplane_encapsulated_packets_total");
          assert.ok(dec >= 20, `${r} decapsulated ${dec} packets`);
          assert.ok(enc >= 20, `${r} re-encapsulated ${enc} packets`);
        }
        // The outer hops of every packet, by inner destination: hosta → hostb
        // goes xtr1 → rtr → rtr2 → xtr2, hostb → hosta straight back.
        const fields = await lab.execOk("router", [
          "tshark",
          "-r",
          pcap,
          "-Y",
          "lisp-data",
          "-T",
          "fields",
          "-E",
          "separator=;",
          "-e",
          "ip.src",
          "-e",
          "ip.dst",
        ]);
        const hops = new Map<string, Set<string>>();
        for (const line of fields.trim().split("\n").filter((l) => l !== "")) {
          const [src, dst] = line.split(";");
          const [outerSrc, innerSrc] = src!.split(",");
          const [outerDst, innerDst] = dst!.split(",");
          assert.ok(innerSrc !== undefined && innerDst !== undefined, `an inner packet in ${line}`);
          const k = `${innerSrc}>${innerDst}`;
          if (!hops.has(k)) hops.set(k, new Set());
          hops.get(k)!.add(`${outerSrc}>${outerDst}`);
        }
        assert.deepEqual(
          [...(hops.get(`${PLAN.hostA4}>${PLAN.hostB4}`) ?? [])].sort(),
          [
            `${PLAN.xtr1Rloc4}>${PLAN.rtrRloc4}`,
            `${PLAN.rtrRloc4}>${PLAN.rtr2Rloc4}`,
            `${PLAN.rtr2Rloc4}>${PLAN.xtr2Rloc4}`,
          ].sort(),
          "hosta → hostb: xtr1 → rtr → rtr2 → xtr2",
        );
        assert.deepEqual(
          [...(hops.get(`${PLAN.hostB4}>${PLAN.hostA4}`) ?? [])],
          [`${PLAN.xtr2Rloc4}>${PLAN.xtr1Rloc4}`],
          "hostb → hosta: straight from xtr2 to xtr1",
        );
      });
    } finally {
      await Deno.remove(pcap).catch(() => {});
    }
  },
);
