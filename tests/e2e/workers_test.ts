/**
 * End-to-end test of several data-plane Workers (`[data-plane] workers =
 * 2` on both xTRs of the basic topology: hosta - xtr1 - router - xtr2 -
 * hostb): traffic of many flows arrives both ways and both Workers of each
 * xTR carry some of it, one flow's packets are all carried by one Worker
 * (at the ITR, which reads them from the TUN queue the kernel picks, and
 * at the ETR, which receives them on the socket the reuse-port program
 * picks), a TCP transfer arrives byte for byte both ways, and the xTRs stop
 * cleanly (every queue, socket and Worker closed, the TUN gone).
 *
 * Root and Linux only (see tests/e2e/_lab.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Lab } from "../../scripts/lab/topology.ts";
import { PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import { flowSpreadIndex } from "../../dataplane/spread.ts";
import {
  type Ctx,
  e2e,
  metric,
  pingWorks,
  PYTHON,
  registered,
  tcpTransferExact,
  withTopology,
} from "./_lab.ts";

/** Receives UDP on ADDRESS PORT (it never answers); prints how many arrived, as they do. */
const UDP_SINK = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(0.2)
print("listening", flush=True)
n = 0
while True:
    try:
        s.recv(2048)
        n += 1
    except socket.timeout:
        print("got %d" % n, flush=True)
`;

/** Sends COUNT datagrams of 200 bytes from each of FLOWS source ports (BASE, BASE+1...) to DST PORT, paced. */
const UDP_FLOWS = `
import socket, sys, time
dst, port, flows, count, base = [sys.argv[1]] + [int(a) for a in sys.argv[2:6]]
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(flows)]
for i, s in enumerate(socks):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", base + i))
for i in range(count):
    for s in socks:
        s.sendto(b"x" * 200, (dst, port))
    time.sleep(0.005)
print("sent", flush=True)
`;

/** Every xTR with two data-plane Workers. */
function twoWorkers(t: Topology): Topology {
  return {
    ...t,
    lisp: t.lisp.map((p) =>
      p.role === "xtr" ? { ...p, config: `${p.config}\n[data-plane]\nworkers = 2\n` } : p
    ),
  };
}

/** What each Worker of `name` carried so far (`oor_dataplane_worker_packets_total`). */
async function perWorker(ctx: Ctx, name: string): Promise<[number, number]> {
  const p = ctx.topo.lisp.find((x) => x.name === name)!;
  const w = (i: number) =>
    metric(ctx.lab, p.node, p.api, `oor_dataplane_worker_packets_total{worker="${i}"}`);
  return [await w(0), await w(1)];
}

/** Sends `count` datagrams on each of `flows` flows from `a` to `dst` (a sink there). */
async function udpFlows(
  lab: Lab,
  a: string,
  dst: string,
  flows: number,
  count: number,
  base: number,
) {
  const args = [dst, "9000", String(flows), String(count), String(base)];
  const r = await lab.exec(a, [PYTHON, "-c", UDP_FLOWS, ...args], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  await new Promise((r) => setTimeout(r, 1300)); // counters are posted every second
}

/** The Worker (of 2) the reuse-port program gives a LISP datagram of this inner UDP flow. */
function flowWorker(src: string, dst: string, sport: number, dport: number): number {
  const p = new Uint8Array(8 + 20 + 8);
  p[0] = 0x88;
  p.set([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0], 8);
  p.set(src.split(".").map(Number), 20);
  p.set(dst.split(".").map(Number), 24);
  p.set([sport >> 8, sport & 255, dport >> 8, dport & 255], 28);
  return flowSpreadIndex(p, 2);
}

/** What the UDP sink on `node` has received so far (its latest line). */
function received(lab: Lab, node: string): number {
  const m = [...lab.processes.get(`udp-sink-${node}`)!.readLog().matchAll(/got (\d+)/g)].at(-1);
  return m === undefined ? 0 : Number(m[1]);
}

function delta(after: [number, number], before: [number, number]): [number, number] {
  return [after[0] - before[0], after[1] - before[1]];
}

/** Sends `size` bytes over TCP from `a` to `bAddr` on `b`; asserts they arrived byte for byte. */
function transfer(lab: Lab, a: string, b: string, bAddr: string, size: number): Promise<void> {
  return tcpTransferExact(lab, a, b, bAddr, size, 60_000);
}

e2e(
  "e2e workers = 2: flows spread over both Workers both ways, one flow on one Worker, TCP byte for byte, clean stop",
  async () => {
    await withTopology("basic", "e2e-workers2", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      for (const x of ["xtr1", "xtr2"]) {
        const log = ctx.started.find((p) => p.name === x)!.readLog();
        assert.match(log, /dataplane-workers workers=2/, `${x} runs two Workers`);
        assert.doesNotMatch(log, /dataplane-spread-unavailable|dataplane-workers-reduced/);
      }
      await pingWorks(lab, "hosta", PLAN.hostB4);
      await pingWorks(lab, "hostb", PLAN.hostA4);
      for (const [node, addr] of [["hostb", PLAN.hostB4], ["hosta", PLAN.hostA4]] as const) {
        const sink = await lab.spawn(node, `udp-sink-${node}`, [
          PYTHON,
          "-c",
          UDP_SINK,
          addr,
          "9000",
        ]);
        await sink.waitForLog(/listening/, 5000);
      }
      await new Promise((r) => setTimeout(r, 1300));

      // One flow, 300 datagrams: one Worker of the ITR reads them all, one of the ETR receives them all.
      for (
        const [a, dst, itr, etr] of [
          ["hosta", PLAN.hostB4, "xtr1", "xtr2"],
          ["hostb", PLAN.hostA4, "xtr2", "xtr1"],
        ] as const
      ) {
        const before = [await perWorker(ctx, itr), await perWorker(ctx, etr)];
        await udpFlows(lab, a, dst, 1, 300, a === "hosta" ? 40000 : 40100);
        for (const [k, x] of [[0, itr], [1, etr]] as const) {
          const d = delta(await perWorker(ctx, x), before[k]!);
          console.log(`one flow ${a} -> ${x}: per Worker ${d}`);
          const [most, least] = d[0] >= d[1] ? [d[0], d[1]] : [d[1], d[0]];
          assert.ok(most >= 300, `${a}'s flow: one Worker of ${x} carried it all (${d})`);
          assert.ok(least < 10, `${a}'s flow: the other Worker of ${x} nothing of it (${d})`);
        }
      }

      // 32 flows of 100 datagrams each way: they arrive, both Workers of both xTRs carry some, and
      // the ETR's Workers carry exactly the flows the reuse-port program gives them (the ITR's
      // GSO sends carry one flow each, so none rides to the Worker of another).
      for (
        const [a, dst, b, src, etr] of [
          ["hosta", PLAN.hostB4, "hostb", PLAN.hostA4, "xtr2"],
          ["hostb", PLAN.hostA4, "hosta", PLAN.hostB4, "xtr1"],
        ] as const
      ) {
        const before = [await perWorker(ctx, "xtr1"), await perWorker(ctx, "xtr2")];
        const had = received(lab, b);
        const base = a === "hosta" ? 41000 : 42000;
        const expected = [0, 0];
        for (let i = 0; i < 32; i++) expected[flowWorker(src, dst, base + i, 9000)]! += 100;
        await udpFlows(lab, a, dst, 32, 100, base);
        const got = received(lab, b) - had;
        // UDP: on a busy shared machine some may be lost (a queue overflowing while a core is away).
        assert.ok(got >= 3200 * 0.9, `${a} -> ${b}: ${got} of 3200 datagrams of 32 flows arrived`);
        for (const [k, x] of [[0, "xtr1"], [1, "xtr2"]] as const) {
          const d = delta(await perWorker(ctx, x), before[k]!);
          console.log(`32 flows ${a} -> ${x}: per Worker ${d}`);
          assert.ok(d[0] + d[1] >= got, `${a}'s 32 flows through ${x} (${d})`);
          assert.ok(d[0] >= 100 && d[1] >= 100, `${a}'s flows: both Workers of ${x} (${d})`);
          if (x === etr) {
            for (const w of [0, 1]) {
              assert.ok(
                d[w]! <= expected[w]! && d[w]! >= expected[w]! - (3200 - got),
                `${x}'s Workers carry the flows the program gives each: ${d}, expected ${expected}`,
              );
            }
          }
        }
      }
      // The summed counters still count everything: what xtr2 decapsulated covers all of it.
      const p2 = ctx.topo.lisp.find((x) => x.name === "xtr2")!;
      const decap = await metric(lab, p2.node, p2.api, "oor_dataplane_decapsulated_packets_total");
      assert.ok(decap >= 300 + 3200, `xtr2 decapsulated ${decap}`);

      // A TCP connection both ways: each xTR carries data and acknowledgments on one Worker.
      for (
        const [a, b, bAddr] of [["hosta", "hostb", PLAN.hostB4], [
          "hostb",
          "hosta",
          PLAN.hostA4,
        ]] as const
      ) {
        const before = [await perWorker(ctx, "xtr1"), await perWorker(ctx, "xtr2")];
        await transfer(lab, a, b, bAddr, 16 << 20);
        await new Promise((r) => setTimeout(r, 1300));
        for (const [k, x] of [[0, "xtr1"], [1, "xtr2"]] as const) {
          const d = delta(await perWorker(ctx, x), before[k]!);
          console.log(`TCP ${a} -> ${b}, ${x}: per Worker ${d}`);
          const [most, least] = d[0] >= d[1] ? [d[0], d[1]] : [d[1], d[0]];
          assert.ok(least <= most * 0.02, `${a}'s TCP connection on one Worker of ${x} (${d})`);
        }
      }
    }, twoWorkers);
  },
);
