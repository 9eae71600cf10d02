/**
 * Shared parts of the end-to-end tests (tests/e2e*_test.ts): the skip
 * rule (root, Linux), a lab built from a topology of
 * scripts/lab/topologies.ts with a clean-shutdown check of every tunnel
 * router, and traffic helpers (ping until it works, a UDP echo server and
 * client in python3).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Lab, type LabProcess, waitFor } from "../../scripts/lab/topology.ts";
import { rootMissing, testNeeding } from "../prereq.ts";
import {
  makeTopology,
  type Topology,
  type TopologyName,
  type TopologyOptions,
  upTopology,
} from "../../scripts/lab/topologies.ts";

/** Why the end-to-end tests cannot run here, or undefined. */
export const SKIP = rootMissing();

/** Registers an end-to-end test (root and namespaces; see tests/prereq.ts when missing). */
export function e2e(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  needs?: string,
): void {
  testNeeding(SKIP ?? needs, {
    name,
    // Lab processes and dax commands outlive single awaits by design.
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}

export const PYTHON = (() => {
  for (const p of ["/usr/bin/python3", "/usr/local/bin/python3"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return "python3";
})();

/** UDP echo server: `echo.py ADDRESS PORT`. */
const UDP_ECHO = `
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(4096)
    s.sendto(d, a)
`;

/** UDP client: sends N datagrams, prints how many came back intact. */
const UDP_CLIENT = `
import socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(0.5)
ok = 0
for i in range(n):
    msg = ("oor-e2e-%d-" % i).encode() * 40
    s.sendto(msg, (dst, port))
    try:
        while True:
            d, _ = s.recvfrom(4096)
            if d == msg:
                ok += 1
                break
    except socket.timeout:
        pass
print(ok)
`;

export const UDP_PORT = 7777;

/**
 * Starts tshark on `node` writing what `filter` matches on `iface` to
 * `pcap`, and resolves once it captures: "Capturing on" is printed a
 * moment before the capture filter is attached, so it waits half a second
 * more (without that, a packet sent at once can be missed).
 */
export async function capture(
  lab: Lab,
  node: string,
  iface: string,
  filter: string,
  pcap: string,
  name = "capture",
): Promise<LabProcess> {
  const cap = await lab.spawn(node, name, ["tshark", "-i", iface, "-f", filter, "-w", pcap]);
  await cap.waitForLog(/Capturing on/, 10_000);
  await new Promise((r) => setTimeout(r, 500));
  return cap;
}

/** Starts a UDP echo server on `node` listening on `address`. */
export async function udpEcho(lab: Lab, node: string, address: string): Promise<LabProcess> {
  const p = await lab.spawn(node, `udp-echo-${node}`, [
    PYTHON,
    "-c",
    UDP_ECHO,
    address,
    String(UDP_PORT),
  ]);
  await p.waitForLog(/listening/, 5000);
  return p;
}

/** Sends `n` datagrams from `node` to `dst`; resolves to how many echoes came back. */
export async function udpRoundTrips(lab: Lab, node: string, dst: string, n = 10): Promise<number> {
  const r = await lab.exec(node, [PYTHON, "-c", UDP_CLIENT, dst, String(UDP_PORT), String(n)], {
    timeoutMs: n * 1000 + 5000,
  });
  return r.code === 0 ? Number(r.stdout.trim()) : 0;
}

/** Pings until one round trip succeeds (the first packets resolve the mapping). */
export async function pingWorks(
  lab: Lab,
  from: string,
  dst: string,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(`${from} pinging ${dst}`, () => lab.ping(from, dst, { count: 1, waitS: 1 }), {
    timeoutMs,
    intervalMs: 200,
  });
}

export interface Ctx {
  readonly lab: Lab;
  readonly topo: Topology;
  readonly started: readonly LabProcess[];
}

const TUNNEL_ROLES = new Set(["xtr", "mn", "rtr"]);

/**
 * Builds `name` as lab `labName`, starts every process, runs `fn`, then
 * stops the tunnel routers with SIGTERM and checks their namespaces are
 * clean; tears the lab down whatever happens.
 */
export async function withTopology(
  name: TopologyName,
  labName: string,
  opts: TopologyOptions,
  fn: (ctx: Ctx) => Promise<void>,
  edit: (t: Topology) => Topology = (t) => t,
): Promise<void> {
  const stateDir = await Deno.makeTempDir({ prefix: "oor-e2e-" });
  const topo = edit(makeTopology(name, opts));
  const { lab, started, skipped } = await upTopology(topo, {
    name: labName,
    stateDir,
    stopTimeoutMs: 8000,
  });
  try {
    assert.deepEqual(skipped.map((s) => s.spec.name), [], "every process of the topology runs");
    try {
      await fn({ lab, topo, started });
      // Shutdown: SIGTERM, then nothing of ours may be left in the namespaces.
      for (const p of topo.lisp.filter((p) => TUNNEL_ROLES.has(p.role))) {
        await lab.stop(p.name);
        const proc = lab.processes.get(p.name)!;
        assert.equal(proc.status?.code, 0, `${p.name} exited cleanly`);
        assert.match(proc.readLog(), /host-restored/, `${p.name} logged its clean-up`);
        await assertClean(lab, p.node);
      }
    } catch (e) {
      for (const p of lab.processes.values()) {
        const tail = p.readLog().split("\n").slice(-25).join("\n    ");
        console.error(`--- ${p.name} (${p.log}):\n    ${tail}`);
      }
      throw e;
    }
  } finally {
    await lab.down();
    if (Deno.env.get("OOR_E2E_KEEP") === "1") console.error(`logs kept in ${stateDir}/${labName}`);
    else await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}

/** Asserts that `node` has only the kernel's default rules, no table 100/x route, no lispTun*. */
export async function assertClean(lab: Lab, node: string): Promise<void> {
  const json = async (args: string[]) =>
    JSON.parse((await lab.execOk(node, ["ip", "-j", ...args])) || "[]") as Record<
      string,
      unknown
    >[];
  const rules4 = (await json(["-4", "rule"])).map((r) => r["priority"]);
  assert.deepEqual(
    rules4,
    [0, 32766, 32767],
    `${node}: IPv4 rules left: ${JSON.stringify(rules4)}`,
  );
  const rules6 = (await json(["-6", "rule"])).map((r) => r["priority"]);
  assert.deepEqual(rules6, [0, 32766], `${node}: IPv6 rules left: ${JSON.stringify(rules6)}`);
  for (const family of ["-4", "-6"]) {
    const routes = await json([family, "route", "show", "table", "all"]);
    const ours = routes.filter((r) => {
      const table = r["table"];
      const t = typeof table === "string" ? Number(table) : table;
      return String(r["dev"] ?? "").startsWith("lispTun") || t === 100 ||
        (typeof t === "number" && t >= 1000);
    });
    assert.deepEqual(ours, [], `${node}: routes left`);
  }
  const links = (await json(["link"])).map((l) => l["ifname"]);
  const tuns = links.filter((l) => String(l).startsWith("lispTun"));
  assert.deepEqual(tuns, [], `${node}: TUNs left`);
}

/** Waits until each tunnel router in `names` has a Map-Notify for every one of its mappings. */
export async function registered(ctx: Ctx, names: readonly string[]): Promise<void> {
  for (const n of names) {
    const p = ctx.started.find((s) => s.name === n);
    assert.ok(p !== undefined, `${n} started`);
    // Every mapping it has (one per instance id with [[instance]]s), not
    // just the first: a Map-Register of one instance may need its resend,
    // and a request for that one meanwhile is answered negatively (cached).
    const up = await p.waitForLog(/ tunnel-router-up .*\bmappings=(\d+)/, 20_000);
    const mappings = Number(up[1]);
    await waitFor(`${n}: all ${mappings} mappings registered`, () => {
      const prefixes = new Set<string>();
      for (const m of p.readLog().matchAll(/ registered prefix=(\S+)/g)) prefixes.add(m[1]!);
      return prefixes.size >= mappings ? true : undefined;
    }, { timeoutMs: 20_000 });
  }
}

export async function bothWays(lab: Lab, a: string, aAddr: string, b: string, bAddr: string) {
  await pingWorks(lab, a, bAddr);
  await pingWorks(lab, b, aAddr);
  assert.ok(await lab.ping(a, bAddr, { count: 5, waitS: 2 }), `${a} → ${bAddr} ICMP`);
  await udpEcho(lab, b, bAddr);
  await udpEcho(lab, a, aAddr);
  const ab = await udpRoundTrips(lab, a, bAddr);
  assert.ok(ab >= 8, `${a} → ${b} UDP: ${ab}/10 echoes`);
  const ba = await udpRoundTrips(lab, b, aAddr);
  assert.ok(ba >= 8, `${b} → ${a} UDP: ${ba}/10 echoes`);
}

/** A JSON GET on a process's HTTP API, from inside its namespace. */
export async function apiGet(lab: Lab, node: string, api: string, path: string): Promise<unknown> {
  return JSON.parse(await lab.execOk(node, ["curl", "-sf", `http://${api}${path}`]));
}

/** A series of a process's /metrics (0 when absent), read from inside its namespace. */
export async function metric(lab: Lab, node: string, api: string, series: string): Promise<number> {
  const text = await lab.execOk(node, ["curl", "-sf", `http://${api}/metrics`]);
  for (const line of text.split("\n")) {
    const sp = line.lastIndexOf(" ");
    if (sp > 0 && line.slice(0, sp) === series) return Number(line.slice(sp + 1));
  }
  return 0;
}

/** Receives one TCP connection on ADDRESS PORT; prints its length and SHA-256. */
const TCP_SINK = `
import hashlib, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    h.update(d)
    n += len(d)
print("received %d %s" % (n, h.hexdigest()), flush=True)
c.close()
`;

/** Sends SIZE pseudo-random bytes (from SEED) to DST PORT; prints their length and SHA-256. */
const TCP_SOURCE = `
import hashlib, random, socket, sys
dst, port, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = random.Random(seed).randbytes(size)
s = socket.create_connection((dst, port), timeout=60)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print("sent %d %s" % (size, hashlib.sha256(data).hexdigest()), flush=True)
`;

let tcpTransfers = 0;

/**
 * Sends `size` pseudo-random bytes over TCP from node `a` to `bAddr` on node
 * `b` (the sender gets `timeoutMs`); asserts they arrived whole and the same
 * (length and SHA-256 at both ends).
 */
export async function tcpTransferExact(
  lab: Lab,
  a: string,
  b: string,
  bAddr: string,
  size: number,
  timeoutMs: number,
): Promise<void> {
  const n = ++tcpTransfers;
  const port = String(7100 + n);
  const sink = await lab.spawn(b, `tcp-sink-${n}`, [PYTHON, "-c", TCP_SINK, bAddr, port]);
  await sink.waitForLog(/listening/, 10_000);
  const r = await lab.exec(a, [PYTHON, "-c", TCP_SOURCE, bAddr, port, String(size), String(n)], {
    timeoutMs,
  });
  assert.equal(r.code, 0, `the sender on ${a} failed:\n${r.stdout}${r.stderr}`);
  const sent = /sent (\d+) ([0-9a-f]{64})/.exec(r.stdout);
  assert.ok(sent !== null, r.stdout);
  await sink.waitForLog(/received \d+ [0-9a-f]{64}/, 30_000);
  const got = /received (\d+) ([0-9a-f]{64})/.exec(sink.readLog());
  assert.ok(got !== null);
  assert.equal(got[1], String(size), `${a} -> ${b}: all bytes arrived`);
  assert.equal(got[2], sent[2], `${a} -> ${b}: the same bytes (SHA-256)`);
}
