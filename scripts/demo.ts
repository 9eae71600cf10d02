/**
 * `deno task demo` (`sudo npm run demo`): a LISP overlay on this machine in
 * one command.
 *
 * Builds the basic lab (hosta - xtr1 - router + ms/mr - xtr2 - hostb, see
 * scripts/lab/topologies.ts), waits until both xTRs are registered with the
 * map-server, sends pings and UDP datagrams from hosta (10.1.0.10) to hostb
 * (10.2.0.10) through the overlay, prints what happened (traffic, xtr1's
 * map-cache, the data-plane counters, the map-server's registrations, the
 * logs and the API) and tears the lab down, unless `--keep`.
 *
 * ```
 * deno task demo [--keep] [--name LAB]
 * ```
 *
 * Before building anything it checks that the commands it runs are there
 * ({@link PREREQUISITES}: ip, ping, curl, python3) and names the Debian
 * package of each one missing: without ping it would only time out waiting
 * for a first ping, without curl waiting for registrations that did happen.
 *
 * Exit code: 0 when the traffic got through, 1 when it did not (or the lab
 * failed), 2 when not run as root, a command is missing, or on bad
 * arguments. All traffic stays inside the lab's network namespaces.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isRoot, type Lab, LabError, waitFor } from "./lab/topology.ts";
import { makeTopology, PLAN, REPO_ROOT, type Topology, upTopology } from "./lab/topologies.ts";

const EXIT_USAGE = 2;

const USAGE = `Usage: deno task demo [--keep] [--name LAB]

Builds the basic LISP lab in network namespaces (needs root), sends pings and
UDP datagrams from hosta (${PLAN.hostA4}) to hostb (${PLAN.hostB4}) through the
overlay, prints the map-cache, counters and registrations, and tears it down.

  --keep        leave the lab running (tear down with: deno task lab down <LAB>)
  --name LAB    lab name (default basic): namespaces oor-<LAB>-<node>
`;

/** Where python3 is when not on the PATH (sudo may reset the PATH). */
const PYTHON_PLACES = ["/usr/bin/python3", "/usr/local/bin/python3"];

const PYTHON = (() => {
  for (const p of PYTHON_PLACES) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return "python3";
})();

/** The commands the demo runs, with the Debian package of each. */
export const PREREQUISITES: readonly { readonly command: string; readonly debian: string }[] = [
  { command: "ip", debian: "iproute2" },
  { command: "ping", debian: "iputils-ping" },
  { command: "curl", debian: "curl" },
  { command: "python3", debian: "python3" },
];

/** Whether `path` is an executable file. */
function executable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * The prerequisites that are not on `searchPath` (a PATH value), python3
 * also looked for where {@link PYTHON} looks.
 */
export function missingPrerequisites(
  searchPath: string,
): { readonly command: string; readonly debian: string }[] {
  const dirs = searchPath.split(":").filter((d) => d !== "");
  return PREREQUISITES.filter(({ command }) => {
    if (dirs.some((d) => executable(`${d}/${command}`))) return false;
    return !(command === "python3" && PYTHON_PLACES.some(executable));
  });
}

/** UDP echo server: `ADDRESS PORT`. */
const UDP_ECHO = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(4096)
    print("echo %d bytes from %s:%d" % (len(d), a[0], a[1]), flush=True)
    s.sendto(d, a)
`;

/** UDP client: `DST PORT N`; sends N datagrams, prints how many came back intact. */
const UDP_CLIENT = `
import socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
ok = 0
for i in range(n):
    msg = ("oor-demo-%d " % i).encode() * 20
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

const UDP_PORT = 7777;
const PINGS = 5;
const DATAGRAMS = 5;
const API_PORT = 9942;

function out(line = ""): void {
  console.log(line);
}

function step(what: string): void {
  out(`==> ${what}`);
}

/** GETs `path` from the API of the process running in `node`, with curl inside its namespace. */
async function api<T>(lab: Lab, node: string, path: string): Promise<T> {
  const body = await lab.execOk(node, [
    "curl",
    "-sS",
    "--max-time",
    "3",
    `http://127.0.0.1:${API_PORT}${path}`,
  ]);
  return JSON.parse(body) as T;
}

interface Locator {
  readonly address: string;
  readonly priority: number;
  readonly weight: number;
  readonly state?: string;
}
interface MapCacheEntry {
  readonly "eid-prefix": string;
  readonly iid: number;
  readonly kind: string;
  readonly static: boolean;
  readonly ttl?: number;
  readonly action?: string;
  readonly "rloc-address": readonly Locator[];
}
interface Registration {
  readonly "eid-prefix": string;
  readonly iid: number;
  readonly source: string;
  readonly from?: string;
  readonly "rloc-address": readonly Locator[];
}
interface Sites {
  readonly registrations: readonly Registration[];
}

/**
 * Sums the samples of `oor_*_<name>` (or `..._<name>_total`) in a
 * Prometheus text body: `encapsulated_packets` matches
 * `oor_dataplane_encapsulated_packets_total`.
 */
function metric(text: string, name: string): number | undefined {
  const re = new RegExp(`^oor_\\w*?_${name}(?:_total)?(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "gm");
  let sum: number | undefined;
  for (const m of text.matchAll(re)) sum = (sum ?? 0) + Number(m[1]);
  return sum;
}

/** Prefixes registered by xTRs (not the map-server's static ones). */
async function dynamicRegistrations(lab: Lab): Promise<Registration[]> {
  const sites = await api<Sites>(lab, "ms", "/api/v1/sites");
  return sites.registrations.filter((r) => r.source !== "static");
}

function locators(rlocs: readonly Locator[]): string {
  return rlocs.map((l) =>
    `${l.address} (p${l.priority}/w${l.weight}${l.state !== undefined ? `, ${l.state}` : ""})`
  ).join(", ");
}

interface Traffic {
  readonly pingSent: number;
  readonly pingReceived: number;
  readonly rtt?: string;
  readonly udpSent: number;
  readonly udpEchoed: number;
}

async function sendTraffic(lab: Lab): Promise<Traffic> {
  // The first packets trigger the Map-Request; wait until a ping goes through.
  await waitFor(`a first ping from hosta to ${PLAN.hostB4}`, async () => {
    return (await lab.ping("hosta", PLAN.hostB4, { count: 1, waitS: 1 })) ? true : undefined;
  }, { timeoutMs: 15_000, intervalMs: 200 });
  const p = await lab.exec("hosta", [
    "ping",
    "-n",
    "-q",
    "-c",
    String(PINGS),
    "-i",
    "0.2",
    "-W",
    "1",
    PLAN.hostB4,
  ], { timeoutMs: 15_000 });
  const m = p.stdout.match(/(\d+) packets transmitted, (\d+) received/);
  const rtt = p.stdout.match(/= ([\d.]+)\/([\d.]+)\/([\d.]+)/);
  const echo = await lab.spawn("hostb", "udp-echo", [
    PYTHON,
    "-c",
    UDP_ECHO,
    PLAN.hostB4,
    String(UDP_PORT),
  ]);
  await echo.waitForLog(/listening/, 5000);
  const u = await lab.exec("hosta", [
    PYTHON,
    "-c",
    UDP_CLIENT,
    PLAN.hostB4,
    String(UDP_PORT),
    String(DATAGRAMS),
  ], { timeoutMs: DATAGRAMS * 1000 + 5000 });
  await lab.stop("udp-echo");
  return {
    pingSent: Number(m?.[1] ?? PINGS),
    pingReceived: Number(m?.[2] ?? 0),
    ...(rtt !== null ? { rtt: `${rtt[1]}/${rtt[2]}/${rtt[3]} ms` } : {}),
    udpSent: DATAGRAMS,
    udpEchoed: u.code === 0 ? Number(u.stdout.trim()) || 0 : 0,
  };
}

/** The data-plane counters in the `/metrics` of the xTR in `node`. */
async function dataCounters(
  lab: Lab,
  node: string,
): Promise<{ encapsulated?: number; decapsulated?: number }> {
  const text = await lab.execOk(node, [
    "curl",
    "-sS",
    "--max-time",
    "3",
    `http://127.0.0.1:${API_PORT}/metrics`,
  ]);
  const encapsulated = metric(text, "encapsulated_packets");
  const decapsulated = metric(text, "decapsulated_packets");
  return {
    ...(encapsulated !== undefined ? { encapsulated } : {}),
    ...(decapsulated !== undefined ? { decapsulated } : {}),
  };
}

async function summary(lab: Lab, topo: Topology, t: Traffic): Promise<void> {
  out();
  out("Traffic from hosta to hostb through the LISP overlay:");
  out(
    `  ICMP: ${t.pingSent} pings ${PLAN.hostA4} -> ${PLAN.hostB4}, ${t.pingReceived} replies` +
      (t.rtt !== undefined ? ` (rtt min/avg/max ${t.rtt})` : ""),
  );
  out(
    `  UDP:  ${t.udpSent} datagrams to ${PLAN.hostB4}:${UDP_PORT}, ${t.udpEchoed} echoed back intact`,
  );

  out();
  const mc = await api<{ entries?: MapCacheEntry[]; error?: string }>(
    lab,
    "xtr1",
    "/api/v1/map-cache",
  );
  if (mc.entries === undefined) {
    // An xtr whose API does not serve its map-cache: what its log says.
    out(`xtr1's map-cache (from xtr1.log; the API said: ${mc.error ?? "no entries"}):`);
    const added = [
      ...lab.processes.get("xtr1")?.readLog().matchAll(
        /map-cache-added prefix=(\S+)(?: action=(\S+))?(?: rlocs=(\S+))?(?: ttl=(\d+))?/g,
      ) ?? [],
    ];
    if (added.length === 0) out("  (empty)");
    for (const m of added) {
      out(`  ${m[1]} -> ${m[3] ?? "no locators"}  [${m[2] ?? "learned"}, ttl ${m[4] ?? "?"} min]`);
    }
  } else {
    out(`xtr1's map-cache (GET /api/v1/map-cache):`);
    if (mc.entries.length === 0) out("  (empty)");
  }
  for (const e of mc.entries ?? []) {
    const what = e.kind === "negative"
      ? `negative, ${e.action ?? "no action"}`
      : locators(e["rloc-address"]);
    const extra = [e.static ? "static" : "learned", e.ttl !== undefined ? `ttl ${e.ttl} min` : ""]
      .filter((s) => s !== "").join(", ");
    out(`  ${e["eid-prefix"]} (iid ${e.iid}) -> ${what}  [${extra}]`);
  }

  out();
  out("Data-plane counters (GET /metrics):");
  for (const node of ["xtr1", "xtr2"]) {
    const c = await dataCounters(lab, node);
    const n = (v: number | undefined) => v === undefined ? "n/a" : String(v);
    out(`  ${node}: encapsulated ${n(c.encapsulated)}, decapsulated ${n(c.decapsulated)}`);
  }

  out();
  out("Map-server registrations (GET /api/v1/sites on the ms):");
  const sites = await api<Sites>(lab, "ms", "/api/v1/sites");
  for (const r of sites.registrations) {
    const by = r.source === "static" ? "static" : `registered${r.from ? ` by ${r.from}` : ""}`;
    out(`  ${r["eid-prefix"]} (iid ${r.iid}) -> ${locators(r["rloc-address"])}  [${by}]`);
  }

  out();
  out(`Configs and logs in ${lab.dir}/:`);
  for (const p of topo.lisp) {
    out(`  ${p.name}.toml, ${p.name}.log  (${p.role} in ${lab.ns(p.node)})`);
  }

  out();
  out(`Each process serves its API and status page on http://127.0.0.1:${API_PORT}/ inside its`);
  out("namespace, for example xtr1's map-cache:");
  out(
    `  sudo ip netns exec ${lab.ns("xtr1")} curl -s http://127.0.0.1:${API_PORT}/api/v1/map-cache`,
  );
  out(`  sudo ip netns exec ${lab.ns("ms")} curl -s http://127.0.0.1:${API_PORT}/api/v1/sites`);
  out(`  sudo ip netns exec ${lab.ns("xtr2")} curl -s http://127.0.0.1:${API_PORT}/metrics`);
}

function printTails(lab: Lab): void {
  for (const p of lab.processes.values()) {
    const tail = p.readLog().trimEnd().split("\n").slice(-10).join("\n    ");
    console.error(`--- ${p.name} (${p.log}):\n    ${tail}`);
  }
}

/** Runs the demo; resolves to the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  let values: { keep?: boolean; name?: string; help?: boolean };
  try {
    values = parseArgs({
      args: [...args],
      options: {
        keep: { type: "boolean" },
        name: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`demo: ${(e as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help === true) {
    out(USAGE);
    return 0;
  }
  if (Deno.build.os !== "linux") {
    console.error("demo: needs Linux (network namespaces and TUN devices)");
    return EXIT_USAGE;
  }
  const missing = missingPrerequisites(Deno.env.get("PATH") ?? "");
  if (missing.length > 0) {
    console.error(
      `demo: the demo runs ${PREREQUISITES.map((p) => p.command).join(", ")}; missing: ${
        missing.map((m) => `${m.command} (Debian package ${m.debian})`).join(", ")
      }\n  install with: sudo apt-get install ${missing.map((m) => m.debian).join(" ")}`,
    );
    return EXIT_USAGE;
  }
  if (!isRoot()) {
    console.error(
      "demo: must run as root: it builds network namespaces, veth pairs and TUN devices\n" +
        "  (CAP_NET_ADMIN and CAP_SYS_ADMIN); run it as: sudo npm run demo",
    );
    return EXIT_USAGE;
  }
  const keep = values.keep === true;
  const name = values.name ?? "basic";
  const topo = makeTopology("basic");
  const t0 = performance.now();
  const secs = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  step(`building lab ${name}: ${topo.description}`);
  let lab: Lab | undefined;
  let ok = false;
  try {
    const up = await upTopology(topo, { name, detach: keep, stopTimeoutMs: 5000 });
    lab = up.lab;
    if (up.skipped.length > 0) {
      throw new LabError(
        `not started: ${up.skipped.map((s) => `${s.spec.name} (${s.reason})`).join(", ")}`,
      );
    }
    step(`started ${up.started.map((p) => p.name).join(", ")} (${secs()})`);

    const l = lab;
    const want = [PLAN.site1Eid4, PLAN.site2Eid4];
    await waitFor("both xTRs registered with the map-server", async () => {
      const regs = await dynamicRegistrations(l).catch(() => []);
      return want.every((w) => regs.some((r) => r["eid-prefix"] === w)) ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    step(`xtr1 (${PLAN.site1Eid4}) and xtr2 (${PLAN.site2Eid4}) registered (${secs()})`);

    step(`sending pings and UDP from hosta (${PLAN.hostA4}) to hostb (${PLAN.hostB4})`);
    const traffic = await sendTraffic(lab);
    // The xTRs pick up their data plane's counters every few seconds.
    await waitFor("the data-plane counters in /metrics", async () => {
      const [a, b] = await Promise.all([dataCounters(l, "xtr1"), dataCounters(l, "xtr2")]);
      const n = PINGS + DATAGRAMS;
      return (a.encapsulated ?? 0) >= n && (b.decapsulated ?? 0) >= n ? true : undefined;
    }, { timeoutMs: 8000, intervalMs: 500 }).catch(() => {/* printed as they are */});
    await summary(lab, topo, traffic);
    ok = traffic.pingReceived > 0 && traffic.udpEchoed > 0;
    out();
    out(
      ok
        ? `Traffic got through the overlay (${secs()}).`
        : "Traffic did NOT get through the overlay; see the logs above.",
    );
    if (!ok) printTails(lab);
  } catch (e) {
    if (!(e instanceof LabError)) throw e;
    console.error(`demo: ${e.message}`);
    if (lab !== undefined) printTails(lab);
  } finally {
    if (lab !== undefined && !keep) {
      await lab.down();
      out(`Lab ${name} torn down (run with --keep to leave it up).`);
    } else if (lab !== undefined) {
      out(`Lab ${name} left running (--keep). Tear it down with: deno task lab down ${name}`);
      out(
        `  (without deno on the PATH: cd ${REPO_ROOT} && ./node_modules/.bin/deno task lab down ${name})`,
      );
    }
  }
  return ok ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
