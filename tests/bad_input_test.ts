/**
 * Bad input against the mapping-system roles, each a separate `oor`
 * process on loopback (issue 3, point 6).
 *
 * Four processes share one UDP port on their own addresses:
 *
 * ```
 * ms      127.0.3.1  sites 10.1.1.0/24 (proxy), 10.1.2.0/24 (forwarded to the ETR),
 *                    10.1.3.0/24 (key type 1, never registered), 10.1.8.0/22
 *                    (more specifics), [7]10.1.1.0/24, fd00:1::/48, static 10.1.4.0/24
 * ddt     127.0.3.2  auth 10.0.0.0/8, [7]10.0.0.0/8, fd00::/8; 10.1.0.0/16 and the
 *                    others -> ms (MS-REFERRAL), 10.128.0.0/9 -> a dead child
 * mr      127.0.3.3  forwards to the ms
 * ddt-mr  127.0.3.4  resolves from the ddt
 * ```
 *
 * One client socket (127.0.3.10) sends each role 10,000 datagrams (or
 * for 20 s, whichever ends first): random bytes of 0..1500 bytes, valid
 * messages of every type mutated (bit flips, truncation, extension,
 * insertion, deletion, duplicated segments, length and count fields set
 * to edge values), ECMs with garbage inner packets, valid messages the role
 * does not expect (a Map-Register to the ddt, a Map-Referral to the ms,
 * ...), and messages aimed at the role's logic (Map-Requests for EIDs in
 * and around the configured space, Map-Registers signed with the site key,
 * with another key or key id, Map-Notify-Acks). Every 64 datagrams a
 * valid request (a "ping") must be answered before the next batch, so the
 * role has read everything sent so far and the kernel's receive buffer
 * does not simply drop the flood.
 *
 * Afterwards every process must still run, answer valid requests
 * correctly (the ms: a signed Map-Register gets a Map-Notify that verifies,
 * a proxy Map-Reply, a forwarded Map-Request, a negative reply; the ddt:
 * MS-REFERRAL and DELEGATION-HOLE; the mr and the ddt-mr: the Map-Reply
 * through them), have logged each drop at most once per (event, reason,
 * peer) and no more than 30 warnings in all (not a line per bad datagram),
 * nothing at error level, and stop on SIGTERM with exit code 0 and no
 * stack trace. (Info lines for Map-Registers that did authenticate, which
 * the flood includes, are not limited.)
 *
 * A second test floods an ms that keeps the default `control-rate-limit`
 * with valid Map-Requests: about the burst plus the rate are answered, the
 * rest dropped, and the drop is logged once.
 *
 * Traffic stays on loopback: the roles send replies to addresses taken
 * from the messages (ITR-RLOCs, an ECM's inner source, referral and
 * registered locators), so every generated message has those rewritten to
 * 127.0.4.x (where nothing listens) or to our own 127.0.3.x addresses,
 * and every datagram is parsed as the role will parse it before it is sent:
 * one that still names another address (a mutation can change one) is
 * replaced. IPv6 locators become ::1 (the roles bind IPv4 only).
 *
 * Environment: `OOR_BAD_INPUT_SEED` (decimal or 0x hex) replays a run;
 * `OOR_BAD_INPUT_DATAGRAMS` sends more (or fewer) per role.
 *
 * @module
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { type Address, addressToString, ipAddress, NO_ADDRESS } from "../wire/address.ts";
import { HmacKey, verifyAuthenticated } from "../wire/auth.ts";
import { type EcmInner, emitEcm } from "../wire/ecm.ts";
import { ACTION, type EidRecord, REFERRAL_ACTION } from "../wire/eid_record.ts";
import type { LocatorRecord } from "../wire/locator.ts";
import { emitSignedMapNotify, type MapNotify } from "../wire/map_notify.ts";
import { emitSignedMapRegister, type MapRegister } from "../wire/map_register.ts";
import type { MapReply } from "../wire/map_reply.ts";
import { emitMapRequest, type MapRequest, type MapRequestRecord } from "../wire/map_request.ts";
import { type ControlMessage, emitControlMessage, parseControlMessage } from "../wire/message.ts";
import {
  randomControlMessage,
  randomEcmInner,
  randomEid,
  randomEidRecord,
  randomMapNotify,
  randomMapRegister,
  randomMapRequest,
  randomMaskLen,
  Rng,
} from "./wire_gen.ts";
import { ControlPlane, type Peer, type Received } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";

// ---------------------------------------------------------------------------
// Addresses, keys and limits

const MS = "127.0.3.1";
const DDT = "127.0.3.2";
const MR = "127.0.3.3";
const DDT_MR = "127.0.3.4";
const RATE_MS = "127.0.3.5";
/** The client that sends the bad input. */
const FUZZER = "127.0.3.10";
/** The ITR of the checks afterwards. */
const ITR = "127.0.3.11";
/** The ETR of the checks: it registers and listens on 4342 for forwarded requests. */
const ETR = "127.0.3.12";
/** RLOC of the proxy-replied registration (nothing listens there). */
const PROXY_RLOC = "127.0.4.11";
/** RLOC of the static registration. */
const STATIC_RLOC = "127.0.4.40";
/** The dead child DDT node. */
const DEAD_CHILD = "127.0.4.9";

const KEY = "bad-input-site-key";
const KEY_SHA1 = "bad-input-sha1-key";

/** Datagrams per role (`OOR_BAD_INPUT_DATAGRAMS` for a longer run). */
const DATAGRAMS = Number(Deno.env.get("OOR_BAD_INPUT_DATAGRAMS") ?? 10_000);
/** Time limit of the flood of one role: 20 s for the default 10,000. */
const FLOOD_MS = Math.max(20_000, DATAGRAMS * 2);
/** Datagrams between two pings. */
const BATCH = 64;
/** Longest valid message sent (longer ones are generated again). */
const MAX_MESSAGE = 4096;
/** Most warning lines a role may write for the whole flood. */
const MAX_WARNINGS = 30;
/** The control port forwarded Map-Requests go to. */
const LISP_CONTROL_PORT = 4342;

const SEED = (() => {
  const s = Deno.env.get("OOR_BAD_INPUT_SEED");
  return s === undefined ? 0x0bad_1a5f : Number(s) >>> 0;
})();

const REPO = new URL("..", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Role processes

type RoleName = "ms" | "ddt" | "mr" | "ddt-mr";

/** An `oor <role>` child process whose standard error is collected. */
class RoleProcess {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly configPath: string;
  #stderr = "";
  readonly #pump: Promise<void>;
  #exited = false;

  private constructor(name: string, child: Deno.ChildProcess, configPath: string) {
    this.name = name;
    this.child = child;
    this.configPath = configPath;
    this.#pump = (async () => {
      // Read all of it, always: a role writes its log synchronously, and a
      // full pipe would block it.
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += text;
      }
    })();
    child.status.then(() => this.#exited = true);
  }

  static async start(role: RoleName, name: string, toml: string, dir: string) {
    const configPath = `${dir}/${name}.toml`;
    await Deno.writeTextFile(configPath, toml);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, role, "--config", configPath],
      cwd: REPO,
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    return new RoleProcess(name, child, configPath);
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** The structured log lines (`ts level role event k=v ...`). */
  get lines(): string[] {
    return this.#stderr.split("\n").filter((l) => l.length > 0);
  }

  /** Waits for the "started" log line (written once the control socket is bound). */
  async ready(timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!/ info {2}\S+ started /.test(this.#stderr)) {
      if (this.#exited) throw new Error(`${this.name} exited at start:\n${this.#stderr}`);
      if (Date.now() > end) throw new Error(`${this.name} did not start:\n${this.#stderr}`);
      await delay(20);
    }
  }

  /** Whether the process is still running (its status has not settled within 100 ms). */
  async alive(): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const running = await Promise.race([
      this.child.status.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), 100)),
    ]);
    clearTimeout(timer);
    return running;
  }

  /** Sends SIGTERM and waits for the exit and the end of its output. */
  async stop(): Promise<Deno.CommandStatus> {
    if (!this.#exited) this.child.kill("SIGTERM");
    const status = await this.child.status;
    await this.#pump;
    return status;
  }

  /** Last resort in `finally`: SIGKILL if still running, and wait. */
  async kill(): Promise<void> {
    if (!this.#exited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    await this.child.status;
    await this.#pump;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function freePort(address: string): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, address, resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function head(mode: string, address: string, port: number, rateLimit?: number): string {
  return [
    `operating-mode = "${mode}"`,
    `control-address = "${address}"`,
    `control-port = ${port}`,
    ...(rateLimit !== undefined ? [`control-rate-limit = ${rateLimit}`] : []),
    "",
  ].join("\n");
}

function site(
  prefix: string,
  o: { iid?: number; keyType?: 1 | 2; key?: string; more?: boolean; proxy?: boolean } = {},
) {
  return `
[[lisp-site]]
eid-prefix = "${prefix}"
iid = ${o.iid ?? 0}
key-type = ${o.keyType ?? 2}
key = "${o.key ?? KEY}"
accept-more-specifics = ${o.more ?? false}
proxy-reply = ${o.proxy ?? false}
`;
}

const MS_SITES = site("10.1.1.0/24") + site("10.1.2.0/24") +
  site("10.1.3.0/24", { keyType: 1, key: KEY_SHA1 }) + site("10.1.8.0/22", { more: true }) +
  site("10.1.1.0/24", { iid: 7, proxy: true }) + site("fd00:1::/48") + `
[[ms-static-registered-site]]
eid-prefix = "10.1.4.0/24"
ttl = 10
[[ms-static-registered-site.rloc-address]]
address = "${STATIC_RLOC}"
priority = 1
weight = 100
`;

function msToml(port: number): string {
  return head("MS", MS, port, 0) + MS_SITES;
}

function ddtToml(port: number): string {
  const deleg = (prefix: string, type: string, nodes: string[], iid = 0) => `
[[ddt-deleg-site]]
eid-prefix = "${prefix}"
iid = ${iid}
delegation-type = "${type}"
deleg-nodes = ${JSON.stringify(nodes)}
`;
  return head("DDT", DDT, port, 0) + `
[[ddt-auth-site]]
eid-prefix = "10.0.0.0/8"
[[ddt-auth-site]]
eid-prefix = "10.0.0.0/8"
iid = 7
[[ddt-auth-site]]
eid-prefix = "fd00::/8"
` + deleg("10.1.0.0/16", "MAP_SERVER_DDT_NODE", [MS]) +
    deleg("10.1.0.0/16", "MAP_SERVER_DDT_NODE", [MS], 7) +
    deleg("fd00:1::/48", "MAP_SERVER_DDT_NODE", [MS]) +
    deleg("10.128.0.0/9", "CHILD_DDT_NODE", [DEAD_CHILD]);
}

function mrToml(port: number): string {
  return head("MR", MR, port, 0) + `\n[[map-server]]\naddress = "${MS}"\n`;
}

function ddtMrToml(port: number): string {
  return head("DDT-MR", DDT_MR, port, 0) +
    `map-request-retries = 1\nddt-root-addresses = ["${DDT}"]\n`;
}

// ---------------------------------------------------------------------------
// Keeping the traffic on loopback

/** Where the roles may send: our own /24 and a /24 where nothing listens. */
function safeIp(ip: string): boolean {
  return ip.startsWith("127.0.3.") || ip.startsWith("127.0.4.") || ip === "::1";
}

/** Keys whose values are EIDs: never destinations, so kept as generated. */
const EID_KEYS: ReadonlySet<string> = new Set(["eid", "sourceEid"]);

/** `v` with every IPv4 address moved to 127.0.4.x and every IPv6 one made ::1 (EIDs kept). */
function toLoopback<T>(v: T): T {
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(toLoopback) as T;
  const o = v as Record<string, unknown>;
  if (o["kind"] === "ipv4" && typeof o["ip"] === "string") {
    return { ...o, ip: `127.0.4.${o["ip"].split(".")[3]}` } as T;
  }
  if (o["kind"] === "ipv6" && typeof o["ip"] === "string") return { ...o, ip: "::1" } as T;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = EID_KEYS.has(k) ? x : toLoopback(x);
  return out as T;
}

/** Whether any address outside the EIDs of `v` is not {@link safeIp}. */
function namesForeignAddress(v: unknown): boolean {
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return false;
  if (Array.isArray(v)) return v.some(namesForeignAddress);
  const o = v as Record<string, unknown>;
  if ((o["kind"] === "ipv4" || o["kind"] === "ipv6") && typeof o["ip"] === "string") {
    return !safeIp(o["ip"]);
  }
  for (const [k, x] of Object.entries(o)) {
    if (!EID_KEYS.has(k) && namesForeignAddress(x)) return true;
  }
  return false;
}

/** Inner IP/UDP fields with a loopback source (the destination is the EID looked up). */
function loopbackInner(inner: EcmInner): EcmInner {
  return { ...inner, src: inner.src.includes(":") ? "::1" : toLoopback(ipAddress(inner.src)).ip };
}

/**
 * Whether the roles could send somewhere off our loopback addresses because
 * of `bytes`: parsed as the control plane parses it (an ECM and its inner
 * message), any ITR-RLOC, locator, ECM inner source or other non-EID
 * address that is not ours. Unparseable input is dropped by the role: safe.
 */
function leavesLoopback(bytes: Uint8Array, depth = 0): boolean {
  let m: ControlMessage;
  try {
    m = parseControlMessage(bytes);
  } catch {
    return false;
  }
  if (m.type === "ecm") {
    if (!safeIp(m.msg.inner.src)) return true;
    return depth < 4 && leavesLoopback(m.msg.payload, depth + 1);
  }
  return namesForeignAddress(m.msg);
}

/** A control message with its destinations on loopback (an ECM's inner message too). */
function onLoopback(m: ControlMessage): ControlMessage {
  if (m.type !== "ecm") return { type: m.type, msg: toLoopback(m.msg) } as ControlMessage;
  let payload = m.msg.payload;
  try {
    payload = emitControlMessage(onLoopback(parseControlMessage(payload)));
  } catch {
    // random bytes inside: left as they are
  }
  return { type: "ecm", msg: { ...m.msg, inner: loopbackInner(m.msg.inner), payload } };
}

// ---------------------------------------------------------------------------
// Bad input

const EDGE8 = [0, 1, 2, 0x0f, 0x10, 0x7f, 0x80, 0xfe, 0xff];

/** Positions of length and count fields in most messages and in an ECM's inner headers. */
const LENGTH_OFFSETS = [1, 2, 3, 14, 15, 4 + 2, 4 + 3, 4 + 20 + 4, 4 + 40 + 4, 4 + 28 + 3];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One to three mutations of `input` (see the module notes). */
function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  let b: Uint8Array = input.slice();
  for (let ops = 1 + rng.int(3); ops > 0; ops--) {
    const n = b.length;
    switch (rng.int(9)) {
      case 0: // bit flips
        for (let k = 1 + rng.int(8); k > 0 && n > 0; k--) b[rng.int(n)]! ^= 1 << rng.int(8);
        break;
      case 1: // truncation
        b = b.slice(0, rng.int(n + 1));
        break;
      case 2: // extension
        b = concat(b, rng.bytes(1 + rng.int(64)));
        break;
      case 3: { // insertion
        const at = rng.int(n + 1);
        b = concat(b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at));
        break;
      }
      case 4: { // deletion
        const at = rng.int(n + 1);
        b = concat(b.subarray(0, at), b.subarray(Math.min(n, at + 1 + rng.int(16))));
        break;
      }
      case 5: { // a byte (often a count) set to an edge value
        const at = rng.bool() ? rng.pick(LENGTH_OFFSETS) : rng.int(n);
        if (at < n) b[at] = rng.pick(EDGE8);
        break;
      }
      case 6: { // a 16-bit length set to an edge value
        const at = rng.bool() ? rng.pick(LENGTH_OFFSETS) : rng.int(n);
        const v = rng.pick([0, 1, 0xffff, 0x8000, n, n - 1, n + 1, rng.u16()]) & 0xffff;
        if (at + 1 < n) {
          b[at] = v >>> 8;
          b[at + 1] = v & 0xff;
        }
        break;
      }
      case 7: { // a range zeroed
        const at = rng.int(n + 1);
        b.fill(0, at, at + 1 + rng.int(32));
        break;
      }
      default: { // a segment duplicated
        const at = rng.int(n + 1);
        const seg = b.slice(at, at + 1 + rng.int(32));
        b = concat(b.subarray(0, at + seg.length), seg, b.subarray(at + seg.length));
      }
    }
  }
  return b;
}

/** An EID prefix in or around the configured space (so requests reach the roles' logic). */
function steeredEid(rng: Rng): MapRequestRecord {
  const host = (a: string) => ipAddress(a);
  let eid: Address;
  switch (rng.int(11)) {
    case 0:
      eid = host(`10.1.1.${rng.u8()}`);
      break;
    case 1:
      eid = host(`10.1.2.${rng.u8()}`);
      break;
    case 2:
      eid = host(`10.1.3.${rng.u8()}`);
      break;
    case 3:
      eid = host(`10.1.4.${rng.u8()}`);
      break;
    case 4:
      eid = host(`10.1.${rng.range(8, 11)}.${rng.u8()}`);
      break;
    case 5:
      eid = host(`10.${rng.u8()}.${rng.u8()}.${rng.u8()}`);
      break;
    case 6:
      eid = host(`10.${rng.range(128, 255)}.${rng.u8()}.${rng.u8()}`);
      break;
    case 7:
      eid = {
        kind: "iid",
        iid: rng.pick([7, 7, 0, rng.u32()]),
        iidMaskLen: 0,
        address: host(`10.1.1.${rng.u8()}`),
      };
      break;
    case 8:
      eid = host(`fd00:1::${rng.u16().toString(16)}`);
      break;
    case 9:
      eid = host(`192.168.${rng.u8()}.${rng.u8()}`);
      break;
    default:
      eid = randomEid(rng);
  }
  const max = eid.kind === "ipv6" ? 128 : eid.kind === "ipv4" || eid.kind === "iid" ? 32 : 0;
  const maskLen = max > 0 && rng.bool(0.8) ? max : randomMaskLen(rng, eid);
  return { eid, maskLen };
}

function ecmAround(rng: Rng, payload: Uint8Array, ddt: boolean): Uint8Array {
  const inner = loopbackInner(randomEcmInner(rng, 4));
  return emitEcm({
    security: rng.bool(0.1),
    ddtOriginated: ddt,
    forRtr: rng.bool(0.1),
    rtrRelayed: rng.bool(0.1),
    inner: {
      ...inner,
      // The reply goes to the inner source port: now and then 0 or another edge.
      srcPort: rng.bool(0.05) ? rng.pick([0, 1, 65535]) : inner.srcPort,
      dstPort: rng.bool(0.8) ? LISP_CONTROL_PORT : inner.dstPort,
    },
    payload,
  });
}

/** A Map-Request for a steered EID, plain or in an ECM (D bit sometimes). */
function aimedRequest(rng: Rng, role: RoleName): Uint8Array {
  const base = toLoopback(randomMapRequest(rng));
  const n = rng.bool(0.9) ? 1 : rng.int(6);
  const m: MapRequest = {
    ...base,
    probe: rng.bool(0.1),
    smr: rng.bool(0.1),
    itrRlocs: rng.bool(0.7) ? [ipAddress(`127.0.4.${rng.u8()}`)] : base.itrRlocs,
    records: Array.from({ length: n }, () => steeredEid(rng)),
  };
  const bytes = emitMapRequest(m);
  const ddtRole = role === "ddt";
  if (rng.bool(ddtRole ? 0.2 : 0.15)) return bytes;
  return ecmAround(rng, bytes, rng.bool(ddtRole ? 0.8 : 0.2));
}

function loopbackLocator(rng: Rng): LocatorRecord {
  return {
    priority: rng.bool(0.8) ? 1 : rng.u8(),
    weight: rng.u8(),
    mPriority: 255,
    mWeight: 0,
    local: rng.bool(),
    probed: false,
    reachable: rng.bool(0.9),
    address: ipAddress(`127.0.4.${rng.u8()}`),
  };
}

/**
 * A Map-Register for steered prefixes: signed with the site key (only for
 * the more-specifics site, so the checks' registrations stay as they are),
 * with another key, or with key id 1 where the site uses 2.
 */
function aimedRegister(rng: Rng): Uint8Array {
  // 0: site key, more specifics of 10.1.8.0/22 (accepted); 1: site key,
  // prefixes it rejects (no site, too specific, a key type 1 site); 2:
  // another key; 3: key id 1 where the sites use 2.
  const k = rng.int(4);
  const records: EidRecord[] = Array.from({ length: 1 + rng.int(3) }, () => {
    const octet = k === 0 ? rng.range(8, 11) : rng.pick([1, 2, 3, 8, 9, 200]);
    const len = k === 0
      ? rng.range(22, 32)
      : k === 1 && (octet === 1 || octet === 2)
      ? rng.pick([16, 22, 28, 32]) // never the checks' own 10.1.1.0/24 and 10.1.2.0/24
      : rng.pick([16, 22, 24, 28, 32]);
    const p = parsePrefix(`10.1.${octet}.${rng.u8()}/${len}`)!;
    const rec = toLoopback(randomEidRecord(rng));
    return {
      ...rec,
      ttl: rng.pick([0, 1, 10, 1440, 0xffffffff]),
      maskLen: p.len,
      eid: prefixEid(p),
      locators: rng.bool(0.7)
        ? Array.from({ length: 1 + rng.int(3) }, () => loopbackLocator(rng))
        : rec.locators,
    };
  });
  const base = toLoopback(randomMapRegister(rng));
  const m: MapRegister = { ...base, keyId: k === 3 ? 1 : 2, records };
  const key = k === 2 ? new HmacKey(2, "not-the-key") : k === 3 ? new HmacKey(1, KEY) : SITE_KEY;
  return emitSignedMapRegister(m, key);
}

const SITE_KEY = new HmacKey(2, KEY);

/** A Map-Notify-Ack, signed with the site key half the time. */
function aimedNotifyAck(rng: Rng): Uint8Array {
  const m: MapNotify = { ...toLoopback(randomMapNotify(rng, true)), keyId: 2 };
  if (rng.bool()) return emitSignedMapNotify(m, SITE_KEY);
  return emitControlMessage({ type: "map-notify-ack", msg: m });
}

/** Counts of what was generated, by kind. */
type Mix = Record<string, number>;

/** One datagram for `role` (see the module notes); never one that leaves loopback. */
function datagram(rng: Rng, role: RoleName, mix: Mix): Uint8Array {
  for (let attempt = 0; attempt < 50; attempt++) {
    let kind: string;
    let b: Uint8Array;
    const r = rng.next();
    if (r < 0.2) {
      kind = "random";
      b = rng.bytes(rng.int(1501));
      if (b.length > 0 && rng.bool()) b[0] = (rng.range(1, 8) << 4) | (b[0]! & 0x0f);
    } else if (r < 0.5) {
      kind = "mutated";
      b = mutate(rng, emitControlMessage(onLoopback(randomControlMessage(rng))));
    } else if (r < 0.65) {
      kind = "ecm-garbage";
      switch (rng.int(4)) {
        case 0:
          b = ecmAround(rng, rng.bytes(rng.int(200)), rng.bool());
          break;
        case 1:
          b = ecmAround(
            rng,
            mutate(rng, emitControlMessage(onLoopback(randomControlMessage(rng, "map-request")))),
            rng.bool(),
          );
          break;
        case 2: {
          const e = emitControlMessage(onLoopback(randomControlMessage(rng, "ecm")));
          b = e.slice();
          // Damage the inner IP/UDP headers only.
          for (let k = 1 + rng.int(4); k > 0; k--) {
            const at = 4 + rng.int(Math.min(44, e.length - 4));
            b[at] = rng.bool() ? rng.pick(EDGE8) : b[at]! ^ (1 << rng.int(8));
          }
          break;
        }
        default:
          b = concat(new Uint8Array([0x80 | rng.int(16), 0, 0, 0]), rng.bytes(rng.int(120)));
      }
    } else if (r < 0.8) {
      kind = "unexpected";
      b = emitControlMessage(onLoopback(randomControlMessage(rng)));
    } else {
      kind = "aimed";
      const k = rng.int(10);
      b = role !== "ms" || k < 6
        ? aimedRequest(rng, role)
        : k < 9
        ? aimedRegister(rng)
        : aimedNotifyAck(rng);
      if (rng.bool(0.3)) b = mutate(rng, b);
    }
    if (b.length > MAX_MESSAGE || leavesLoopback(b)) {
      mix["replaced"] = (mix["replaced"] ?? 0) + 1;
      continue;
    }
    mix[kind] = (mix[kind] ?? 0) + 1;
    return b;
  }
  throw new Error("no datagram that stays on loopback in 50 attempts");
}

// ---------------------------------------------------------------------------
// The client

/** A bare UDP socket that sends the flood and waits for ping answers by nonce. */
class Client {
  readonly #socket: dgram.Socket;
  readonly port: number;
  readonly #waiting = new Map<bigint, () => void>();
  received = 0;
  sendErrors = 0;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    this.port = socket.address().port;
    socket.on("message", (msg: Uint8Array) => {
      this.received++;
      let m: ControlMessage;
      try {
        m = parseControlMessage(msg);
      } catch {
        return;
      }
      if (m.type === "ecm") return;
      this.#waiting.get(m.msg.nonce)?.();
    });
  }

  static async open(address: string): Promise<Client> {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => s.bind(0, address, resolve));
    return new Client(s);
  }

  send(bytes: Uint8Array, to: Peer): void {
    this.#socket.send(bytes, to.port, to.address, (err) => {
      if (err) this.sendErrors++;
    });
  }

  /** Sends `bytes` and waits for a message carrying `nonce`; false after `timeoutMs`. */
  ask(bytes: Uint8Array, to: Peer, nonce: bigint, timeoutMs = 3000): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(nonce);
        resolve(false);
      }, timeoutMs);
      this.#waiting.set(nonce, () => {
        clearTimeout(timer);
        this.#waiting.delete(nonce);
        resolve(true);
      });
      this.send(bytes, to);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

function mapRequest(nonce: bigint, itr: string, eid: Address, maskLen: number): MapRequest {
  return {
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: NO_ADDRESS,
    itrRlocs: [ipAddress(itr)],
    records: [{ maskLen, eid }],
  };
}

/** An ECM around a Map-Request from `itr` (answers go to `itr`:`port`). */
function ecmRequest(
  nonce: bigint,
  itr: string,
  port: number,
  eid: string,
  o: { ddt?: boolean; iid?: number } = {},
): Uint8Array {
  const a = ipAddress(eid);
  const bits = a.kind === "ipv4" ? 32 : 128;
  const e: Address = o.iid ? { kind: "iid", iid: o.iid, iidMaskLen: 0, address: a } : a;
  return emitEcm({
    security: false,
    ddtOriginated: o.ddt ?? false,
    forRtr: false,
    rtrRelayed: false,
    inner: { src: itr, dst: a.kind === "ipv4" ? eid : itr, srcPort: port, dstPort: 4342, ttl: 64 },
    payload: emitMapRequest(mapRequest(nonce, itr, e, bits)),
  });
}

/** The valid request sent between batches: answered by the role (or through it). */
function ping(role: RoleName, nonce: bigint, client: Client): Uint8Array {
  // Outside every configured prefix: the ms answers negative, the ddt
  // NOT-AUTHORITATIVE, the mr through the ms, the ddt-mr from the root.
  const eid = "192.168.77.1";
  if (role === "ms" || role === "ddt") {
    return emitMapRequest(mapRequest(nonce, FUZZER, ipAddress(eid), 32));
  }
  return ecmRequest(nonce, FUZZER, client.port, eid);
}

/** The kernel's count of UDP datagrams dropped for a full receive buffer (all sockets). */
function udpReceiveBufferErrors(): number {
  try {
    const udp = Deno.readTextFileSync("/proc/net/snmp").split("\n").filter((l) =>
      l.startsWith("Udp:")
    );
    const names = udp[0]!.split(/\s+/);
    return Number(udp[1]!.split(/\s+/)[names.indexOf("RcvbufErrors")]);
  } catch {
    return NaN;
  }
}

interface FloodResult {
  readonly role: RoleName;
  readonly sent: number;
  /** Datagrams the kernel dropped meanwhile for full receive buffers (any socket). */
  readonly kernelDrops: number;
  readonly pings: number;
  readonly pingsLost: number;
  readonly ms: number;
  readonly mix: Mix;
}

async function flood(
  client: Client,
  role: RoleName,
  to: Peer,
  rng: Rng,
  nextNonce: () => bigint,
): Promise<FloodResult> {
  const mix: Mix = {};
  const drops = udpReceiveBufferErrors();
  const start = performance.now();
  const deadline = start + FLOOD_MS;
  let sent = 0;
  let pings = 0;
  let pingsLost = 0;
  while (sent < DATAGRAMS && performance.now() < deadline) {
    client.send(datagram(rng, role, mix), to);
    sent++;
    if (sent % BATCH === 0 || sent === DATAGRAMS) {
      const nonce = nextNonce();
      pings++;
      if (!await client.ask(ping(role, nonce, client), to, nonce, 2000)) pingsLost++;
    }
  }
  const ms = performance.now() - start;
  return { role, sent, kernelDrops: udpReceiveBufferErrors() - drops, pings, pingsLost, ms, mix };
}

// ---------------------------------------------------------------------------
// Valid peers for the checks

function quietPlane(address: string, port: number): Promise<ControlPlane> {
  return ControlPlane.open({
    logger: new Logger({ role: "peer", sink: { write: () => {} } }),
    counters: new Counters(),
    address,
    port,
  });
}

function registration(
  nonce: bigint,
  prefix: string,
  rloc: string,
  proxy: boolean,
): MapRegister {
  const p = parsePrefix(prefix)!;
  return {
    proxyReply: proxy,
    securityCapable: false,
    xtrIdPresent: false,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce,
    keyId: 2,
    authData: new Uint8Array(0),
    records: [{
      ttl: 10,
      maskLen: p.len,
      action: ACTION.NO_ACTION,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: [{
        priority: 1,
        weight: 100,
        mPriority: 255,
        mWeight: 0,
        local: true,
        probed: false,
        reachable: true,
        address: ipAddress(rloc),
      }],
    }],
  };
}

/** Registers with the ms and checks the Map-Notify: same nonce and records, verifies. */
async function register(etr: ControlPlane, port: number, m: MapRegister): Promise<void> {
  const r = await etr.request(
    m.nonce,
    () => etr.send(emitSignedMapRegister(m, SITE_KEY), { address: MS, port }),
    "Map-Register",
    { retries: 2, timeoutMs: 1000, expect: ["map-notify"] },
  );
  assert.equal(r.message.type, "map-notify");
  if (r.message.type !== "map-notify") return;
  assert.ok(verifyAuthenticated(r.bytes, SITE_KEY), "the Map-Notify verifies with the site key");
  assert.equal(r.message.msg.keyId, 2);
  assert.deepEqual(r.message.msg.records, m.records);
}

async function askReply(
  itr: ControlPlane,
  nonce: bigint,
  to: Peer,
  eid: string,
  iid = 0,
): Promise<MapReply> {
  const r = await itr.request(
    nonce,
    () => itr.send(ecmRequest(nonce, ITR, itr.port, eid, { iid }), to),
    `Map-Request for ${eid} via ${to.address}`,
    { retries: 1, timeoutMs: 3000, expect: ["map-reply"] },
  );
  if (r.message.type !== "map-reply") throw new Error("not a Map-Reply");
  return r.message.msg;
}

function summary(records: readonly EidRecord[]) {
  return records.map((r) => ({
    prefix: `${addressToString(r.eid)}/${r.maskLen}`,
    action: r.action,
    ttl: r.ttl,
    rlocs: r.locators.map((l) => addressToString(l.address)),
  }));
}

// ---------------------------------------------------------------------------
// Log checks

/** `ts level role event k=v ...` split; undefined for a line not in that form. */
function parseLine(line: string) {
  const m = /^\S+ (error|warn|info|debug|trace)\s+(\S+) (\S+)(.*)$/.exec(line);
  if (m === null) return undefined;
  const fields: Record<string, string> = {};
  for (const f of m[4]!.matchAll(/ ([\w-]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) fields[f[1]!] = f[2]!;
  return { level: m[1]!, event: m[3]!, fields };
}

function peerAddress(peer: string | undefined): string {
  if (peer === undefined) return "";
  const m = /^\[(.*)\]:\d+$/.exec(peer) ?? /^(.*):\d+$/.exec(peer);
  return m?.[1] ?? peer;
}

/**
 * The log of a role after the flood: no line it does not recognise (a
 * stack trace, an uncaught error), none at error level, each warning
 * (event, reason, peer) at most once, and {@link MAX_WARNINGS} at most.
 */
function checkLog(p: RoleProcess): { lines: number; warnings: number } {
  const lines = p.lines;
  const seen = new Map<string, number>();
  const problems: string[] = [];
  let warnings = 0;
  for (const line of lines) {
    const l = parseLine(line);
    if (l === undefined) {
      problems.push(`not a log line: ${line}`);
      continue;
    }
    if (l.level === "error") problems.push(line);
    if (l.level !== "warn") continue;
    warnings++;
    const key = `${l.event} ${l.fields["reason"] ?? ""} ${peerAddress(l.fields["peer"])}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  for (const [key, n] of seen) if (n > 1) problems.push(`"${key}" logged ${n} times`);
  // A handful of events and reasons, each once: not a line per bad datagram.
  if (warnings > MAX_WARNINGS) problems.push(`${warnings} warnings`);
  assert.deepEqual(problems, [], `${p.name}: log problems\n${p.stderr.slice(0, 6000)}`);
  return { lines: lines.length, warnings };
}

// ---------------------------------------------------------------------------
// The tests

Deno.test("every role survives 10,000 random and mutated datagrams and still answers valid requests", async () => {
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "oor-bad-input-" });
  const port = await freePort(MS);
  const procs: RoleProcess[] = [];
  const planes: ControlPlane[] = [];
  let client: Client | undefined;
  try {
    const [ms, ddt, mr, ddtMr] = await Promise.all([
      RoleProcess.start("ms", "ms", msToml(port), dir),
      RoleProcess.start("ddt", "ddt", ddtToml(port), dir),
      RoleProcess.start("mr", "mr", mrToml(port), dir),
      RoleProcess.start("ddt-mr", "ddt-mr", ddtMrToml(port), dir),
    ]);
    procs.push(ms, ddt, mr, ddtMr);
    await Promise.all(procs.map((p) => p.ready()));
    const startedMs = performance.now() - started;

    const etr = await quietPlane(ETR, LISP_CONTROL_PORT);
    planes.push(etr);
    const forwarded: Received[] = [];
    etr.on("map-request", (_m, r) => void forwarded.push(r));
    const itr = await quietPlane(ITR, 0);
    planes.push(itr);
    client = await Client.open(FUZZER);

    // Registrations in place during the flood, so requests reach the
    // proxy-reply and forwarding paths.
    await register(etr, port, registration(0xe7e0_0001n, "10.1.1.0/24", PROXY_RLOC, true));
    await register(etr, port, registration(0xe7e0_0002n, "10.1.2.0/24", ETR, false));

    let nonce = 0x7069_6e67_0000_0000n; // "ping"
    const nextNonce = () => nonce++;
    const targets: [RoleName, RoleProcess, string][] = [
      ["ms", ms, MS],
      ["ddt", ddt, DDT],
      ["mr", mr, MR],
      ["ddt-mr", ddtMr, DDT_MR],
    ];
    const results: FloodResult[] = [];
    for (const [i, [role, _p, address]] of targets.entries()) {
      const rng = new Rng((SEED + i * 0x9e3779b1) >>> 0);
      results.push(await flood(client, role, { address, port }, rng, nextNonce));
    }

    for (const p of procs) assert.ok(await p.alive(), `${p.name} died:\n${p.stderr}`);
    for (const r of results) {
      assert.equal(r.sent, DATAGRAMS, `${r.role}: all datagrams sent within ${FLOOD_MS} ms`);
      assert.ok(
        r.pingsLost <= r.pings / 50,
        `${r.role}: ${r.pingsLost} of ${r.pings} pings unanswered during the flood`,
      );
    }
    assert.equal(client.sendErrors, 0);

    // --- ms: a signed Map-Register is accepted and notified; Map-Requests answered.
    await register(etr, port, registration(0xe7e0_0003n, "10.1.1.0/24", PROXY_RLOC, true));
    await register(etr, port, registration(0xe7e0_0004n, "10.1.2.0/24", ETR, false));
    const msPeer = { address: MS, port };
    assert.deepEqual(summary((await askReply(itr, 0xc4ec_0001n, msPeer, "10.1.1.5")).records), [{
      prefix: "10.1.1.0/24",
      action: ACTION.NO_ACTION,
      ttl: 10,
      rlocs: [PROXY_RLOC],
    }]);
    assert.deepEqual(
      summary((await askReply(itr, 0xc4ec_0002n, msPeer, "10.1.3.5")).records),
      [{ prefix: "10.1.3.0/24", action: ACTION.NATIVELY_FORWARD, ttl: 1, rlocs: [] }],
    );
    assert.deepEqual(
      summary((await askReply(itr, 0xc4ec_0003n, msPeer, "10.1.4.5")).records),
      [{ prefix: "10.1.4.0/24", action: ACTION.NO_ACTION, ttl: 10, rlocs: [STATIC_RLOC] }],
    );
    itr.send(ecmRequest(0xc4ec_0004n, ITR, itr.port, "10.1.2.5"), msPeer);
    const isForwarded = (r: Received) =>
      r.message.type === "map-request" && r.message.msg.nonce === 0xc4ec_0004n;
    for (let i = 0; i < 200 && !forwarded.some(isForwarded); i++) await delay(10);
    const fwd = forwarded.find(isForwarded);
    assert.ok(fwd !== undefined, "the ms forwards a Map-Request for 10.1.2.5 to the ETR");
    assert.equal(fwd.from.address, MS);
    assert.deepEqual(fwd.ecm?.inner.src, ITR, "the ITR's inner header is kept");

    // --- ddt: referrals for a delegation and a hole.
    const ddtPeer = { address: DDT, port };
    const referral = async (n: bigint, eid: string) => {
      const r = await itr.request(
        n,
        () => itr.send(ecmRequest(n, ITR, itr.port, eid, { ddt: true }), ddtPeer),
        `DDT Map-Request for ${eid}`,
        { retries: 1, timeoutMs: 3000, expect: ["map-referral"] },
      );
      if (r.message.type !== "map-referral") throw new Error("not a Map-Referral");
      return r.message.msg.records.map((x) => x.record);
    };
    assert.deepEqual(summary(await referral(0xdd70_0001n, "10.1.1.5")), [{
      prefix: "10.1.0.0/16",
      action: REFERRAL_ACTION.MS_REFERRAL,
      ttl: 1440,
      rlocs: [MS],
    }]);
    assert.deepEqual(summary(await referral(0xdd70_0002n, "10.5.0.1")), [{
      prefix: "10.4.0.0/14",
      action: REFERRAL_ACTION.DELEGATION_HOLE,
      ttl: 15,
      rlocs: [],
    }]);

    // --- mr (forwarding) and ddt-mr (through the tree) get the ITR its Map-Reply.
    const proxied = [{
      prefix: "10.1.1.0/24",
      action: ACTION.NO_ACTION,
      ttl: 10,
      rlocs: [PROXY_RLOC],
    }];
    assert.deepEqual(
      summary((await askReply(itr, 0x3a70_0001n, { address: MR, port }, "10.1.1.77")).records),
      proxied,
    );
    assert.deepEqual(
      summary((await askReply(itr, 0x3a70_0002n, { address: DDT_MR, port }, "10.1.1.78")).records),
      proxied,
    );
    assert.deepEqual(
      summary((await askReply(itr, 0x3a70_0003n, { address: DDT_MR, port }, "10.5.0.1")).records),
      [{ prefix: "10.4.0.0/14", action: ACTION.NATIVELY_FORWARD, ttl: 15, rlocs: [] }],
    );

    for (const p of procs) assert.ok(await p.alive(), `${p.name} died:\n${p.stderr}`);

    // --- logs: drops logged once per source, nothing at error level.
    const logs = procs.map((p) => ({ name: p.name, ...checkLog(p) }));
    for (const p of procs) {
      const malformed = p.lines.filter((l) =>
        l.includes(" control-dropped ") && l.includes("reason=malformed") &&
        l.includes(`peer=${FUZZER}:`)
      );
      assert.equal(malformed.length, 1, `${p.name}: one "malformed" line for the fuzzer`);
    }

    // --- a clean stop.
    for (const p of procs) {
      const status = await p.stop();
      assert.deepEqual(
        { code: status.code, signal: status.signal },
        { code: 0, signal: null },
        `${p.name} exit:\n${p.stderr}`,
      );
      assert.match(p.stderr, / info {2}\S+ stopped\n$/, `${p.name} logs its stop last`);
      assert.doesNotMatch(p.stderr, /Uncaught|^\s+at |^error: /m, `${p.name}:\n${p.stderr}`);
    }
    console.log(
      `seed 0x${SEED.toString(16)}; processes up in ${startedMs.toFixed(0)} ms; ` +
        `${client.received} datagrams back to the client`,
    );
    for (const r of results) {
      const mix = Object.entries(r.mix).map(([k, v]) => `${k} ${v}`).join(", ");
      console.log(
        `${r.role}: ${r.sent} datagrams in ${r.ms.toFixed(0)} ms (${mix}), ` +
          `${r.pings - r.pingsLost}/${r.pings} pings answered, ${r.kernelDrops} kernel drops`,
      );
    }
    for (const l of logs) console.log(`${l.name}: ${l.lines} log lines, ${l.warnings} warnings`);
    console.log(`total ${(performance.now() - started).toFixed(0)} ms`);
  } finally {
    await client?.close();
    for (const p of planes) p.close();
    await Promise.all(procs.map((p) => p.kill()));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the ms rate-limits a flood of Map-Requests from one source and logs it once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oor-bad-input-" });
  const port = await freePort(RATE_MS);
  let proc: RoleProcess | undefined;
  let client: Client | undefined;
  try {
    // No control-rate-limit: the default (1000 per second, bursts of 2000).
    proc = await RoleProcess.start("ms", "rate-ms", head("MS", RATE_MS, port) + MS_SITES, dir);
    await proc.ready();
    client = await Client.open(FUZZER);
    const to = { address: RATE_MS, port };
    const sent = 5000;
    let answered = 0;
    const asks: Promise<void>[] = [];
    const startedAt = performance.now();
    for (let i = 0; i < sent; i++) {
      const n = 0x7a7e_0000n + BigInt(i);
      const req = emitMapRequest(mapRequest(n, FUZZER, ipAddress("192.168.1.1"), 32));
      asks.push(client.ask(req, to, n, 1500).then((ok) => void (ok && answered++)));
      if (i % 50 === 49) await delay(1); // do not overrun the socket buffers
    }
    await Promise.all(asks);
    const seconds = (performance.now() - startedAt) / 1000;
    // 2000 of burst plus 1000 per second; the rest dropped (and counted).
    assert.ok(answered >= 1500, `${answered} of ${sent} answered`);
    assert.ok(answered <= 2000 + 1000 * seconds + 50, `${answered} answered in ${seconds} s`);
    assert.ok(answered < sent, "some were rate-limited");
    const limited = proc.lines.filter((l) => / control-dropped .*reason=rate-limited/.test(l));
    assert.equal(limited.length, 1, `one rate-limited line:\n${proc.stderr}`);
    assert.ok(await proc.alive());
    const status = await proc.stop();
    assert.equal(status.code, 0);
    console.log(
      `${answered} of ${sent} answered in ${seconds.toFixed(2)} s, the rest rate-limited`,
    );
  } finally {
    await client?.close();
    await proc?.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
