import assert from "node:assert/strict";
import { addressToString, ipAddress, NO_ADDRESS } from "../../wire/address.ts";
import { HmacKey, signAuthenticated } from "../../wire/auth.ts";
import { ACTION, type EidRecord } from "../../wire/eid_record.ts";
import type { LocatorRecord } from "../../wire/locator.ts";
import type { ControlMessage, ControlMessageType } from "../../wire/message.ts";
import { emitSignedMapNotify, type MapNotify } from "../../wire/map_notify.ts";
import { emitMapRequest, type MapRequest } from "../../wire/map_request.ts";
import { emitSignedMapRegister, type MapRegister } from "../../wire/map_register.ts";
import type {
  InterfaceAddress,
  IpFamily,
  Link,
  NetlinkEvent,
  Route,
  RouteSpec,
  Rule,
  RuleSpec,
} from "../../ffi/netlink.ts";
import { type Config, parseConfig, type Role } from "../../config/mod.ts";
import { ControlPlane, type Peer, type Received } from "../../core/control.ts";
import { Counters } from "../../core/counters.ts";
import type {
  DataLocator,
  DataMapping,
  DataPlaneEvents,
  DataPlaneHandle,
  EntryTraffic,
} from "../../dataplane/api.ts";
import { Logger } from "../../core/log.ts";
import { formatPrefix, parsePrefix, type Prefix, prefixEid } from "../../core/prefix.ts";
import { msStarter, startMs } from "../ms.ts";
import { createApp } from "../../web/app.ts";
import { SourceError, type StatusSource } from "../../core/status.ts";
import { RuntimeEdits } from "../../web/state.ts";
import type {
  DataPlaneOptions,
  Timing,
  TunnelRouterHandle,
  TunnelRouterMode,
  TunnelRouterSpec,
} from "./context.ts";
import { locatorIp } from "./map_cache.ts";
import { startTunnelRouter } from "./router.ts";
import { Journal } from "./journal.ts";
import type { NetOps, Platform } from "./platform.ts";
import { preflight } from "./preflight.ts";
import {
  EID_TABLE,
  FAIL_CLOSED_METRIC,
  FROM_EID_PRIORITY,
  INSTANCE_PRIORITY,
  instanceTable,
  rlocTable,
  TO_EID_PRIORITY,
} from "./routing.ts";
import * as xtr from "../xtr.ts";
import * as mn from "../mn.ts";
import * as rtr from "../rtr.ts";
import { UdpSocket } from "../../ffi/udp.ts";

const SPECS: Readonly<Record<TunnelRouterMode, TunnelRouterSpec>> = {
  xtr: xtr.XTR,
  mn: mn.MN,
  rtr: rtr.RTR,
};

// ---------------------------------------------------------------------------
// Fakes: the host (links, addresses, routes, rules, TUN, events, sysctls)
// and the data plane. Peers are real control sockets on loopback.

function errno(code: string, what: string): Error {
  return Object.assign(new Error(`${what}: ${code}`), { code });
}

function fam(text: string): IpFamily {
  return text.includes(":") ? "ipv6" : "ipv4";
}

class FakeNet {
  links: Link[] = [];
  addrs: InterfaceAddress[] = [];
  routeList: Route[] = [];
  ruleList: Rule[] = [];
  /** Called before each change; throw to make it fail. */
  failOn: (op: string, what: unknown) => void = () => {};

  link(index: number, name: string, up = true): void {
    this.links.push({ index, name, flags: 0, up, running: up, lowerUp: up, type: 1 });
  }

  setLinkUp(name: string, up: boolean): Link {
    const i = this.links.findIndex((l) => l.name === name);
    const l = { ...this.links[i]!, up, running: up, lowerUp: up };
    this.links[i] = l;
    return l;
  }

  address(index: number, prefix: string): InterfaceAddress {
    const [address, len] = prefix.split("/");
    const a: InterfaceAddress = {
      family: fam(address!),
      index,
      address: address!,
      prefixLen: Number(len),
      scope: 0,
      flags: 0,
    };
    this.addrs.push(a);
    return a;
  }

  snapshot(): string {
    return JSON.stringify({
      links: this.links,
      addrs: this.addrs,
      routes: this.routeList,
      rules: this.ruleList,
    });
  }

  routeAdd(r: RouteSpec): void {
    this.failOn("routeAdd", r);
    const route: Route = {
      family: fam(r.dst),
      dst: r.dst,
      table: r.table ?? 254,
      type: r.type ?? "unicast",
      protocol: r.protocol ?? 3,
      scope: r.scope ?? 0,
      ...(r.dev !== undefined ? { dev: r.dev } : {}),
      ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
      ...(r.src !== undefined ? { src: r.src } : {}),
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
    };
    const i = this.routeList.findIndex((x) =>
      x.family === route.family && x.table === route.table && x.dst === route.dst &&
      (x.metric ?? 0) === (route.metric ?? 0)
    );
    if (i >= 0 && !r.replace) throw errno("EEXIST", `route ${r.dst}`);
    if (i >= 0) this.routeList[i] = route;
    else this.routeList.push(route);
  }

  routeDel(r: RouteSpec): void {
    this.failOn("routeDel", r);
    const i = this.routeList.findIndex((x) =>
      x.family === fam(r.dst) && x.table === (r.table ?? 254) && x.dst === r.dst &&
      (r.dev === undefined || x.dev === r.dev) &&
      (r.gateway === undefined || x.gateway === r.gateway) &&
      (r.metric === undefined || (x.metric ?? 0) === r.metric) &&
      (r.type === undefined || x.type === r.type)
    );
    if (i < 0) throw errno("ESRCH", `route ${r.dst}`);
    this.routeList.splice(i, 1);
  }

  ruleAdd(r: RuleSpec): void {
    this.failOn("ruleAdd", r);
    if (this.#findRule(r) >= 0) throw errno("EEXIST", "rule");
    this.ruleList.push({
      family: r.family,
      priority: r.priority ?? 0,
      table: r.table ?? 0,
      action: "lookup",
      ...(r.from !== undefined ? { from: r.from } : {}),
      ...(r.to !== undefined ? { to: r.to } : {}),
      ...(r.iif !== undefined ? { iif: r.iif } : {}),
    });
  }

  ruleDel(r: RuleSpec): void {
    this.failOn("ruleDel", r);
    const i = this.#findRule(r);
    if (i < 0) throw errno("ENOENT", "rule");
    this.ruleList.splice(i, 1);
  }

  #findRule(r: RuleSpec): number {
    return this.ruleList.findIndex((x) =>
      x.family === r.family && x.priority === (r.priority ?? 0) &&
      x.table === (r.table ?? 0) && (x.from ?? "") === (r.from ?? "") &&
      (x.to ?? "") === (r.to ?? "") && (x.iif ?? "") === (r.iif ?? "")
    );
  }

  addrAdd(index: number, prefix: string): void {
    this.failOn("addrAdd", prefix);
    if (this.addrs.some((a) => a.index === index && `${a.address}/${a.prefixLen}` === prefix)) {
      throw errno("EEXIST", "address");
    }
    this.address(index, prefix);
  }

  addrDel(index: number, prefix: string): void {
    const i = this.addrs.findIndex((a) =>
      a.index === index && `${a.address}/${a.prefixLen}` === prefix
    );
    if (i < 0) throw errno("EADDRNOTAVAIL", "address");
    this.addrs.splice(i, 1);
  }

  routes(filter: { readonly table?: number; readonly family?: IpFamily } = {}): Route[] {
    return this.routeList.filter((r) =>
      (filter.table === undefined || r.table === filter.table) &&
      (filter.family === undefined || r.family === filter.family)
    );
  }

  rules(family: IpFamily): Rule[] {
    return this.ruleList.filter((r) => r.family === family);
  }

  addresses(family?: IpFamily): InterfaceAddress[] {
    return this.addrs.filter((a) => family === undefined || a.family === family);
  }

  linksList(): Link[] {
    return this.links;
  }
}

class FakePlatform implements Platform {
  readonly fakeNet = new FakeNet();
  readonly sysctls = new Map<string, string>();
  readonly udp: { family: IpFamily; port: number; address?: string }[] = [];
  readonly #queue: NetlinkEvent[] = [];
  #wake: (() => void) | undefined;
  source: string | undefined;
  tunIndex = 50;

  get net(): NetOps {
    const n = this.fakeNet;
    return {
      routeAdd: (r) => n.routeAdd(r),
      routeDel: (r) => n.routeDel(r),
      ruleAdd: (r) => n.ruleAdd(r),
      ruleDel: (r) => n.ruleDel(r),
      addrAdd: (i, p) => n.addrAdd(i, p),
      addrDel: (i, p) => n.addrDel(i, p),
      routes: (f) => n.routes(f),
      rules: (f) => n.rules(f),
      addresses: (f) => n.addresses(f),
      links: () => n.linksList(),
    };
  }

  openTun(name: string, _mtu: number) {
    const index = this.tunIndex++;
    this.fakeNet.link(index, name);
    return {
      fd: -1,
      index,
      name,
      close: () => {
        const n = this.fakeNet;
        n.links = n.linksList().filter((l) => l.index !== index);
        n.addrs = n.addrs.filter((a) => a.index !== index);
        n.routeList = n.routeList.filter((r) => r.dev !== index);
      },
    };
  }

  openUdp(family: IpFamily, port: number, address?: string) {
    this.udp.push({ family, port, ...(address !== undefined ? { address } : {}) });
    return { fd: -1, close: () => {} };
  }

  push(e: NetlinkEvent): void {
    this.#queue.push(e);
    this.#wake?.();
  }

  async *events(signal: AbortSignal): AsyncGenerator<NetlinkEvent> {
    while (!signal.aborted) {
      while (this.#queue.length > 0) yield this.#queue.shift()!;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      this.#wake = undefined;
    }
  }

  readSysctl(path: readonly string[]): string | undefined {
    return this.sysctls.get(path.join("."));
  }

  routeSource(_dst: string): string | undefined {
    return this.source;
  }

  close(): void {}
}

class FakeDataPlane implements DataPlaneHandle {
  opts: DataPlaneOptions | undefined;
  starts = 0;
  events: DataPlaneEvents | undefined;
  readonly mappings = new Map<string, DataMapping>();
  readonly deleted: string[] = [];
  readonly locatorCalls: [string, boolean][] = [];
  local: readonly Prefix[] = [];
  petrs: { ipv4: readonly DataLocator[]; ipv6: readonly DataLocator[] } = { ipv4: [], ipv6: [] };
  stopped = false;

  setMapping(m: DataMapping): void {
    this.mappings.set(formatPrefix(m.prefix), m);
  }
  deleteMapping(p: Prefix): void {
    this.mappings.delete(formatPrefix(p));
    this.deleted.push(formatPrefix(p));
  }
  setLocal(prefixes: readonly Prefix[]): void {
    this.local = prefixes;
  }
  setPetrs(ipv4: readonly DataLocator[], ipv6: readonly DataLocator[]): void {
    this.petrs = { ipv4, ipv6 };
  }
  setLocator(address: string, up: boolean): void {
    this.locatorCalls.push([address, up]);
    for (const [k, m] of this.mappings) {
      this.mappings.set(k, {
        ...m,
        locators: m.locators.map((l) => l.address === address ? { ...l, up } : l),
      });
    }
  }
  counters(): Readonly<Record<string, number>> {
    return { encapsulated: 1 };
  }
  /** Traffic per entry, when a test sets it. */
  entryCounts?: () => ReadonlyMap<string, EntryTraffic>;
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

/** A fake clock. */
class Clock {
  t = Date.UTC(2025, 0, 1);
  readonly now = (): number => this.t;
}

/** Waits until `cond()` holds (polling), or fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 4000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

type Got<T extends ControlMessageType> = Received & {
  readonly message: Extract<ControlMessage, { type: T }>;
};

/** A test peer: a bare control socket that keeps what it receives, or answers. */
class Host {
  readonly cp: ControlPlane;
  readonly peer: Peer;
  readonly got: Received[] = [];
  /** Answers instead of keeping (return true when handled). */
  answer: ((r: Received) => boolean) | undefined;

  private constructor(cp: ControlPlane, peer: Peer) {
    this.cp = cp;
    this.peer = peer;
    const types: ControlMessageType[] = [
      "map-request",
      "map-reply",
      "map-register",
      "map-notify",
    ];
    for (const t of types) {
      cp.on(t, (_m, r) => {
        if (this.answer?.(r) === true) return;
        this.got.push(r);
      });
    }
  }

  static async open(address: string): Promise<Host> {
    const cp = await ControlPlane.open({
      logger: new Logger({ role: "peer", sink: { write: () => {} } }),
      counters: new Counters(),
      address,
      port: 0,
    });
    return new Host(cp, { address, port: cp.port });
  }

  async next<T extends ControlMessageType>(type: T, ms = 4000): Promise<Got<T>> {
    await until(() => this.got.some((r) => r.message.type === type), `a ${type}`, ms);
    const i = this.got.findIndex((r) => r.message.type === type);
    return this.got.splice(i, 1)[0] as Got<T>;
  }

  count(type: ControlMessageType): number {
    return this.got.filter((r) => r.message.type === type).length;
  }

  close(): void {
    this.cp.close();
  }
}

// Loopback addresses of the actors.
const XTR = "127.0.0.1";
const MS = "127.0.0.2";
const MR = "127.0.0.3";
const ETR = "127.0.0.4";

function trToml(role: Role, ...lines: string[]): string {
  const mode = role === "xtr" ? "xTR" : role === "mn" ? "MN" : "RTR";
  return [
    `operating-mode = "${mode}"`,
    "control-port = 0",
    "control-rate-limit = 0",
    `map-resolver = ["${MR}"]`,
    "map-request-retries = 1",
    ...lines,
  ].join("\n") + "\n";
}

const RLOC_PROBING_OFF = ["[rloc-probing]", "rloc-probe-interval = 0"].join("\n");

function mapServer(key = "k"): string {
  return ["[[map-server]]", `address = "${MS}"`, "key-type = 2", `key = "${key}"`].join("\n");
}

function mapping(eid: string, ...locators: string[]): string {
  return [
    "[[database-mapping]]",
    `eid-prefix = "${eid}"`,
    "iid = 0",
    "ttl = 10",
    ...locators,
  ].join("\n");
}

function rlocAddress(address: string, priority = 1): string {
  return [
    "[[database-mapping.rloc-address]]",
    `address = "${address}"`,
    `priority = ${priority}`,
    "weight = 100",
  ].join("\n");
}

function rlocIface(iface: string, priority = 1): string {
  return [
    "[[database-mapping.rloc-iface]]",
    `interface = "${iface}"`,
    "ip_version = 4",
    `priority = ${priority}`,
    "weight = 100",
  ].join("\n");
}

/** The default xTR: control on 127.0.0.1, site 10.1.0.0/24 with locator 127.0.0.1. */
function xtrToml(...extra: string[]): string {
  return trToml(
    "xtr",
    `control-address = "${XTR}"`,
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.1.0.0/24", rlocAddress(XTR)),
    ...extra,
  );
}

interface Tr {
  readonly tr: TunnelRouterHandle;
  readonly dp: FakeDataPlane;
  readonly platform: FakePlatform;
  readonly counters: Counters;
  readonly lines: string[];
  readonly ports: Map<string, number>;
  readonly config: Config;
}

interface StartOptions {
  readonly mode?: TunnelRouterMode;
  readonly platform?: FakePlatform;
  readonly ports?: Map<string, number>;
  readonly timing?: Partial<Timing>;
  readonly clock?: Clock;
  readonly xtrId?: bigint;
  /** Awaited before the data plane's `n`th start (1 first) resolves: a slow start. */
  readonly dataPlaneGate?: (n: number) => Promise<void>;
}

async function startTr(toml: string, o: StartOptions = {}): Promise<Tr> {
  const mode = o.mode ?? "xtr";
  const r = parseConfig(toml, { role: mode });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const lines: string[] = [];
  const counters = new Counters();
  const now = o.clock?.now ?? Date.now;
  const logger = new Logger({
    role: mode,
    level: "debug",
    now,
    sink: { write: (l) => lines.push(l) },
  });
  const platform = o.platform ?? new FakePlatform();
  const dp = new FakeDataPlane();
  const ports = o.ports ?? new Map<string, number>();
  const tr = await startTunnelRouter(SPECS[mode], r.config, { logger, counters, now }, {
    platform,
    startDataPlane: async (opts, events) => {
      dp.starts++;
      await o.dataPlaneGate?.(dp.starts);
      dp.stopped = false;
      dp.opts = opts;
      dp.events = events;
      return dp;
    },
    peerPort: (a) => ports.get(a) ?? 4342,
    timing: { registerRetryMs: 10_000, sweepMs: 20, eventDebounceMs: 5, ...o.timing },
    ...(o.xtrId !== undefined ? { xtrId: o.xtrId } : {}),
  });
  return { tr, dp, platform, counters, lines, ports, config: r.config };
}

/** A Map-Reply record for `eid` with `rlocs`. */
function record(eid: string, rlocs: readonly string[], o: Partial<EidRecord> = {}): EidRecord {
  const p = parsePrefix(eid)!;
  return {
    ttl: 1,
    maskLen: p.len,
    action: ACTION.NO_ACTION,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: rlocs.map((a): LocatorRecord => ({
      priority: 1,
      weight: 100,
      mPriority: 255,
      mWeight: 0,
      local: false,
      probed: false,
      reachable: true,
      address: ipAddress(a),
    })),
    ...o,
  };
}

/** Makes `mr` answer every ECM Map-Request with `records` (to the ITR-RLOC, inner source port). */
function answerWith(mr: Host, records: (m: MapRequest) => EidRecord[]): void {
  mr.answer = (r) => {
    if (r.message.type !== "map-request" || r.ecm === undefined) return false;
    const m = r.message.msg;
    const itr = m.itrRlocs[0] as { ip: string };
    mr.cp.send({
      type: "map-reply",
      msg: { probe: false, echoNonce: false, security: false, nonce: m.nonce, records: records(m) },
    }, { address: itr.ip, port: r.ecm.inner.srcPort });
    mr.got.push(r);
    return true;
  };
}

function request(eid: string, o: Partial<MapRequest> = {}): Uint8Array {
  const p = parsePrefix(eid)!;
  return emitMapRequest({
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce: 0x1234n,
    sourceEid: NO_ADDRESS,
    itrRlocs: [ipAddress(ETR)],
    records: [{ maskLen: p.len, eid: prefixEid(p) }],
    ...o,
  });
}

function locs(r: EidRecord): string[] {
  return r.locators.map((l) => addressToString(l.address));
}

// ---------------------------------------------------------------------------
// Registration

Deno.test("tunnel router registers each mapping with the map-server, refreshes it, and withdraws it on close", async () => {
  const msToml = [
    'operating-mode = "MS"',
    `control-address = "${MS}"`,
    "control-port = 0",
    "control-rate-limit = 0",
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/24"',
    "key-type = 2",
    'key = "k"',
  ].join("\n") + "\n";
  const mc = parseConfig(msToml, { role: "ms" });
  if (!mc.ok) throw new Error(String(mc.errors));
  const ms = await startMs(mc.config, {
    logger: new Logger({ role: "ms", sink: { write: () => {} } }),
    counters: new Counters(),
    now: Date.now,
  });
  const ports = new Map([[MS, ms.port]]);
  const x = await startTr(xtrToml(), { ports, timing: { registerIntervalMs: 100 } });
  try {
    await until(() => x.tr.registrations()[0]?.notified === true, "a Map-Notify");
    const regs = ms.registrations();
    assert.equal(regs.length, 1);
    assert.equal(regs[0]!.prefix, "10.1.0.0/24");
    assert.deepEqual(regs[0]!.rlocs.map((r) => r.address), [XTR]);
    assert.equal(regs[0]!.xtrId, undefined, "no xTR-ID without merge = true");
    await until(() => x.tr.registrations()[0]!.sent >= 3, "two refreshes");
    assert.ok(x.counters.get("oor_tr_map_notifies_total", { result: "ok" }) >= 1);
    assert.equal(x.counters.get("oor_tr_registered"), 1);
  } finally {
    await x.tr.close();
  }
  await until(() => ms.registrations().length === 0, "the withdrawal");
  await ms.close();
});

Deno.test("tunnel router sends the I bit and its xTR-ID only to a map-server with merge = true", async () => {
  const ms = await Host.open(MS);
  notifying(ms);
  const ports = new Map([[MS, ms.peer.port]]);
  const merged = [
    "[[map-server]]",
    `address = "${MS}"`,
    "key-type = 2",
    'key = "k"',
    "merge = true",
  ].join("\n");
  const toml = trToml(
    "xtr",
    `control-address = "${XTR}"`,
    RLOC_PROBING_OFF,
    merged,
    mapping("10.1.0.0/24", rlocAddress(XTR)),
  );
  const x = await startTr(toml, { ports, xtrId: 0x0123456789abcdef0123456789abcdefn });
  try {
    const r = await ms.next("map-register");
    const m = r.message.msg;
    assert.equal(m.xtrIdPresent, true);
    assert.equal(m.xtrId, 0x0123456789abcdef0123456789abcdefn);
    await until(() => x.tr.registrations()[0]?.notified === true, "the Map-Notify");
  } finally {
    await x.tr.close();
    ms.close();
  }
});

Deno.test("tunnel router retries a Map-Register quickly until a valid Map-Notify, then waits the refresh period", async () => {
  const ms = await Host.open(MS);
  const key = new HmacKey(2, "k");
  let registers = 0;
  ms.answer = (r) => {
    if (r.message.type !== "map-register") return false;
    registers++;
    const m = r.message.msg;
    const notify = notifyOf(m);
    assert.equal(m.wantMapNotify, true);
    assert.equal(m.xtrIdPresent, false);
    assert.equal(m.proxyReply, false);
    // The 2nd gets a Map-Notify under the wrong key; the 3rd a good one.
    if (registers === 2) ms.cp.send(emitSignedMapNotify(notify, new HmacKey(2, "bad")), r.from);
    if (registers === 3) ms.cp.send(emitSignedMapNotify(notify, key), r.from);
    return true;
  };
  const ports = new Map([[MS, ms.peer.port]]);
  const x = await startTr(xtrToml(), {
    ports,
    timing: { registerRetryMs: 20, registerIntervalMs: 60_000 },
  });
  try {
    await until(() => x.tr.registrations()[0]?.notified === true, "the Map-Notify");
    assert.equal(registers, 3);
    await sleep(300);
    assert.equal(registers, 3, "no Map-Register before the refresh period");
    assert.equal(x.counters.get("oor_tr_map_notifies_total", { result: "auth" }), 1);
    assert.equal(x.counters.get("oor_tr_map_notifies_total", { result: "ok" }), 1);
    assert.ok(x.lines.some((l) => / registered .*prefix=10.1.0.0\/24/.test(l)));
  } finally {
    await x.tr.close();
    ms.close();
  }
});

Deno.test("tunnel router shows a map-server failing while its Map-Registers go unanswered, counts why, and registered once answered", async () => {
  const ms = await Host.open(MS);
  const key = new HmacKey(2, "k");
  let answer = false;
  let registers = 0;
  ms.answer = (r) => {
    if (r.message.type !== "map-register") return false;
    registers++;
    const notify = notifyOf(r.message.msg);
    // The 2nd gets a Map-Notify under the wrong key; the others none until `answer`.
    if (registers === 2) ms.cp.send(emitSignedMapNotify(notify, new HmacKey(2, "bad")), r.from);
    if (answer) ms.cp.send(emitSignedMapNotify(notify, key), r.from);
    return true;
  };
  const x = await startTr(xtrToml(), {
    ports: new Map([[MS, ms.peer.port]]),
    timing: { registerRetryMs: 20, registerIntervalMs: 60_000 },
  });
  const source = x.tr.statusSource();
  const msState = async () => (await source.status!()).mapServers?.[0];
  const gauge = (state: string) =>
    x.counters.get("oor_tr_map_server_registration_state", { map_server: MS, state });
  const failures = (reason: string) =>
    x.counters.get("oor_tr_map_register_failures_total", { map_server: MS, reason });
  try {
    assert.equal((await msState())?.state, "registering", "the first Map-Register is out");
    assert.equal(gauge("registering"), 1);
    assert.equal(gauge("failing"), 0);
    // Ten retry periods (200 ms) without a valid Map-Notify.
    let last: Awaited<ReturnType<typeof msState>>;
    const deadline = Date.now() + 4000;
    while ((last = await msState())?.state !== "failing" && Date.now() < deadline) await sleep(10);
    assert.equal(last?.state, "failing");
    assert.equal(last?.registered, false);
    assert.equal(gauge("failing"), 1);
    assert.equal(gauge("registered") + gauge("registering"), 0);
    assert.equal(failures("auth"), 1, "the Map-Notify under the wrong key");
    assert.ok(failures("no-map-notify") >= 2, `${failures("no-map-notify")} unanswered`);
    assert.equal(last?.failures, failures("auth") + failures("no-map-notify"));
    answer = true;
    await until(() => x.tr.registrations()[0]?.notified === true, "the Map-Notify", 4000);
    assert.equal((await msState())?.state, "registered");
    assert.equal(gauge("registered"), 1);
    assert.equal(gauge("failing"), 0);
  } finally {
    await x.tr.close();
    ms.close();
  }
});

Deno.test("tunnel router takes a Map-Notify as OOR 1.3.0's RTR passes it on: R bit set, empty MS-RTR part", async () => {
  const ms = await Host.open(MS);
  const key = new HmacKey(2, "k");
  ms.answer = (r) => {
    if (r.message.type !== "map-register") return false;
    // Signed with the R bit set, before the MS-RTR part is appended; the
    // RTR cuts that part down to a zero Key ID and length.
    const signed = emitSignedMapNotify(notifyOf(r.message.msg), key);
    signed[0]! |= 0x04;
    signAuthenticated(signed, key);
    const old = new Uint8Array(signed.length + 4);
    old.set(signed);
    ms.cp.send(old, r.from);
    return true;
  };
  const x = await startTr(xtrToml(), { ports: new Map([[MS, ms.peer.port]]) });
  try {
    await until(() => x.tr.registrations()[0]?.notified === true, "the Map-Notify");
    assert.equal(x.counters.get("oor_tr_map_notifies_total", { result: "ok" }), 1);
  } finally {
    await x.tr.close();
    ms.close();
  }
});

// ---------------------------------------------------------------------------
// Resolution

Deno.test("tunnel router turns a miss into an ECM Map-Request and installs the Map-Reply", async () => {
  const mr = await Host.open(MR);
  answerWith(mr, () => [record("10.2.0.0/24", [ETR], { ttl: 5 })]);
  const x = await startTr(xtrToml(), { ports: new Map([[MR, mr.peer.port]]) });
  try {
    x.dp.events!.onMiss(0, "10.2.0.10", "10.1.0.10");
    await until(() => x.dp.mappings.has("10.2.0.0/24"), "the mapping");
    const got = mr.got[0]!;
    assert.ok(got.ecm !== undefined);
    assert.equal(got.ecm.inner.dst, "10.2.0.10");
    assert.equal(got.ecm.inner.src, XTR);
    assert.equal(got.ecm.inner.srcPort, x.tr.controlPort);
    assert.equal(got.ecm.inner.dstPort, 4342);
    const m = got.message.msg as MapRequest;
    assert.deepEqual(m.itrRlocs.map(addressToString), [XTR]);
    assert.equal(addressToString(m.sourceEid), "10.1.0.10");
    assert.equal(addressToString(m.records[0]!.eid), "10.2.0.10");
    assert.equal(m.records[0]!.maskLen, 32);
    assert.deepEqual(x.dp.mappings.get("10.2.0.0/24"), {
      prefix: parsePrefix("10.2.0.0/24"),
      action: "encapsulate",
      locators: [{ address: ETR, priority: 1, weight: 100, up: true }],
    });
    const info = x.tr.mapCache();
    assert.equal(info.length, 1);
    assert.equal(info[0]!.kind, "positive");
    assert.equal(info[0]!.ttl, 5);
    // The API's view: learned from a Map-Reply, since when, and the data plane's traffic.
    x.dp.entryCounts = () => new Map([["10.2.0.0/24", { packets: 7, bytes: 700 }]]);
    const [view] = await x.tr.statusSource().mapCache!({});
    assert.equal(view?.origin, "map-reply");
    assert.ok(view?.since !== undefined && Math.abs(Date.now() - view.since) < 4000);
    assert.equal(view?.packets, 7);
    assert.equal(view?.bytes, 700);
    // A second miss for the same EID within a second is not asked again.
    x.dp.events!.onMiss(0, "10.2.0.10", "10.1.0.10");
    await sleep(50);
    assert.equal(mr.got.length, 1);
    assert.equal(x.counters.get("oor_tr_map_requests_sent_total", { reason: "miss" }), 1);
  } finally {
    await x.tr.close();
    mr.close();
  }
});

Deno.test("tunnel router keeps the action of negative Map-Replies and rejects records that do not cover the EID", async () => {
  const mr = await Host.open(MR);
  answerWith(mr, (m) => {
    const eid = addressToString(m.records[0]!.eid);
    if (eid === "10.5.0.1") {
      return [record("10.5.0.0/16", [], { action: ACTION.NATIVELY_FORWARD, ttl: 15 })];
    }
    if (eid === "10.6.0.1") return [record("10.6.0.0/16", [], { action: ACTION.DROP_NO_REASON })];
    return [record("10.99.0.0/16", [ETR])]; // not covering 10.7.0.1
  });
  const x = await startTr(xtrToml(), { ports: new Map([[MR, mr.peer.port]]) });
  try {
    x.dp.events!.onMiss(0, "10.5.0.1", "10.1.0.10");
    x.dp.events!.onMiss(0, "10.6.0.1", "10.1.0.10");
    x.dp.events!.onMiss(0, "10.7.0.1", "10.1.0.10");
    await until(() => x.dp.mappings.size === 2, "two mappings");
    await until(
      () => x.counters.get("oor_tr_map_replies_total", { result: "not-covering" }) === 1,
      "the rejection",
    );
    assert.equal(x.dp.mappings.get("10.5.0.0/16")!.action, "native-forward");
    assert.equal(x.dp.mappings.get("10.6.0.0/16")!.action, "drop");
    assert.equal(x.dp.mappings.has("10.99.0.0/16"), false);
    assert.deepEqual(x.tr.mapCache().map((e) => e.kind), ["negative", "negative"]);
  } finally {
    await x.tr.close();
    mr.close();
  }
});

Deno.test("tunnel router backs off per EID after a reply that does not cover it, doubling, and logs it once", async () => {
  const clock = new Clock();
  const mr = await Host.open(MR);
  let asked = 0;
  let cover = false;
  answerWith(mr, (m) => {
    asked++;
    const eid = addressToString(m.records[0]!.eid);
    assert.equal(eid, "10.3.0.1");
    // What OOR 1.3.0's map-server answers: a negative reply for another prefix.
    return cover
      ? [record("10.3.0.0/16", [ETR])]
      : [record("11.3.0.0/16", [], { action: ACTION.NATIVELY_FORWARD })];
  });
  const x = await startTr(xtrToml(), { ports: new Map([[MR, mr.peer.port]]), clock });
  const miss = () => x.dp.events!.onMiss(0, "10.3.0.1", "10.1.0.10");
  const rejections = () => x.counters.get("oor_tr_map_replies_total", { result: "not-covering" });
  try {
    miss();
    await until(() => rejections() === 1, "the first rejection");
    // A packet every second: held back for 2 s, then for 4 s.
    const seen: number[] = [];
    for (let t = 1; t <= 7; t++) {
      clock.t += 1_000;
      miss();
      await sleep(30);
      seen.push(asked);
    }
    assert.deepEqual(seen, [1, 2, 2, 2, 2, 3, 3], "asked at 0, 2 s and 6 s only");
    assert.equal(rejections(), 3);
    assert.ok((x.counters.get("oor_tr_misses_total", { result: "backoff" }) ?? 0) >= 4);
    const warned = x.lines.filter((l) => / warn .*map-reply-rejected/.test(l));
    assert.equal(warned.length, 1, "logged once (as a warning; the rest at debug)");
    assert.ok(
      x.lines.some((l) =>
        /map-reply-rejected .*asked=10\.3\.0\.1\/32 .*got=11\.3\.0\.0\/16/.test(l)
      ),
    );
    // A covering reply ends the back-off.
    cover = true;
    clock.t += 8_000;
    miss();
    await until(() => x.dp.mappings.has("10.3.0.0/16"), "the mapping");
    assert.deepEqual(x.dp.mappings.has("11.3.0.0/16"), false);
  } finally {
    await x.tr.close();
    mr.close();
  }
});

Deno.test("tunnel router removes map-cache entries from the data plane when their TTL ends", async () => {
  const clock = new Clock();
  const mr = await Host.open(MR);
  answerWith(mr, () => [record("10.2.0.0/24", [ETR], { ttl: 1 })]);
  const x = await startTr(xtrToml(), { ports: new Map([[MR, mr.peer.port]]), clock });
  try {
    x.dp.events!.onMiss(0, "10.2.0.10", "10.1.0.10");
    await until(() => x.dp.mappings.has("10.2.0.0/24"), "the mapping");
    clock.t += 59_000;
    await sleep(60);
    assert.ok(x.dp.mappings.has("10.2.0.0/24"), "still there before the TTL");
    clock.t += 2_000;
    await until(() => x.dp.deleted.includes("10.2.0.0/24"), "the deletion");
    assert.equal(x.tr.mapCache().length, 0);
    assert.equal(x.counters.get("oor_tr_map_cache_expired_total"), 1);
  } finally {
    await x.tr.close();
    mr.close();
  }
});

Deno.test("tunnel router natively forwards an EID nobody answers for when proxy-ETRs exist", async () => {
  const mr = await Host.open(MR);
  const toml = xtrToml(
    ["[[proxy-etr-ipv4]]", 'address = "127.0.0.9"', "priority = 1", "weight = 100"].join("\n"),
  );
  const x = await startTr(toml, {
    ports: new Map([[MR, mr.peer.port]]),
    timing: { mapRequestTimeoutMs: 30 },
  });
  try {
    assert.deepEqual(x.dp.petrs.ipv4, [{
      address: "127.0.0.9",
      priority: 1,
      weight: 100,
      up: true,
    }]);
    x.dp.events!.onMiss(0, "192.0.2.77", "10.1.0.10");
    await until(() => x.dp.mappings.has("192.0.2.77/32"), "the native-forward entry");
    assert.equal(mr.count("map-request"), 2, "the request and its one retry");
    assert.equal(x.dp.mappings.get("192.0.2.77/32")!.action, "native-forward");
    assert.equal(x.counters.get("oor_tr_map_request_timeouts_total"), 1);
  } finally {
    await x.tr.close();
    mr.close();
  }
});

Deno.test("tunnel router installs static map-cache entries and never lets a Map-Reply replace them", async () => {
  const mr = await Host.open(MR);
  answerWith(mr, () => [record("10.9.0.0/16", ["127.0.0.66"])]);
  const toml = xtrToml(
    [
      "[[static-map-cache]]",
      'eid-prefix = "10.9.0.0/16"',
      "[[static-map-cache.rloc-address]]",
      `address = "${ETR}"`,
      "priority = 1",
      "weight = 100",
    ].join("\n"),
  );
  const x = await startTr(toml, { ports: new Map([[MR, mr.peer.port]]) });
  try {
    assert.deepEqual(x.dp.mappings.get("10.9.0.0/16")?.locators.map((l) => l.address), [ETR]);
    x.dp.events!.onMiss(0, "10.9.1.1", "10.1.0.10");
    await until(
      () => x.counters.get("oor_tr_map_replies_total", { result: "static" }) === 1,
      "the ignored reply",
    );
    assert.deepEqual(x.dp.mappings.get("10.9.0.0/16")?.locators.map((l) => l.address), [ETR]);
    assert.equal(x.tr.mapCache()[0]!.kind, "static");
  } finally {
    await x.tr.close();
    mr.close();
  }
});

// ---------------------------------------------------------------------------
// ETR

Deno.test("tunnel router answers a forwarded Map-Request for a local EID at the ITR-RLOC with its locators", async () => {
  const itr = await Host.open(ETR);
  const x = await startTr(xtrToml());
  try {
    const to = { address: XTR, port: x.tr.controlPort };
    itr.cp.sendEcm(
      request("10.1.0.77/32", { nonce: 0xabcn }),
      { src: ETR, dst: "10.1.0.77", srcPort: itr.peer.port, dstPort: 4342 },
      to,
    );
    const r = await itr.next("map-reply");
    const m = r.message.msg;
    assert.equal(m.nonce, 0xabcn);
    assert.equal(m.probe, false);
    const rec = m.records[0]!;
    assert.equal(addressToString(rec.eid), "10.1.0.0");
    assert.equal(rec.maskLen, 24);
    assert.equal(rec.authoritative, true);
    assert.equal(rec.ttl, 10);
    assert.deepEqual(locs(rec), [XTR]);
    assert.equal(rec.locators[0]!.local, true);
    assert.equal(rec.locators[0]!.reachable, true);
    // Not ours: dropped, counted.
    itr.cp.sendEcm(
      request("10.8.0.1/32"),
      { src: ETR, dst: "10.8.0.1", srcPort: itr.peer.port, dstPort: 4342 },
      to,
    );
    await until(
      () => x.counters.get("oor_tr_map_requests_dropped_total", { reason: "not-local" }) === 1,
      "the drop",
    );
    assert.equal(itr.count("map-reply"), 0);
  } finally {
    await x.tr.close();
    itr.close();
  }
});

Deno.test("tunnel router answers an RLOC-probe to the prober with the P bit", async () => {
  const prober = await Host.open(ETR);
  const x = await startTr(xtrToml());
  try {
    prober.cp.send(request("10.1.0.0/24", { probe: true, nonce: 0x77n }), {
      address: XTR,
      port: x.tr.controlPort,
    });
    const r = await prober.next("map-reply");
    assert.equal(r.message.msg.probe, true);
    assert.equal(r.message.msg.nonce, 0x77n);
    const l = r.message.msg.records[0]!.locators[0]!;
    assert.equal(addressToString(l.address), XTR);
    assert.equal(l.probed, true, "p bit on the probed locator");
    assert.equal(x.counters.get("oor_tr_map_replies_sent_total", { kind: "probe" }), 1);
  } finally {
    await x.tr.close();
    prober.close();
  }
});

// ---------------------------------------------------------------------------
// SMRs

Deno.test("tunnel router re-registers and sends SMRs to its peers when a local RLOC goes away", async () => {
  const platform = new FakePlatform();
  const n = platform.fakeNet;
  n.link(1, "lo");
  n.link(2, "eth0");
  n.link(3, "eth1");
  n.address(2, `${XTR}/8`);
  n.address(3, "127.0.0.5/8");
  const ms = await Host.open(MS);
  const peer = await Host.open(ETR);
  const ports = new Map([[MS, ms.peer.port], [ETR, peer.peer.port]]);
  const toml = trToml(
    "xtr",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.1.0.0/24", rlocIface("eth0", 1), rlocIface("eth1", 2)),
  );
  const x = await startTr(toml, { platform, ports });
  try {
    const first = await ms.next("map-register");
    assert.deepEqual(locs(first.message.msg.records[0]!), [XTR, "127.0.0.5"]);
    x.dp.events!.onPeer!(ETR, 0, "10.2.0.10");
    platform.push({ kind: "link", change: "new", link: n.setLinkUp("eth1", false) });
    const again = await ms.next("map-register");
    assert.deepEqual(locs(again.message.msg.records[0]!), [XTR]);
    const smr = await peer.next("map-request");
    const m = smr.message.msg;
    assert.equal(m.smr, true);
    assert.equal(addressToString(m.sourceEid), "10.1.0.0");
    assert.equal(addressToString(m.records[0]!.eid), "10.2.0.10");
    assert.equal(x.counters.get("oor_tr_smrs_sent_total"), 1);
    assert.deepEqual(x.tr.database()[0]!.locators.map((l) => l.address), [XTR]);
    // The per-RLOC rule of the interface that went down is gone.
    const rlocRules = n.ruleList.filter((r) => r.table >= rlocTable(0)).map((r) => r.from);
    assert.deepEqual(rlocRules, [`${XTR}/32`]);
  } finally {
    await x.tr.close();
    ms.close();
    peer.close();
  }
});

Deno.test("tunnel router answers an SMR for a cached EID with an SMR-invoked Map-Request via the map-resolver", async () => {
  const mr = await Host.open(MR);
  const etr = await Host.open(ETR);
  answerWith(mr, () => [record("10.2.0.0/24", [ETR])]);
  const x = await startTr(xtrToml(), { ports: new Map([[MR, mr.peer.port]]) });
  try {
    x.dp.events!.onMiss(0, "10.2.0.10", "10.1.0.10");
    await until(() => x.dp.mappings.has("10.2.0.0/24"), "the mapping");
    mr.got.length = 0;
    const smr = (src: string) =>
      etr.cp.send(
        request("10.1.0.0/24", { smr: true, sourceEid: ipAddress(src) }),
        { address: XTR, port: x.tr.controlPort },
      );
    smr("10.7.0.1"); // not cached: ignored
    smr("10.2.0.33");
    await until(() => mr.got.length === 1, "the SMR-invoked Map-Request");
    const m = mr.got[0]!.message.msg as MapRequest;
    assert.equal(m.smrInvoked, true);
    assert.equal(addressToString(m.records[0]!.eid), "10.2.0.33");
    assert.equal(x.counters.get("oor_tr_smrs_received_total", { result: "ignored" }), 1);
    assert.equal(x.counters.get("oor_tr_smrs_received_total", { result: "requested" }), 1);
  } finally {
    await x.tr.close();
    mr.close();
    etr.close();
  }
});

// ---------------------------------------------------------------------------
// RLOC probing

Deno.test("tunnel router marks a locator down after unanswered probes and up when replies return", async () => {
  const mr = await Host.open(MR);
  const etr = await Host.open(ETR);
  answerWith(mr, () => [record("10.2.0.0/24", [ETR])]);
  let answering = false;
  etr.answer = (r) => {
    if (r.message.type !== "map-request" || !r.message.msg.probe) return false;
    if (answering) {
      const m = r.message.msg;
      etr.cp.send({
        type: "map-reply",
        msg: {
          probe: true,
          echoNonce: false,
          security: false,
          nonce: m.nonce,
          records: [record("10.2.0.0/24", [ETR])],
        },
      }, r.from);
    }
    etr.got.push(r);
    return true;
  };
  const toml = trToml(
    "xtr",
    `control-address = "${XTR}"`,
    [
      "[rloc-probing]",
      "rloc-probe-interval = 1",
      "rloc-probe-retries = 1",
      "rloc-probe-retries-interval = 1",
    ].join("\n"),
    mapServer(),
    mapping("10.1.0.0/24", rlocAddress(XTR)),
  );
  const x = await startTr(toml, {
    ports: new Map([[MR, mr.peer.port], [ETR, etr.peer.port]]),
    timing: { probeIntervalMs: 80, probeRetryMs: 30 },
  });
  try {
    x.dp.events!.onMiss(0, "10.2.0.10", "10.1.0.10");
    await until(() => x.dp.locatorCalls.length > 0, "the locator going down");
    assert.deepEqual(x.dp.locatorCalls, [[ETR, false]]);
    assert.equal(x.dp.mappings.get("10.2.0.0/24")!.locators[0]!.up, false);
    assert.ok(etr.got.filter((r) => (r.message.msg as MapRequest).probe).length >= 2);
    assert.equal(x.counters.get("oor_tr_locators_down"), 1);
    assert.equal(x.tr.mapCache()[0]!.locators[0]!.up, false);
    const rtt = 'oor_tr_rloc_probe_rtt_seconds{rloc="127.0.0.4"}';
    assert.equal(x.counters.snapshot()[rtt], undefined, "no RTT before an answer");
    let remote = (await x.tr.statusSource().status!()).remoteRlocs;
    assert.equal(remote?.length, 1);
    assert.equal(remote![0]!.state, "down");
    assert.equal(remote![0]!.rttMs, null);
    answering = true;
    await until(() => x.dp.locatorCalls.length > 1, "the locator coming back");
    assert.deepEqual(x.dp.locatorCalls[1], [ETR, true]);
    assert.equal(x.counters.get("oor_tr_locators_down"), 0);
    assert.ok(x.counters.get("oor_tr_probes_answered_total") >= 1);
    assert.equal(x.tr.probes()[0]!.up, true);
    const seconds = x.counters.snapshot()[rtt];
    assert.ok(seconds !== undefined && seconds >= 0 && seconds < 1, `RTT gauge ${seconds}`);
    remote = (await x.tr.statusSource().status!()).remoteRlocs;
    assert.equal(remote![0]!.address, ETR);
    assert.equal(remote![0]!.state, "up");
    assert.equal(remote![0]!.rttMs, x.tr.probes()[0]!.rttMs);
    assert.equal(typeof remote![0]!.lastAnswer, "number");
    assert.ok(remote![0]!.answered >= 1 && remote![0]!.sent > remote![0]!.answered);
  } finally {
    await x.tr.close();
    mr.close();
    etr.close();
  }
});

// ---------------------------------------------------------------------------
// Modes, host set-up and clean-up

/** A route as a line: `dst dev N` into an interface, `dst unreachable metric M` otherwise. */
function routeLine(r: Route): string {
  return r.type === "unicast"
    ? `${r.dst} dev ${r.dev}`
    : `${r.dst} ${r.type}${r.metric !== undefined ? ` metric ${r.metric}` : ""}`;
}

/** Table 100's routes as lines ({@link routeLine}). */
function table100(n: FakeNet): string[] {
  return n.routes({ table: EID_TABLE }).map(routeLine);
}

function hostWithRoutes(): FakePlatform {
  const p = new FakePlatform();
  const n = p.fakeNet;
  n.link(1, "lo");
  n.link(2, "eth0");
  n.address(2, `${XTR}/8`);
  n.routeAdd({ dst: "127.0.0.0/8", dev: 2, scope: 253, src: XTR });
  n.routeAdd({ dst: "0.0.0.0/0", dev: 2, gateway: "127.0.0.254" });
  return p;
}

Deno.test("xtr sets up OOR's rules, table 100 and the per-RLOC table, and removes all of it on close", async () => {
  const platform = hostWithRoutes();
  const before = platform.fakeNet.snapshot();
  const toml = trToml(
    "xtr",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.1.0.0/24", rlocIface("eth0")),
    mapping("fd00:1::/64", rlocIface("eth0")),
  );
  const x = await startTr(toml, { platform });
  const n = platform.fakeNet;
  try {
    assert.equal(x.dp.opts!.mode, "xtr");
    assert.equal(x.dp.opts!.tunFd, -1);
    assert.ok(n.links.some((l) => l.name === "lispTun0"));
    const rules = n.ruleList.map((r) =>
      `${r.priority} ${r.from ?? "all"} ${r.to ?? "all"} ${r.table}`
    );
    assert.deepEqual(
      rules.sort(),
      [
        `${FROM_EID_PRIORITY} 10.1.0.0/24 all ${EID_TABLE}`,
        `${FROM_EID_PRIORITY} fd00:1::/64 all ${EID_TABLE}`,
        `${TO_EID_PRIORITY} all 10.1.0.0/24 254`,
        `${TO_EID_PRIORITY} all fd00:1::/64 254`,
        `${rlocTable(2)} ${XTR}/32 all ${rlocTable(2)}`,
      ].sort(),
    );
    assert.deepEqual(table100(n).sort(), [
      "0.0.0.0/0 dev 50",
      `0.0.0.0/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
      "::/0 dev 50",
      `::/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
    ]);
    const tx = n.routes({ table: rlocTable(2) }).map((r) => `${r.dst} ${r.gateway ?? "-"}`);
    assert.deepEqual(tx.sort(), ["0.0.0.0/0 127.0.0.254", "127.0.0.0/8 -"]);
    assert.deepEqual(x.dp.local.map(formatPrefix), ["10.1.0.0/24", "fd00:1::/64"]);
    assert.ok(x.tr.hostChanges().length >= 8);
  } finally {
    await x.tr.close();
  }
  assert.equal(n.snapshot(), before, "every rule, route and the TUN removed");
  assert.equal(x.dp.stopped, true);
});

Deno.test("xtr re-adds per-RLOC routes the kernel flushed when a link went down and came back", async () => {
  const platform = hostWithRoutes();
  const n = platform.fakeNet;
  const x = await startTr(
    trToml("xtr", RLOC_PROBING_OFF, mapServer(), mapping("10.1.0.0/24", rlocIface("eth0"))),
    { platform },
  );
  try {
    const table = rlocTable(2);
    assert.equal(n.routes({ table }).length, 2);
    // The link goes down: the kernel flushes its routes everywhere.
    n.routeList = n.routeList.filter((r) => r.dev !== 2);
    platform.push({ kind: "link", change: "new", link: n.setLinkUp("eth0", false) });
    await until(() => n.ruleList.every((r) => r.table !== table), "the rule removed");
    // It comes back with its routes in main.
    n.routeAdd({ dst: "127.0.0.0/8", dev: 2, scope: 253, src: XTR });
    n.routeAdd({ dst: "0.0.0.0/0", dev: 2, gateway: "127.0.0.254" });
    platform.push({ kind: "link", change: "new", link: n.setLinkUp("eth0", true) });
    await until(() => n.routes({ table }).length === 2, "table x filled again");
    assert.ok(n.ruleList.some((r) => r.table === table));
  } finally {
    await x.tr.close();
  }
});

Deno.test("xtr fails closed: table 100's unreachable routes outlive a killed run; the next start adopts them once", async () => {
  const platform = hostWithRoutes();
  const n = platform.fakeNet;
  const before = n.snapshot();
  const toml = trToml(
    "xtr",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.1.0.0/24", rlocIface("eth0")),
    mapping("fd00:1::/64", rlocIface("eth0")),
  );
  // A run killed with SIGKILL: nothing undone, its TUN (and the TUN's routes) gone with it.
  const first = await startTr(toml, { platform });
  const tun = first.platform.tunIndex - 1;
  const killed = {
    links: n.links.filter((l) => l.index !== tun),
    addrs: n.addrs.filter((a) => a.index !== tun),
    routeList: n.routeList.filter((r) => r.dev !== tun),
    ruleList: [...n.ruleList],
  };
  await first.tr.close();
  Object.assign(n, killed);
  assert.deepEqual(table100(n).sort(), [
    `0.0.0.0/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
    `::/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
  ], "site traffic finds 'unreachable' in table 100, not main");
  assert.ok(n.ruleList.some((r) => r.from === "10.1.0.0/24" && r.table === EID_TABLE));

  const second = await startTr(toml, { platform });
  try {
    assert.deepEqual(table100(n).sort(), [
      "0.0.0.0/0 dev 51",
      `0.0.0.0/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
      "::/0 dev 51",
      `::/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
    ], "adopted once, next to the new TUN's routes");
    const adopted = second.lines.filter((l) => l.includes("adopted-existing"));
    assert.ok(adopted.some((l) => l.includes("unreachable 0.0.0.0/0")), adopted.join("\n"));
    assert.ok(adopted.some((l) => l.includes("unreachable ::/0")), adopted.join("\n"));
    assert.equal(
      second.lines.some((l) => / (error|warn) /.test(l)),
      false,
      second.lines.join("\n"),
    );
  } finally {
    await second.tr.close();
  }
  assert.equal(n.snapshot(), before, "a clean stop removes the adopted routes too");
});

Deno.test("xtr removes the fail-closed route of a family with its last EID prefix", async () => {
  const platform = hostWithRoutes();
  const n = platform.fakeNet;
  const x = await startTr(
    trToml(
      "xtr",
      RLOC_PROBING_OFF,
      mapServer(),
      mapping("10.1.0.0/24", rlocIface("eth0")),
      mapping("fd00:1::/64", rlocIface("eth0")),
    ),
    { platform },
  );
  try {
    const del = await api(x.tr.statusSource()).send(
      "DELETE",
      "/api/v1/database?eid-prefix=fd00:1::/64&iid=0",
    );
    assert.equal(del.status, 200);
    assert.deepEqual(table100(n).sort(), [
      "0.0.0.0/0 dev 50",
      `0.0.0.0/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
    ]);
  } finally {
    await x.tr.close();
  }
});

Deno.test("xtr gives the data plane its TUN MTU and, as the path MTU, its RLOC interfaces' MTU per family", async () => {
  const platform = hostWithRoutes();
  const n = platform.fakeNet;
  n.links = n.links.map((l) => l.name === "eth0" ? { ...l, mtu: 1400 } : l);
  const x = await startTr(
    trToml(
      "xtr",
      "tun-mtu = 9000",
      RLOC_PROBING_OFF,
      mapServer(),
      mapping("10.1.0.0/24", rlocIface("eth0")),
    ),
    { platform },
  );
  try {
    assert.equal(x.dp.opts!.tunMtu, 9000);
    assert.deepEqual(x.dp.opts!.pathMtu, { ipv4: 1400, ipv6: 0 });
    assert.ok(x.lines.some((l) => / path-mtu ipv4=1400 ipv6=0/.test(l)), x.lines.join("\n"));
  } finally {
    await x.tr.close();
  }
});

Deno.test("mn puts its EID on the TUN, routes both halves into it, binds to its RLOC, and cleans up", async () => {
  const platform = hostWithRoutes();
  const before = platform.fakeNet.snapshot();
  const toml = trToml(
    "mn",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.3.0.5/32", rlocIface("eth0")),
  );
  const x = await startTr(toml, { mode: "mn", platform });
  const n = platform.fakeNet;
  try {
    assert.deepEqual(
      n.addrs.filter((a) => a.index === 50).map((a) => `${a.address}/${a.prefixLen}`),
      ["10.3.0.5/32"],
    );
    const main = n.routes({ table: 254 }).filter((r) => r.dev === 50);
    assert.deepEqual(main.map((r) => `${r.dst} src ${r.src}`).sort(), [
      "0.0.0.0/1 src 10.3.0.5",
      "128.0.0.0/1 src 10.3.0.5",
    ]);
    // Behind each, its fail-closed twin: a killed mobile node sends nothing natively.
    assert.deepEqual(
      n.routes({ table: 254 }).filter((r) => r.type === "unreachable").map(routeLine).sort(),
      [
        `0.0.0.0/1 unreachable metric ${FAIL_CLOSED_METRIC}`,
        `128.0.0.0/1 unreachable metric ${FAIL_CLOSED_METRIC}`,
      ],
    );
    assert.deepEqual(platform.udp.find((u) => u.family === "ipv4"), {
      family: "ipv4",
      port: 4341,
      address: XTR,
    });
    assert.ok(n.ruleList.some((r) => r.from === `${XTR}/32` && r.table === rlocTable(2)));
    assert.equal(n.ruleList.some((r) => r.table === EID_TABLE), false, "no xTR rules");
  } finally {
    await x.tr.close();
  }
  assert.equal(n.snapshot(), before);
});

Deno.test("mn moves its control and data sockets to its new RLOC, then registers from there", async () => {
  const platform = hostWithRoutes();
  const n = platform.fakeNet;
  const ms = await Host.open(MS);
  const toml = trToml(
    "mn",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.3.0.5/32", rlocIface("eth0")),
  );
  const x = await startTr(toml, { mode: "mn", platform, ports: new Map([[MS, ms.peer.port]]) });
  try {
    const first = await ms.next("map-register");
    assert.equal(first.from.address, XTR);
    const moved = "127.0.0.5";
    const old = n.addrs.find((a) => a.address === XTR)!;
    n.addrs = n.addrs.filter((a) => a !== old);
    platform.push({ kind: "address", change: "del", address: old });
    platform.push({ kind: "address", change: "new", address: n.address(2, `${moved}/8`) });
    const again = await ms.next("map-register");
    assert.equal(again.from.address, moved, "registered from the new RLOC");
    assert.deepEqual(locs(again.message.msg.records[0]!), [moved]);
    assert.equal(x.dp.starts, 2, "the data plane was started again");
    assert.deepEqual(platform.udp.filter((u) => u.family === "ipv4").map((u) => u.address), [
      XTR,
      moved,
    ]);
    assert.ok(x.lines.some((l) => /control-rebound address=127.0.0.5/.test(l)));
    assert.ok(n.ruleList.some((r) => r.from === `${moved}/32`), "per-RLOC rule of the new RLOC");
    assert.ok(!n.ruleList.some((r) => r.from === `${XTR}/32`), "none for the old one");
  } finally {
    await x.tr.close();
    ms.close();
  }
});

Deno.test("mn registers from its new RLOC before its data plane's Workers are back (convergence)", async () => {
  const platform = hostWithRoutes();
  const n = platform.fakeNet;
  const ms = await Host.open(MS);
  let release = () => {};
  const restarted = new Promise<void>((r) => release = r);
  const toml = trToml(
    "mn",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.3.0.5/32", rlocIface("eth0")),
  );
  const x = await startTr(toml, {
    mode: "mn",
    platform,
    ports: new Map([[MS, ms.peer.port]]),
    // The second start (the rebind) waits until the test lets it go.
    dataPlaneGate: (k) => k === 2 ? restarted : Promise.resolve(),
  });
  try {
    await ms.next("map-register");
    const moved = "127.0.0.5";
    const old = n.addrs.find((a) => a.address === XTR)!;
    n.addrs = n.addrs.filter((a) => a !== old);
    platform.push({ kind: "address", change: "del", address: old });
    platform.push({ kind: "address", change: "new", address: n.address(2, `${moved}/8`) });
    // The Map-Register leaves while the data plane is still starting.
    const again = await ms.next("map-register");
    assert.equal(again.from.address, moved);
    assert.equal(x.dp.starts, 2, "the data plane is starting again");
    assert.ok(!x.lines.some((l) => l.includes("dataplane-rebound")), "and not back yet");
    release();
    await until(() => x.lines.some((l) => l.includes("dataplane-rebound")), "the rebind");
  } finally {
    release();
    await x.tr.close();
    ms.close();
  }
});

Deno.test("rtr takes its RLOCs from rtr-iface, has no TUN, answers probes for any EID, and asks with its RLOC", async () => {
  const platform = hostWithRoutes();
  const before = platform.fakeNet.snapshot();
  const mr = await Host.open(MR);
  const prober = await Host.open(ETR);
  answerWith(mr, () => [record("10.2.0.0/24", [ETR])]);
  const toml = trToml(
    "rtr",
    RLOC_PROBING_OFF,
    ["[[rtr-iface]]", 'iface = "eth0"', "ip_version = 4", "priority = 1", "weight = 100"].join(
      "\n",
    ),
  );
  const x = await startTr(toml, { mode: "rtr", platform, ports: new Map([[MR, mr.peer.port]]) });
  try {
    assert.equal(x.dp.opts!.mode, "rtr");
    assert.equal(x.dp.opts!.tunFd, -1);
    assert.equal(platform.fakeNet.links.some((l) => l.name === "lispTun0"), false);
    assert.deepEqual(x.tr.database()[0]!.locators.map((l) => l.address), [XTR]);
    x.dp.events!.onMiss(0, "10.2.0.10", "10.1.0.10");
    await until(() => x.dp.mappings.has("10.2.0.0/24"), "the mapping");
    assert.deepEqual((mr.got[0]!.message.msg as MapRequest).itrRlocs.map(addressToString), [XTR]);
    prober.cp.send(request("10.1.0.0/24", { probe: true, nonce: 5n }), {
      address: XTR,
      port: x.tr.controlPort,
    });
    const r = await prober.next("map-reply");
    assert.equal(r.message.msg.probe, true);
    assert.deepEqual(locs(r.message.msg.records[0]!), [XTR]);
    assert.equal(x.tr.registrations().length, 0);
  } finally {
    await x.tr.close();
    mr.close();
    prober.close();
  }
  assert.equal(platform.fakeNet.snapshot(), before);
});

Deno.test("tunnel router undoes what it set up when its start fails", async () => {
  const platform = hostWithRoutes();
  const before = platform.fakeNet.snapshot();
  let rules = 0;
  platform.fakeNet.failOn = (op) => {
    if (op === "ruleAdd" && ++rules === 2) throw errno("EPERM", "rule");
  };
  await assert.rejects(
    startTr(xtrToml(), { platform }),
    (e: Error) => /EPERM/.test(e.message),
  );
  assert.equal(platform.fakeNet.snapshot(), before);
});

Deno.test("preflight() says which sysctls to change for rp_filter and forwarding", () => {
  const sys = new Map([
    ["net.ipv4.conf.all.rp_filter", "1"],
    ["net.ipv4.conf.eth0.rp_filter", "2"],
    ["net.ipv4.conf.eth1.rp_filter", "1"],
    ["net.ipv4.ip_forward", "0"],
    ["net.ipv6.conf.all.forwarding", "1"],
  ]);
  const found = preflight((p) => sys.get(p.join(".")), {
    forwarding: true,
    families: new Set<IpFamily>(["ipv4", "ipv6"]),
    rlocIfaces: ["eth0", "eth1"],
  });
  assert.deepEqual(found.map((f) => f.fix), [
    "sysctl -w net.ipv4.conf.all.rp_filter=0",
    "sysctl -w net.ipv4.conf.eth1.rp_filter=0",
    "sysctl -w net.ipv4.ip_forward=1",
  ]);
  assert.deepEqual(
    preflight((p) => sys.get(p.join(".")), {
      forwarding: false,
      families: new Set<IpFamily>(["ipv4"]),
      rlocIfaces: ["eth0"],
    }).map((f) => f.key),
    ["net.ipv4.conf.all.rp_filter"],
  );
});

Deno.test("tunnel router logs the preflight findings at start", async () => {
  const platform = hostWithRoutes();
  platform.sysctls.set("net.ipv4.ip_forward", "0");
  platform.sysctls.set("net.ipv4.conf.all.rp_filter", "0");
  const x = await startTr(xtrToml(), { platform });
  try {
    assert.deepEqual(x.tr.preflight.map((f) => f.key), ["net.ipv4.ip_forward"]);
    assert.ok(
      x.lines.some((l) => /warn .* preflight key=net.ipv4.ip_forward value=0 want=1/.test(l)),
    );
  } finally {
    await x.tr.close();
  }
});

Deno.test("Journal undoes newest first and logs failures instead of throwing", () => {
  const lines: string[] = [];
  const j = new Journal(
    new Logger({ role: "t", level: "debug", sink: { write: (l) => lines.push(l) } }),
  );
  const order: string[] = [];
  j.add("a", "first", () => order.push("a"));
  j.add("b", "second", () => {
    throw errno("ESRCH", "gone");
  });
  j.add("c", "third", () => {
    throw new Error("boom");
  });
  j.add("d", "fourth", () => order.push("d"));
  j.undoAll();
  assert.deepEqual(order, ["d", "a"]);
  assert.equal(j.size, 0);
  assert.ok(lines.some((l) => /debug .* undo-already-gone what=second code=ESRCH/.test(l)));
  assert.ok(lines.some((l) => /warn .* undo-failed what=third error=boom/.test(l)));
});

// ---------------------------------------------------------------------------
// HTTP API (statusSource)

const TOKEN = "t0ken";

function api(source: StatusSource) {
  const app = createApp(source, {
    token: TOKEN,
    version: "test",
    role: "xtr",
    startedAt: Date.now(),
    now: Date.now,
  });
  const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  return {
    get: async (path: string) => {
      const res = await app.request(path);
      assert.equal(res.status, 200, `GET ${path}`);
      return await res.json();
    },
    send: (method: string, path: string, body?: unknown) =>
      app.request(path, {
        method,
        headers: auth,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }),
  };
}

/** The Map-Notify of a Map-Register, as a map-server sends it (unsigned). */
function notifyOf(m: MapRegister): MapNotify {
  const common = {
    ack: false,
    rtrAuthPresent: false,
    nonce: m.nonce,
    keyId: m.keyId,
    authData: new Uint8Array(0),
    records: m.records,
  };
  return m.xtrIdPresent
    ? { ...common, xtrIdPresent: true, xtrId: m.xtrId!, siteId: m.siteId! }
    : { ...common, xtrIdPresent: false };
}

/** A test map-server answering every Map-Register wanting one with a Map-Notify under key "k". */
function notifying(ms: Host): void {
  const key = new HmacKey(2, "k");
  ms.answer = (r) => {
    if (r.message.type !== "map-register") return false;
    const m = r.message.msg;
    if (m.wantMapNotify) {
      ms.cp.send(emitSignedMapNotify(notifyOf(m), key), r.from);
    }
    return false; // kept as well
  };
}

Deno.test("tunnel router API shows its RLOCs, the map-server's last Map-Notify, the map-cache and the database", async () => {
  const ms = await Host.open(MS);
  notifying(ms);
  const toml = xtrToml(
    [
      "[[static-map-cache]]",
      'eid-prefix = "10.9.0.0/16"',
      "[[static-map-cache.rloc-address]]",
      `address = "${ETR}"`,
      "priority = 1",
      "weight = 100",
    ].join("\n"),
  );
  const x = await startTr(toml, { ports: new Map([[MS, ms.peer.port]]) });
  const a = api(x.tr.statusSource());
  try {
    await until(() => x.tr.registrations()[0]?.notified === true, "a Map-Notify");
    const status = await a.get("/api/v1/status");
    assert.deepEqual(status.rlocs, [{ address: XTR, state: "up", priority: 1, weight: 100 }]);
    const servers = status["map-servers"];
    assert.equal(servers.length, 1);
    assert.equal(servers[0].address, MS);
    assert.equal(servers[0].registered, true);
    assert.equal(servers[0].state, "registered");
    assert.equal(servers[0].failures, 0);
    assert.equal(typeof servers[0]["last-map-notify"], "number");
    assert.equal(status.details.mode, "xtr");

    const cache = (await a.get("/api/v1/map-cache")).entries;
    assert.equal(typeof cache[0]?.since, "number", "since when the prefix has an entry");
    assert.deepEqual(cache.map(({ since: _, ...x }: { since: number }) => x), [{
      "eid-prefix": "10.9.0.0/16",
      iid: 0,
      kind: "positive",
      static: true,
      origin: "config",
      "expires-at": null,
      "rloc-address": [{ address: ETR, priority: 1, weight: 100, state: "up" }],
    }]);
    assert.deepEqual((await a.get("/api/v1/map-cache?iid=5")).entries, []);
    assert.deepEqual((await a.get("/api/v1/database")).entries, [{
      "eid-prefix": "10.1.0.0/24",
      iid: 0,
      ttl: 10,
      "rloc-address": [{ address: XTR, priority: 1, weight: 100, state: "up" }],
    }]);
    const stats = (await a.get("/api/v1/stats")).counters;
    assert.ok(stats['oor_tr_map_notifies_total{result="ok"}'] >= 1);
  } finally {
    await x.tr.close();
    ms.close();
  }
});

Deno.test("tunnel router API adds a database mapping, registers it at once, and withdraws it when removed", async () => {
  const ms = await Host.open(MS);
  notifying(ms);
  const x = await startTr(xtrToml(), { ports: new Map([[MS, ms.peer.port]]) });
  const a = api(x.tr.statusSource());
  const n = x.platform.fakeNet;
  try {
    await ms.next("map-register"); // 10.1.0.0/24 at start
    const res = await a.send("POST", "/api/v1/database", {
      "eid-prefix": "10.2.0.0/24",
      "ttl": 5,
      "rloc-address": [{ address: XTR, priority: 2, weight: 50 }],
    });
    assert.equal(res.status, 201, await res.clone().text());
    // The retry timer is 10 s in these tests: this one is sent by the edit itself.
    const reg = await ms.next("map-register", 1000);
    const rec = reg.message.msg.records[0]!;
    assert.equal(`${addressToString(rec.eid)}/${rec.maskLen}`, "10.2.0.0/24");
    assert.equal(rec.ttl, 5);
    assert.deepEqual(locs(rec), [XTR]);
    assert.deepEqual(x.dp.local.map(formatPrefix), ["10.1.0.0/24", "10.2.0.0/24"]);
    const rule = (to: string) =>
      n.ruleList.some((r) => r.to === to && r.priority === TO_EID_PRIORITY);
    assert.ok(rule("10.2.0.0/24"));
    assert.ok(n.ruleList.some((r) => r.from === "10.2.0.0/24" && r.table === EID_TABLE));
    await until(() => x.tr.registrations().every((r) => r.notified), "both notified");
    const db = (await a.get("/api/v1/database")).entries;
    assert.deepEqual(db.map((d: { "eid-prefix": string }) => d["eid-prefix"]), [
      "10.1.0.0/24",
      "10.2.0.0/24",
    ]);

    // Replacing it re-registers at once with the new TTL.
    const again = await a.send("POST", "/api/v1/database", {
      "eid-prefix": "10.2.0.0/24",
      "ttl": 7,
      "rloc-address": [{ address: XTR, priority: 2, weight: 50 }],
    });
    assert.equal(again.status, 201);
    assert.equal((await ms.next("map-register", 1000)).message.msg.records[0]!.ttl, 7);
    assert.equal(x.tr.registrations().length, 2);

    const del = await a.send("DELETE", "/api/v1/database?eid-prefix=10.2.0.0/24&iid=0");
    assert.equal(del.status, 200);
    const withdraw = await ms.next("map-register", 1000);
    const wrec = withdraw.message.msg.records[0]!;
    assert.equal(`${addressToString(wrec.eid)}/${wrec.maskLen}`, "10.2.0.0/24");
    assert.equal(wrec.ttl, 0);
    assert.deepEqual(x.dp.local.map(formatPrefix), ["10.1.0.0/24"]);
    assert.ok(!rule("10.2.0.0/24"));
    assert.ok(rule("10.1.0.0/24"));
    assert.equal(x.tr.registrations().length, 1);
    const gone = await a.send("DELETE", "/api/v1/database?eid-prefix=10.2.0.0/24&iid=0");
    assert.equal(gone.status, 404);
  } finally {
    await x.tr.close();
    ms.close();
  }
});

Deno.test("tunnel router API adds and removes static map-cache entries in the data plane", async () => {
  const x = await startTr(xtrToml());
  const a = api(x.tr.statusSource());
  try {
    const res = await a.send("POST", "/api/v1/map-cache", {
      "eid-prefix": "10.8.0.0/16",
      "iid": 3,
      "rloc-address": [{ address: ETR, priority: 1, weight: 100 }],
    });
    assert.equal(res.status, 201, await res.clone().text());
    const m = x.dp.mappings.get("[3]10.8.0.0/16");
    assert.equal(m?.action, "encapsulate");
    assert.deepEqual(m?.locators.map((l) => l.address), [ETR]);
    const cache = (await a.get("/api/v1/map-cache?iid=3")).entries;
    assert.equal(cache.length, 1);
    assert.equal(cache[0]["eid-prefix"], "10.8.0.0/16");
    assert.equal(cache[0].static, true);
    assert.equal(cache[0]["expires-at"], null);
    // Static entries never expire (the sweep runs every 20 ms here).
    await sleep(100);
    assert.ok(x.dp.mappings.has("[3]10.8.0.0/16"));

    const del = await a.send("DELETE", "/api/v1/map-cache?eid-prefix=10.8.0.0/16&iid=3");
    assert.equal(del.status, 200);
    assert.deepEqual(x.dp.deleted, ["[3]10.8.0.0/16"]);
    assert.equal(x.dp.mappings.has("[3]10.8.0.0/16"), false);
    assert.deepEqual((await a.get("/api/v1/map-cache")).entries, []);
    const gone = await a.send("DELETE", "/api/v1/map-cache?eid-prefix=10.8.0.0/16&iid=3");
    assert.equal(gone.status, 404);
  } finally {
    await x.tr.close();
  }
});

Deno.test("rtr API has no database to edit and shows its rtr-iface locators", async () => {
  const platform = new FakePlatform();
  platform.fakeNet.link(2, "eth0");
  platform.fakeNet.address(2, `${XTR}/8`);
  const toml = trToml(
    "rtr",
    RLOC_PROBING_OFF,
    "[[rtr-iface]]",
    'iface = "eth0"',
    "ip_version = 4",
    "priority = 1",
    "weight = 100",
  );
  const x = await startTr(toml, { mode: "rtr", platform });
  const a = api(x.tr.statusSource());
  try {
    const status = await a.get("/api/v1/status");
    assert.deepEqual(status.rlocs, [{
      address: XTR,
      state: "up",
      priority: 1,
      weight: 100,
      interface: "eth0",
    }]);
    assert.equal(status["map-servers"], undefined);
    const res = await a.send("POST", "/api/v1/database", {
      "eid-prefix": "10.2.0.0/24",
      "rloc-address": [{ address: XTR, priority: 1, weight: 100 }],
    });
    assert.equal(res.status, 404);
  } finally {
    await x.tr.close();
  }
});

Deno.test("mn API edits move its EID on the TUN and the half routes with it, and close restores the host", async () => {
  const platform = hostWithRoutes();
  const before = platform.fakeNet.snapshot();
  const toml = trToml(
    "mn",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.3.0.5/32", rlocIface("eth0")),
  );
  const x = await startTr(toml, { mode: "mn", platform });
  const a = api(x.tr.statusSource());
  const n = platform.fakeNet;
  const tunAddrs = () =>
    n.addrs.filter((a) => a.index === 50).map((a) => `${a.address}/${a.prefixLen}`);
  const halves = () =>
    n.routes({ table: 254 }).filter((r) => r.dev === 50).map((r) => `${r.dst} src ${r.src}`)
      .sort();
  try {
    const res = await a.send("POST", "/api/v1/database", {
      "eid-prefix": "10.3.0.6/32",
      "rloc-iface": [{ interface: "eth0", ip_version: 4, priority: 1, weight: 100 }],
    });
    assert.equal(res.status, 201, await res.clone().text());
    assert.deepEqual(tunAddrs(), ["10.3.0.5/32", "10.3.0.6/32"]);
    const del = await a.send("DELETE", "/api/v1/database?eid-prefix=10.3.0.5/32&iid=0");
    assert.equal(del.status, 200);
    assert.deepEqual(tunAddrs(), ["10.3.0.6/32"]);
    assert.deepEqual(halves(), ["0.0.0.0/1 src 10.3.0.6", "128.0.0.0/1 src 10.3.0.6"]);
    assert.deepEqual(x.dp.local.map(formatPrefix), ["10.3.0.6/32"]);
  } finally {
    await x.tr.close();
  }
  assert.equal(n.snapshot(), before);
});

// ---------------------------------------------------------------------------
// Destination filters and instances with their own TUN.

Deno.test("xtr with destination-prefixes routes only those into the TUN", async () => {
  const platform = hostWithRoutes();
  const before = platform.fakeNet.snapshot();
  const toml = trToml(
    "xtr",
    'destination-prefixes = ["10.2.0.0/16", "10.9.9.0/24", "fd00:2::/48"]',
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.1.0.0/24", rlocIface("eth0")),
  );
  const x = await startTr(toml, { platform });
  const n = platform.fakeNet;
  try {
    // IPv4 EIDs only: the IPv6 destination has no source that could use it.
    assert.deepEqual(table100(n).sort(), [
      "10.2.0.0/16 dev 50",
      `10.2.0.0/16 unreachable metric ${FAIL_CLOSED_METRIC}`,
      "10.9.9.0/24 dev 50",
      `10.9.9.0/24 unreachable metric ${FAIL_CLOSED_METRIC}`,
    ]);
    assert.ok(n.ruleList.some((r) => r.from === "10.1.0.0/24" && r.table === EID_TABLE));
  } finally {
    await x.tr.close();
  }
  assert.equal(platform.fakeNet.snapshot(), before, "every route removed");
});

Deno.test("mn with destination-prefixes routes only those into the TUN, from its EID", async () => {
  const platform = hostWithRoutes();
  const before = platform.fakeNet.snapshot();
  const toml = trToml(
    "mn",
    'destination-prefixes = ["10.2.0.0/24"]',
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.3.0.5/32", rlocIface("eth0")),
  );
  const x = await startTr(toml, { mode: "mn", platform });
  const n = platform.fakeNet;
  try {
    const main = n.routes({ table: 254 }).filter((r) => r.dev === 50);
    assert.deepEqual(main.map((r) => `${r.dst} src ${r.src}`), ["10.2.0.0/24 src 10.3.0.5"]);
  } finally {
    await x.tr.close();
  }
  assert.equal(platform.fakeNet.snapshot(), before);
});

Deno.test("xtr gives an [[instance]] its own TUN, iif rules and table, and removes them on close", async () => {
  const platform = hostWithRoutes();
  const n = platform.fakeNet;
  n.link(3, "site1");
  n.link(4, "site2");
  n.address(3, "10.0.0.1/24");
  n.address(4, "10.0.0.1/24");
  n.routeAdd({ dst: "10.0.0.0/24", dev: 3, scope: 253, src: "10.0.0.1" });
  n.routeAdd({ dst: "10.0.0.0/24", dev: 4, scope: 253, src: "10.0.0.1", metric: 1 });
  const before = n.snapshot();
  const tenant = (iid: number) =>
    [
      "[[database-mapping]]",
      'eid-prefix = "10.0.0.0/24"',
      `iid = ${iid}`,
      `rloc-address = [{ address = "${XTR}" }]`,
      "[[instance]]",
      `iid = ${iid}`,
      `site-interfaces = ["site${iid}"]`,
    ].join("\n");
  const x = await startTr(
    trToml(
      "xtr",
      `control-address = "${XTR}"`,
      RLOC_PROBING_OFF,
      mapServer(),
      tenant(1),
      tenant(2),
    ),
    { platform },
  );
  try {
    const tuns = n.links.filter((l) => l.name.startsWith("lispTun0")).map((l) =>
      `${l.name} ${l.index}`
    );
    assert.deepEqual(tuns, ["lispTun0 50", "lispTun0-1 51", "lispTun0-2 52"]);
    assert.deepEqual(x.dp.opts!.instanceTuns, [{ fd: -1, iid: 1 }, { fd: -1, iid: 2 }]);
    const iifRules = n.ruleList
      .filter((r) => r.iif !== undefined)
      .map((r) => `${r.priority} iif ${r.iif} ${r.table}`);
    assert.deepEqual(iifRules.sort(), [
      `${INSTANCE_PRIORITY} iif lispTun0-1 ${instanceTable(1)}`,
      `${INSTANCE_PRIORITY} iif lispTun0-2 ${instanceTable(2)}`,
      `${INSTANCE_PRIORITY} iif site1 ${instanceTable(1)}`,
      `${INSTANCE_PRIORITY} iif site2 ${instanceTable(2)}`,
    ]);
    // No OOR from/to rules for prefixes that live in instances.
    assert.equal(n.ruleList.some((r) => r.from === "10.0.0.0/24" || r.to === "10.0.0.0/24"), false);
    for (const [iid, site, tun] of [[1, 3, 51], [2, 4, 52]] as const) {
      const t = n.routes({ table: instanceTable(iid) }).map(routeLine);
      assert.deepEqual(
        t.sort(),
        [
          `0.0.0.0/0 dev ${tun}`,
          `0.0.0.0/0 unreachable metric ${FAIL_CLOSED_METRIC}`,
          `10.0.0.0/24 dev ${site}`,
        ],
        `table of iid ${iid}`,
      );
    }
    // The local prefixes go to the data plane under their own iids.
    assert.deepEqual(x.dp.local.map(formatPrefix), ["[1]10.0.0.0/24", "[2]10.0.0.0/24"]);
  } finally {
    await x.tr.close();
  }
  assert.equal(n.snapshot(), before, "every TUN, rule and route removed");
});

Deno.test("xtr registers a remote RLOC as written but never names it as an ITR-RLOC", async () => {
  const platform = hostWithRoutes();
  const mr = await Host.open(MR);
  const ms = await Host.open(MS);
  const asked: MapRequest[] = [];
  answerWith(mr, (m) => {
    asked.push(m);
    return [record("10.2.0.0/24", [ETR])];
  });
  const remote = "192.0.2.77";
  const toml = trToml(
    "xtr",
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.1.0.0/24", rlocAddress(remote, 1), rlocAddress(XTR, 2)),
  );
  const x = await startTr(toml, {
    platform,
    ports: new Map([[MR, mr.peer.port], [MS, ms.peer.port]]),
  });
  try {
    const reg = await ms.next("map-register");
    assert.deepEqual(locs(reg.message.msg.records[0]!), [remote, XTR], "both locators registered");
    x.dp.events!.onMiss(0, "10.2.0.10", "10.1.0.10");
    await until(() => asked.length > 0, "a Map-Request");
    assert.deepEqual(asked[0]!.itrRlocs.map(addressToString), [XTR], "only the local locator");
  } finally {
    await x.tr.close();
    mr.close();
    ms.close();
  }
});

Deno.test("locatorIp() sends to an ELP's first hop, or to the hop after ours", () => {
  const elp = {
    kind: "elp" as const,
    hops: ["10.0.0.1", "10.0.0.2", "10.0.0.3"].map((ip) => ({
      lookup: false,
      probe: false,
      strict: false,
      address: ipAddress(ip),
    })),
  };
  assert.equal(locatorIp(ipAddress("10.9.9.9"), new Set(["10.0.0.1"])), "10.9.9.9");
  assert.equal(locatorIp(elp), "10.0.0.1", "the ITR sends to the first hop");
  assert.equal(locatorIp(elp, new Set(["192.0.2.1"])), "10.0.0.1");
  assert.equal(locatorIp(elp, new Set(["10.0.0.1"])), "10.0.0.2", "the first RTR to the second");
  assert.equal(locatorIp(elp, new Set(["10.0.0.2", "192.0.2.1"])), "10.0.0.3");
  assert.equal(locatorIp(elp, new Set(["10.0.0.3"])), undefined, "the last hop sends nowhere");
});

Deno.test("an RTR on an explicit locator path re-encapsulates to the next hop", async () => {
  const platform = new FakePlatform();
  platform.fakeNet.link(2, "eth0");
  platform.fakeNet.address(2, `${XTR}/8`);
  const elp = [
    "[[explicit-locator-path]]",
    'elp-name = "via-rtrs"',
    "[[explicit-locator-path.elp-node]]",
    `address = "${MS}"`,
    "[[explicit-locator-path.elp-node]]",
    `address = "${XTR}"`,
    "[[explicit-locator-path.elp-node]]",
    `address = "${ETR}"`,
    "[[static-map-cache]]",
    'eid-prefix = "10.9.0.0/16"',
    "[[static-map-cache.rloc-address]]",
    'address = "via-rtrs"',
    "priority = 1",
    "weight = 100",
  ];
  const rtrToml = trToml(
    "rtr",
    RLOC_PROBING_OFF,
    "[[rtr-iface]]",
    'iface = "eth0"',
    "ip_version = 4",
    "priority = 1",
    "weight = 100",
    ...elp,
  );
  const x = await startTr(rtrToml, { mode: "rtr", platform });
  try {
    // We are the path's second hop (XTR): the next is the ETR.
    assert.deepEqual(x.dp.mappings.get("10.9.0.0/16")?.locators.map((l) => l.address), [ETR]);
  } finally {
    await x.tr.close();
  }
});

Deno.test("tunnel router API refuses more than 255 locators with 400 and changes nothing: no route, no state, nothing saved", async () => {
  const ms = await Host.open(MS);
  notifying(ms);
  const x = await startTr(xtrToml(), { ports: new Map([[MS, ms.peer.port]]) });
  const dir = await Deno.makeTempDir();
  const statePath = `${dir}/oor.toml.state.json`;
  const edits = new RuntimeEdits(statePath);
  const source = x.tr.statusSource();
  const a = api(edits.wrap(source));
  const n = x.platform.fakeNet;
  const rlocs = Array.from({ length: 256 }, (_, i) => ({ address: `10.200.${i >> 8}.${i & 255}` }));
  const rule = (to: string) => n.ruleList.some((r) => r.to === to || r.from === to);
  try {
    await ms.next("map-register"); // 10.1.0.0/24 at start
    await until(() => x.tr.registrations().every((r) => r.notified), "notified");
    const rulesBefore = n.ruleList.length;
    const res = await a.send("POST", "/api/v1/database", {
      "eid-prefix": "10.2.0.0/24",
      "rloc-address": rlocs,
    });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.field, "rloc-address");
    assert.match(body.error, /256 locators .*at most 255 fit in one EID record/);
    const cache = await a.send("POST", "/api/v1/map-cache", {
      "eid-prefix": "10.3.0.0/24",
      "rloc-address": rlocs,
    });
    assert.equal(cache.status, 400);

    // The role itself refuses it too, before the host or its state is touched.
    const m = {
      eidPrefix: { family: 4 as const, address: "10.2.0.0", length: 24 },
      iid: 0,
      ttl: 10,
      rlocAddresses: rlocs.map((r) => ({ kind: "address" as const, ...r, priority: 1, weight: 1 })),
      rlocIfaces: [],
    };
    await assert.rejects(
      async () => await source.addDatabaseMapping!(m),
      (e: unknown) =>
        e instanceof SourceError && e.status === 400 && e.field === "rloc-address" &&
        /at most 255/.test(e.message),
    );
    await assert.rejects(
      async () =>
        await source.addStaticMapping!({
          eidPrefix: { ...m.eidPrefix, address: "10.3.0.0" },
          iid: 0,
          rlocAddresses: m.rlocAddresses,
        }),
      (e: unknown) => e instanceof SourceError && e.status === 400,
    );

    assert.deepEqual(x.dp.local.map(formatPrefix), ["10.1.0.0/24"], "data plane unchanged");
    assert.equal(x.dp.mappings.has("10.3.0.0/24"), false, "no map-cache entry");
    assert.equal(rule("10.2.0.0/24"), false, "no host route or rule for the EID");
    assert.equal(n.ruleList.length, rulesBefore);
    assert.deepEqual(
      (await a.get("/api/v1/database")).entries.map((d: { "eid-prefix": string }) =>
        d["eid-prefix"]
      ),
      ["10.1.0.0/24"],
    );
    assert.equal(x.tr.registrations().length, 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ms.count("map-register"), 0, "nothing registered");
    assert.equal(edits.size, 0);
    await assert.rejects(() => Deno.stat(statePath), Deno.errors.NotFound, "nothing saved");
  } finally {
    await x.tr.close();
    ms.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tunnel router's control port keeps a burst of 4,000 datagrams that arrives while it is busy, and is free once close() resolves", async () => {
  const x = await startTr(xtrToml());
  const port = x.tr.controlPort;
  let closed = false;
  try {
    // Sent synchronously: nothing reads the control port meanwhile. node:dgram's
    // default receive buffer (about 190 such datagrams) loses most of them.
    const s = UdpSocket.open({ address: XTR, sendBuffer: 16 << 20 });
    try {
      const junk = new Uint8Array(100); // type 0: malformed, counted and dropped
      for (let i = 0; i < 4000; i++) assert.equal(s.sendTo(junk, 0, 100, XTR, port), 100);
    } finally {
      s.close();
    }
    const malformed = () => x.counters.get("oor_control_messages_in_total", { type: "malformed" });
    await until(() => malformed() === 4000, "4000 datagrams counted");
    await x.tr.close();
    closed = true;
    // The socket is closed when close() resolves: the port can be bound again at once.
    UdpSocket.open({ address: XTR, port }).close();
  } finally {
    if (!closed) await x.tr.close();
  }
});

// ---------------------------------------------------------------------------
// Publish/subscribe (RFC 9437, subscription.ts)

/** Our ms on MS (one answering Worker): the xTR's site 10.1.0.0/24 (key "k"), an ETR's 10.9.0.0/16. */
async function startPubSubMs() {
  const text = [
    'operating-mode = "MS"',
    `control-address = "${MS}"`,
    "control-port = 0",
    "control-rate-limit = 0",
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/24"',
    "key-type = 2",
    'key = "k"',
    "[[lisp-site]]",
    'eid-prefix = "10.9.0.0/16"',
    "key-type = 1",
    'key = "e"',
    "accept-more-specifics = true",
    "proxy-reply = true",
  ].join("\n") + "\n";
  const r = parseConfig(text, { role: "ms" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const counters = new Counters();
  const ms = await msStarter({ workers: 1 })(r.config, {
    logger: new Logger({ role: "ms", sink: { write: () => {} } }),
    counters,
    now: Date.now,
  });
  return { ms, counters };
}

/** The ETR of 10.9.0.0/24 registers `rloc` (TTL `ttl` minutes) with the ms at `port`. */
function etrRegisters(etr: Host, port: number, rloc: string, nonce: bigint, ttl = 10): void {
  const m: MapRegister = {
    proxyReply: false,
    securityCapable: false,
    xtrIdPresent: false,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: false,
    nonce,
    keyId: 1,
    authData: new Uint8Array(0),
    records: [record("10.9.0.0/24", [rloc], { ttl })],
  };
  etr.cp.send(emitSignedMapRegister(m, new HmacKey(1, "e")), { address: MS, port });
}

/** An xTR whose map-resolver and map-server is MS, with `subscribe` as given. */
function pubSubXtrToml(subscribe: boolean): string {
  return [
    'operating-mode = "xTR"',
    `control-address = "${XTR}"`,
    "control-port = 0",
    "control-rate-limit = 0",
    `map-resolver = ["${MS}"]`,
    "map-request-retries = 1",
    `subscribe = ${subscribe}`,
    RLOC_PROBING_OFF,
    mapServer(),
    mapping("10.1.0.0/24", rlocAddress(XTR)),
  ].join("\n") + "\n";
}

function dataRlocs(dp: FakeDataPlane, prefix: string): string {
  return dp.mappings.get(prefix)?.locators.map((l) => l.address).join(",") ?? "none";
}

for (const subscribe of [true, false]) {
  Deno.test(
    `tunnel router with subscribe = ${subscribe}: a change at the map-server ${
      subscribe
        ? "reaches the map-cache and the data plane at once, acknowledged"
        : "waits for the TTL"
    }`,
    async () => {
      const { ms, counters: msc } = await startPubSubMs();
      const etr = await Host.open(ETR);
      const x = await startTr(pubSubXtrToml(subscribe), { ports: new Map([[MS, ms.port]]) });
      try {
        etrRegisters(etr, ms.port, "192.0.2.1", 1n);
        await until(() => x.tr.registrations()[0]?.notified === true, "the xTR registered");
        x.dp.events!.onMiss(0, "10.9.0.5", "10.1.0.1");
        await until(() => dataRlocs(x.dp, "10.9.0.0/24") === "192.0.2.1", "the first mapping");
        // The ETR moves to another RLOC: with a subscription, the data plane follows at once.
        etrRegisters(etr, ms.port, "192.0.2.2", 2n);
        if (subscribe) {
          await until(() => dataRlocs(x.dp, "10.9.0.0/24") === "192.0.2.2", "the publication");
          await until(
            () => msc.get("oor_map_server_publications_total", { result: "acknowledged" }) === 2,
            "both publications acknowledged",
          );
          assert.equal(x.counters.get("oor_tr_publications_total", { result: "applied" }), 2);
          const subs = ms.subscriptions();
          assert.equal(subs.length, 1);
          assert.equal(subs[0]!.xtrId, x.tr.xtrId.toString(16).padStart(32, "0"));
          assert.equal(subs[0]!.site, "10.1.0.0/24");
          const view = await x.tr.statusSource().mapCache!({});
          assert.equal(view.find((e) => e.eidPrefix === "10.9.0.0/24")?.origin, "map-notify");
          // Withdrawn: the entry goes, the next packet asks again.
          etrRegisters(etr, ms.port, "192.0.2.2", 3n, 0);
          await until(() => !x.dp.mappings.has("10.9.0.0/24"), "the withdrawal");
        } else {
          await sleep(300);
          assert.equal(dataRlocs(x.dp, "10.9.0.0/24"), "192.0.2.1");
          assert.deepEqual(ms.subscriptions(), []);
          assert.equal(msc.get("oor_map_server_publications_total", { result: "sent" }), 0);
        }
      } finally {
        etr.close();
        await x.tr.close();
        await ms.close();
      }
    },
  );
}

Deno.test("tunnel router with subscribe = true: a map-server that ignores the N and I bits (as OOR 1.3.0) is answered from as usual", async () => {
  const mr = await Host.open(MR);
  answerWith(mr, () => [record("10.9.0.0/24", ["192.0.2.1"], { ttl: 10 })]);
  const x = await startTr(
    trToml(
      "xtr",
      `control-address = "${XTR}"`,
      "subscribe = true",
      RLOC_PROBING_OFF,
      mapServer(),
      mapping("10.1.0.0/24", rlocAddress(XTR)),
    ),
    { ports: new Map([[MR, mr.peer.port]]), xtrId: 0xabcdefn },
  );
  try {
    x.dp.events!.onMiss(0, "10.9.0.5", "10.1.0.1");
    await until(() => dataRlocs(x.dp, "10.9.0.0/24") === "192.0.2.1", "the Map-Reply's mapping");
    const req = mr.got.find((r) => r.message.type === "map-request")!;
    const m = req.message.msg as MapRequest;
    assert.equal(m.records[0]!.notify, true);
    assert.equal(m.xtrId, 0xabcdefn);
    assert.equal(m.siteId, 0n);
    // A Map-Notify with our xTR-ID that no key verifies is not applied.
    mr.cp.send(
      emitSignedMapNotify({
        ack: false,
        xtrIdPresent: true,
        rtrAuthPresent: false,
        nonce: 5n,
        keyId: 2,
        authData: new Uint8Array(0),
        records: [record("10.9.0.0/24", ["192.0.2.66"], { ttl: 10 })],
        xtrId: 0xabcdefn,
        siteId: 0n,
      }, new HmacKey(2, "forged")),
      { address: XTR, port: x.tr.controlPort },
    );
    await until(
      () => x.counters.get("oor_tr_publications_total", { result: "auth" }) === 1,
      "the forged publication refused",
    );
    assert.equal(dataRlocs(x.dp, "10.9.0.0/24"), "192.0.2.1");
  } finally {
    await x.tr.close();
    mr.close();
  }
});

Deno.test("tunnel router API edits its map-servers, map-resolvers and proxy-ETRs at once, saved for the next start", async () => {
  const MS2 = "127.0.0.5";
  const ms = await Host.open(MS);
  const ms2 = await Host.open(MS2);
  notifying(ms);
  notifying(ms2);
  const dir = await Deno.makeTempDir();
  const statePath = `${dir}/state.json`;
  const x = await startTr(xtrToml(), {
    ports: new Map([[MS, ms.peer.port], [MS2, ms2.peer.port]]),
  });
  try {
    const edits = await RuntimeEdits.open(statePath);
    edits.apply(x.config);
    const a = api(edits.wrap(x.tr.statusSource()));
    await ms.next("map-register"); // at start
    assert.deepEqual((await a.get("/api/v1/map-servers")).entries, [
      { address: MS, "key-type": 2, "proxy-reply": false, merge: false },
    ]);

    // A map-server without the key an xtr signs with: 400, nothing changes.
    const noKey = await a.send("POST", "/api/v1/map-servers", { address: MS2, "key-type": 2 });
    assert.equal(noKey.status, 400);
    assert.equal((await noKey.json()).field, "key");
    const badType = await a.send("POST", "/api/v1/map-servers", {
      address: MS2,
      "key-type": 3,
      key: "k",
    });
    assert.equal(badType.status, 400);
    assert.equal((await badType.json()).field, "key-type");
    assert.equal(ms2.count("map-register"), 0);

    // Added: registered with at once (the retry timer is 10 s here).
    const add = await a.send("POST", "/api/v1/map-servers", {
      address: MS2,
      "key-type": 2,
      key: "k",
    });
    assert.equal(add.status, 201, await add.clone().text());
    assert.equal((await add.json()).added.key, undefined, "the key is not echoed");
    const reg = await ms2.next("map-register", 1000);
    assert.equal(`${addressToString(reg.message.msg.records[0]!.eid)}`, "10.1.0.0");

    // Removed: withdrawn from it; the last one stays (an xtr needs one).
    const del = await a.send("DELETE", `/api/v1/map-servers?address=${MS}`);
    assert.equal(del.status, 200, await del.clone().text());
    const withdraw = await ms.next("map-register", 1000);
    assert.equal(withdraw.message.msg.records[0]!.ttl, 0);
    const last = await a.send("DELETE", `/api/v1/map-servers?address=${MS2}`);
    assert.equal(last.status, 409);
    assert.match((await last.json()).error, /last map-server, and role xtr needs at least one/);
    const none = await a.send("DELETE", "/api/v1/map-servers?address=192.0.2.200");
    assert.equal(none.status, 404);
    await none.body?.cancel();

    // Map-resolvers and proxy-ETRs.
    const mr = await a.send("POST", "/api/v1/map-resolvers", { address: "127.0.0.6" });
    assert.equal(mr.status, 201, await mr.clone().text());
    assert.equal((await a.send("DELETE", `/api/v1/map-resolvers?address=${MR}`)).status, 200);
    assert.deepEqual((await a.get("/api/v1/map-resolvers")).entries, [{ address: "127.0.0.6" }]);
    const petr = await a.send("POST", "/api/v1/proxy-etrs", {
      address: "192.0.2.99",
      priority: 1,
      weight: 100,
    });
    assert.equal(petr.status, 201, await petr.clone().text());
    assert.deepEqual(x.dp.petrs.ipv4.map((l) => l.address), ["192.0.2.99"]);
    const bad = await a.send("POST", "/api/v1/proxy-etrs", { address: "192.0.2.98", weight: 256 });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).field, "weight");

    // The next start: the config with the saved edits on top.
    const again = await RuntimeEdits.open(statePath);
    const c = again.apply(x.config);
    assert.deepEqual(c.mapServers.map((m) => [m.address, m.key]), [[MS2, "k"]]);
    assert.deepEqual(c.mapResolvers, ["127.0.0.6"]);
    assert.deepEqual(c.proxyEtrsIpv4.map((p) => p.address), ["192.0.2.99"]);
    assert.equal(again.size, 5, "map-server added and removed, map-resolver too, a PETR added");
  } finally {
    await x.tr.close();
    ms.close();
    ms2.close();
    await Deno.remove(dir, { recursive: true });
  }
});
