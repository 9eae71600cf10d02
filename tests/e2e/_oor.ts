/**
 * The real Open Overlay Router 1.3.0 (Debian's `openoverlayrouter`,
 * `/usr/sbin/oor`) as a peer in the end-to-end labs: its configuration
 * files (libconfuse syntax) and a running instance whose log the tests
 * read.
 *
 * What OOR needs, as these helpers provide it: a writable folder next to
 * its configuration (it writes its xTR-ID file `oor-id` there); its stdout
 * line-buffered (`stdbuf -oL`: it prints with printf and never flushes);
 * `debug = 3` for the log lines the tests wait for; key-type 1, the only
 * one it has. It exits 0 even on a configuration error, so a start is
 * confirmed by its `started...` line and it still running a moment later.
 * Its log wraps message names in ANSI bold codes: {@link OorProcess.log}
 * takes them out.
 *
 * @module
 */

import { type Lab, LabError, type LabProcess, sleep, waitFor } from "../../scripts/lab/topology.ts";
import { commandsMissing } from "../prereq.ts";

/** Why OOR cannot run here, or undefined (.ci/run installs it). */
export const OOR_MISSING = commandsMissing(
  ["oor", "stdbuf"],
  "apt-get install openoverlayrouter coreutils",
);

/** A locator of an OOR database-mapping: an interface, as OOR picks its address itself. */
export interface OorMapping {
  readonly eid: string;
  readonly iid?: number;
  readonly iface: string;
  readonly priority?: number;
}

/** An OOR xTR (or MN). */
export interface OorXtrConfig {
  readonly mode?: "xTR" | "MN";
  readonly encapsulation?: "LISP" | "VXLAN-GPE";
  readonly mapResolver: string;
  readonly mapServer: string;
  readonly key: string;
  readonly mappings: readonly OorMapping[];
  /** `rloc-probing`: seconds; absent: no section (OOR's defaults, 30 s). 0 turns it off. */
  readonly probe?: { interval: number; retries: number; retriesInterval: number };
  /** `nat_traversal_support = on`. */
  readonly nat?: boolean;
  /** `static-map-cache` entries. */
  readonly staticMapCache?: readonly { eid: string; iid?: number; rloc: string }[];
}

function block(name: string, lines: readonly string[]): string[] {
  return [`${name} {`, ...lines.map((l) => `    ${l}`), "}"];
}

/** The configuration file of an OOR xTR or MN. */
export function oorXtrConfig(c: OorXtrConfig): string {
  const out = [
    "debug = 3",
    `operating-mode = ${c.mode ?? "xTR"}`,
    `encapsulation = ${c.encapsulation ?? "LISP"}`,
    "map-request-retries = 2",
    `nat_traversal_support = ${c.nat === true ? "on" : "off"}`,
    `map-resolver = { ${c.mapResolver} }`,
    ...block("map-server", [
      `address = ${c.mapServer}`,
      "key-type = 1",
      `key = ${c.key}`,
      "proxy-reply = off",
    ]),
  ];
  if (c.probe !== undefined) {
    out.push(...block("rloc-probing", [
      `rloc-probe-interval = ${c.probe.interval}`,
      `rloc-probe-retries = ${c.probe.retries}`,
      `rloc-probe-retries-interval = ${c.probe.retriesInterval}`,
    ]));
  }
  for (const m of c.mappings) {
    out.push(...block("database-mapping", [
      `eid-prefix = ${m.eid}`,
      `iid = ${m.iid ?? 0}`,
      "ttl = 10",
      ...block("rloc-iface", [
        `interface = ${m.iface}`,
        "ip_version = 4",
        `priority = ${m.priority ?? 1}`,
        "weight = 100",
      ]),
    ]));
  }
  for (const s of c.staticMapCache ?? []) {
    out.push(...block("static-map-cache", [
      `eid-prefix = ${s.eid}`,
      `iid = ${s.iid ?? 0}`,
      ...block("rloc-address", [`address = ${s.rloc}`, "priority = 1", "weight = 100"]),
    ]));
  }
  return out.join("\n") + "\n";
}

/** An OOR map-server (it answers ECM'd Map-Requests itself: also the map-resolver). */
export interface OorMsConfig {
  /** `control-iface`: OOR uses its addresses. */
  readonly iface: string;
  readonly sites: readonly { eid: string; iid?: number; key: string; moreSpecifics?: boolean }[];
  /** NAT traversal: the RTR it advertises and takes relayed registrations from. */
  readonly rtr?: { readonly address: string; readonly key: string };
}

/** The configuration file of an OOR map-server. */
export function oorMsConfig(c: OorMsConfig): string {
  const out = ["debug = 3", "operating-mode = MS", `control-iface = ${c.iface}`];
  for (const s of c.sites) {
    out.push(...block("lisp-site", [
      `eid-prefix = ${s.eid}`,
      `iid = ${s.iid ?? 0}`,
      "key-type = 1",
      `key = ${s.key}`,
      `accept-more-specifics = ${s.moreSpecifics === true ? "true" : "false"}`,
      "proxy-reply = false",
      "merge = false",
    ]));
  }
  if (c.rtr !== undefined) {
    out.push(
      ...block("ms-rtr-node", ["name = rtr1", `address = ${c.rtr.address}`, `key = ${c.rtr.key}`]),
      ...block("ms-rtrs-set", ["name = set1", "ttl = 10", "rtrs = { rtr1 }"]),
      "ms-advertised-rtrs-set = set1",
    );
  }
  return out.join("\n") + "\n";
}

/** An OOR RTR. */
export interface OorRtrConfig {
  readonly iface: string;
  readonly mapResolver: string;
  readonly ms: { readonly address: string; readonly key: string; readonly draft: "OLD" | "NEW" };
}

/** The configuration file of an OOR RTR. */
export function oorRtrConfig(c: OorRtrConfig): string {
  return [
    "debug = 3",
    "operating-mode = RTR",
    "encapsulation = LISP",
    `map-resolver = { ${c.mapResolver} }`,
    ...block(
      "rtr-ifaces",
      block("rtr-iface", [
        `iface = ${c.iface}`,
        "ip_version = 4",
        "priority = 1",
        "weight = 100",
      ]),
    ),
    ...block("rtr-ms-node", [
      `address = ${c.ms.address}`,
      `key = ${c.ms.key}`,
      `draft-version = ${c.ms.draft}`,
    ]),
  ].join("\n") + "\n";
}

/** ANSI escape sequences (OOR wraps message names in bold). */
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** A running OOR in a lab namespace. */
export class OorProcess {
  readonly process: LabProcess;

  constructor(process: LabProcess) {
    this.process = process;
  }

  /** Its log so far, without ANSI codes. */
  log(): string {
    return this.process.readLog().replace(ANSI, "");
  }

  /** How many lines of its log match `re` so far. */
  count(re: RegExp): number {
    return this.log().split("\n").filter((l) => re.test(l)).length;
  }

  /** Waits until its log (without ANSI codes) matches `re`; the error carries the log's tail. */
  async waitForLog(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    try {
      return await waitFor(`${this.process.name}: log line matching ${re}`, () => {
        const m = this.log().match(re);
        if (m !== null) return m;
        if (!this.process.alive()) throw new LabError(`${this.process.name} exited`);
        return undefined;
      }, { timeoutMs, intervalMs: 100 });
    } catch (e) {
      const tail = this.log().split("\n").slice(-30).join("\n  ");
      throw new LabError(`${(e as Error).message}; log ${this.process.log}:\n  ${tail}`, {
        cause: e,
      });
    }
  }
}

/**
 * Starts OOR as `name` in `node` with `config` (written to
 * `<lab>/<name>/oor.conf`), and resolves once it runs: it logged
 * `started...` and is still alive a second later.
 */
export async function startOor(
  lab: Lab,
  node: string,
  name: string,
  config: string,
): Promise<OorProcess> {
  await Deno.mkdir(lab.path(name), { recursive: true });
  const path = await lab.writeFile(`${name}/oor.conf`, config);
  const p = new OorProcess(
    await lab.spawn(node, name, ["stdbuf", "-oL", "-eL", "oor", "-f", path]),
  );
  await p.waitForLog(/Open Overlay Router .*started/, 15_000);
  await sleep(1000);
  if (!p.process.alive()) {
    throw new LabError(`${name} exited after starting:\n  ${p.log().split("\n").join("\n  ")}`);
  }
  return p;
}
