/**
 * `oor lig`: a LISP Internet Groper in the spirit of RFC 6835. It asks a
 * map-resolver (or a map-server that resolves for its sites) for the
 * mapping of an EID and prints what comes back, with the round-trip time.
 *
 * ```
 * oor lig EID --mr ADDRESS [--port N] [--iid N] [--source ADDRESS]
 *             [--count N] [--timeout SECONDS] [--json]
 * ```
 *
 * One query is an Encapsulated Control Message (RFC 9301 §5.8) sent to the
 * map-resolver's control port. Inside it, an IP/UDP header from our local
 * address and ephemeral port to the EID, port 4342, and a Map-Request
 * (RFC 9301 §5.2) whose single ITR-RLOC is our local address, so the
 * Map-Reply comes straight back to the socket that sent the query.
 *
 * Each of the `--count` attempts carries its own nonce, and a reply to any
 * attempt ends the wait: the RTT is measured from the send of the attempt
 * it answers, so a late reply to an earlier attempt is still reported
 * exactly. No reply after the last attempt's timeout exits 1.
 *
 * The local address is the one the kernel would use toward the
 * map-resolver: 127.0.0.1 or ::1 for a loopback resolver, otherwise found
 * by connecting a UDP socket (no packet is sent) and reading its name;
 * `--source` overrides it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ControlPlane, formatPeer, type Peer } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { formatPrefix, parsePrefix, type Prefix, prefixAddress, prefixOf } from "../core/prefix.ts";
import {
  type Address,
  addressToString,
  inInstance,
  ipAddress,
  NO_ADDRESS,
} from "../wire/address.ts";
import { LISP_CONTROL_PORT } from "../wire/data_header.ts";
import type { EidRecord } from "../wire/eid_record.ts";
import { canonicalIp, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes, isIPv4 } from "../wire/ip_text.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { flagError } from "./suggest.ts";

// ---------------------------------------------------------------------------
// Options and the command-line surface.

/** What one `oor lig` run asks. */
export interface LigOptions {
  /** The EID or EID prefix looked up: `"10.1.2.3"`, `"10.1.0.0/16"`, `"2001:db8::1"`. */
  readonly eid: string;
  /** The map-resolver's address (IPv4 or IPv6). */
  readonly mr: string;
  /** The map-resolver's control port (default 4342). */
  readonly port?: number;
  /** Instance ID: the EID goes in an Instance-ID LCAF (RFC 8060 §4.1) when set. */
  readonly iid?: number;
  /** Our address as ITR-RLOC and inner source (default: the route's source toward `mr`). */
  readonly source?: string;
  /** Map-Requests sent before giving up (default 3). */
  readonly count?: number;
  /** Seconds to wait for a reply to each Map-Request (default 2). */
  readonly timeoutSeconds?: number;
  /** Print one JSON object instead of text. */
  readonly json?: boolean;
}

/** Default `--count`, as the original lig. */
export const LIG_DEFAULT_COUNT = 3;
/** Default `--timeout` in seconds, as the original lig. */
export const LIG_DEFAULT_TIMEOUT_SECONDS = 2;

/** One-line summary for `oor --help`. */
export const LIG_SUMMARY = "ask a map-resolver for an EID's mapping (LISP Internet Groper)";

/** Usage line for `oor lig --help` (without the leading `Usage: `). */
export const LIG_USAGE =
  "oor lig EID --mr ADDRESS [--port N] [--iid N] [--source ADDRESS] [--count N] " +
  "[--timeout SECONDS] [--json]";

/** Paragraph for `oor lig --help`. */
export const LIG_DESCRIPTION =
  "Sends an Encapsulated Map-Request for EID (an IPv4 or IPv6 address or prefix) " +
  "to the map-resolver and prints the mapping it gets back: the EID prefix, TTL, " +
  "action, authoritative bit and the locators with their priority, weight and " +
  "state, or a negative reply with its action, plus who replied and the round-trip " +
  "time. Retries up to --count times, waiting --timeout seconds for each. Exits 0 " +
  "on a reply (positive or negative), 1 when none comes, 2 for bad usage.";

/** The flags of `oor lig`, in the shape of `main.ts`'s command table. */
export const LIG_FLAGS: Readonly<
  Record<
    string,
    { readonly type: "string" | "boolean"; readonly value?: string; readonly help: string }
  >
> = {
  mr: { type: "string", value: "ADDRESS", help: "map-resolver to ask (required)" },
  port: { type: "string", value: "N", help: "its control port (default 4342)" },
  iid: { type: "string", value: "N", help: "instance ID of the EID" },
  source: {
    type: "string",
    value: "ADDRESS",
    help: "our address in the request (default: route source)",
  },
  count: {
    type: "string",
    value: "N",
    help: `Map-Requests to send before giving up (default ${LIG_DEFAULT_COUNT})`,
  },
  timeout: {
    type: "string",
    value: "SECONDS",
    help: `seconds to wait for each reply (default ${LIG_DEFAULT_TIMEOUT_SECONDS})`,
  },
  json: { type: "boolean", help: "print one JSON object" },
};

/** Parsed flag values as `node:util` `parseArgs` returns them. */
export type LigValues = Readonly<Record<string, string | boolean | undefined>>;

function intFlag(
  values: LigValues,
  name: string,
  min: number,
  max: number,
): number | string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    return `--${name} must be an integer from ${min} to ${max} (got '${String(v)}')`;
  }
  return Number(v);
}

/**
 * Checks parsed flags and positionals; returns the options, or a one-line
 * reason for a usage error (exit code 2).
 */
export function ligOptionsFromValues(
  values: LigValues,
  positionals: readonly string[],
): LigOptions | string {
  if (positionals.length !== 1) {
    return positionals.length === 0
      ? "give the EID to look up"
      : `give one EID (got ${positionals.length} arguments)`;
  }
  const eid = positionals[0]!;
  const mr = values["mr"];
  if (typeof mr !== "string") return "--mr ADDRESS is required";
  const opts: { -readonly [K in keyof LigOptions]: LigOptions[K] } = { eid, mr };
  const port = intFlag(values, "port", 1, 65535);
  const iid = intFlag(values, "iid", 0, 0xffffffff);
  const count = intFlag(values, "count", 1, 100);
  for (const v of [port, iid, count]) if (typeof v === "string") return v;
  if (port !== undefined) opts.port = port as number;
  if (iid !== undefined) opts.iid = iid as number;
  if (count !== undefined) opts.count = count as number;
  const timeout = values["timeout"];
  if (timeout !== undefined) {
    const t = typeof timeout === "string" && /^\d+(\.\d+)?$/.test(timeout) ? Number(timeout) : NaN;
    if (!(t > 0 && t <= 60)) {
      return `--timeout must be a number of seconds above 0, at most 60 (got '${String(timeout)}')`;
    }
    opts.timeoutSeconds = t;
  }
  const source = values["source"];
  if (typeof source === "string") opts.source = source;
  if (values["json"] === true) opts.json = true;
  return checkOptions(opts) ?? opts;
}

/** Parses `oor lig` arguments (without `lig`); options or a usage error. */
export function parseLigArgs(args: readonly string[]): LigOptions | string {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const [name, f] of Object.entries(LIG_FLAGS)) options[name] = { type: f.type };
  try {
    const parsed = parseArgs({
      args: args as string[],
      options,
      strict: true,
      allowPositionals: true,
    });
    return ligOptionsFromValues(parsed.values as LigValues, parsed.positionals);
  } catch (e) {
    return flagError(e, [...Object.keys(LIG_FLAGS), "help"], args);
  }
}

/** The checks that need more than the flag syntax. */
function checkOptions(o: LigOptions): string | undefined {
  if (query(o) === undefined) {
    return `'${o.eid}' is not an IPv4 or IPv6 address or prefix (like 10.1.2.3 or 10.1.0.0/16)`;
  }
  const mr = canonicalIp(o.mr);
  if (mr === undefined) return `--mr '${o.mr}' is not an IPv4 or IPv6 address`;
  if (o.source !== undefined) {
    const s = canonicalIp(o.source);
    if (s === undefined) return `--source '${o.source}' is not an IPv4 or IPv6 address`;
    if (isIPv4(s) !== isIPv4(mr)) {
      return `--source ${s} and --mr ${mr} are not of the same address family`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// The local source address.

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;

let libc:
  | Deno.DynamicLibrary<{
    socket: { parameters: ["i32", "i32", "i32"]; result: "i32" };
    connect: { parameters: ["i32", "buffer", "u32"]; result: "i32" };
    getsockname: { parameters: ["i32", "buffer", "buffer"]; result: "i32" };
    close: { parameters: ["i32"]; result: "i32" };
  }>
  | undefined;

/**
 * The source address the kernel picks for UDP toward `dst`: a UDP socket
 * is connected (which sends nothing, it only looks the route up) and its
 * name read back. Uses libc through FFI (`node:dgram` in Deno reports the
 * wildcard address for a connected socket). Throws when FFI is not allowed
 * or there is no route.
 */
export function routeSource(dst: string): string {
  const v4 = isIPv4(dst);
  const sa = new Uint8Array(v4 ? 16 : 28);
  const dv = new DataView(sa.buffer);
  // struct sockaddr_in / sockaddr_in6: family is host-endian (Linux x86/arm: little).
  dv.setUint16(0, v4 ? AF_INET : AF_INET6, true);
  dv.setUint16(2, LISP_CONTROL_PORT, false);
  if (!(v4 ? ipv4ToBytes(dst, sa, 4) : ipv6ToBytes(dst, sa, 8))) {
    throw new TypeError(`not an IPv4 or IPv6 address: ${dst}`);
  }
  libc ??= Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
  const c = libc.symbols;
  const fd = c.socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) throw new Error(`socket() failed for ${dst}`);
  try {
    if (c.connect(fd, sa, sa.length) !== 0) throw new Error(`no route to ${dst}`);
    const out = new Uint8Array(sa.length);
    const len = new Uint32Array([out.length]);
    if (c.getsockname(fd, out, new Uint8Array(len.buffer)) !== 0) {
      throw new Error(`getsockname() failed for ${dst}`);
    }
    return v4 ? `${out[4]}.${out[5]}.${out[6]}.${out[7]}` : ipv6FromBytes(out, 8);
  } finally {
    c.close(fd);
  }
}

/** The address to send from toward `mr`: loopback for a loopback resolver, else the route's. */
export function localSourceFor(mr: string): string {
  const a = ipAddress(mr).ip;
  if (isIPv4(a) ? a.startsWith("127.") : a === "::1") return isIPv4(a) ? "127.0.0.1" : "::1";
  return routeSource(a);
}

// ---------------------------------------------------------------------------
// The query.

/** What was asked, parsed. */
interface Query {
  /** The prefix asked for (host bits cleared; iid 0 when none). */
  readonly prefix: Prefix;
  /** The EID as it goes in the Map-Request record. */
  readonly eid: Address;
  /** How the EID is shown: `"10.1.2.3"`, `"10.1.0.0/16"`, `"[5]10.1.2.3"`. */
  readonly text: string;
}

function query(o: LigOptions): Query | undefined {
  const p = parsePrefix(o.eid, o.iid ?? 0);
  if (p === undefined || p.family === "mac") return undefined;
  const addr = prefixAddress(p);
  const eid: Address = o.iid === undefined ? addr : inInstance(o.iid, addr);
  const host = p.len === (p.family === "ipv4" ? 32 : 128);
  const shown = host ? (addr.kind === "mac" ? addr.mac : addr.ip) : formatPrefix({ ...p, iid: 0 });
  return { prefix: p, eid, text: o.iid === undefined ? shown : `[${o.iid}]${shown}` };
}

/** The outcome of one lig run. */
export interface LigResult {
  /** The EID asked for, as shown (`"[5]10.1.2.3"`). */
  readonly eid: string;
  /** The map-resolver asked. */
  readonly mr: Peer;
  /** Our address: ITR-RLOC and inner source. */
  readonly source: string;
  /** Map-Requests sent. */
  readonly attempts: number;
  /** The answer, absent when none came. */
  readonly reply?: LigReply;
}

/** A Map-Reply that answered us. */
export interface LigReply {
  /** Who sent it (outer UDP source). */
  readonly from: Peer;
  /** Nonce of the Map-Request it answers. */
  readonly nonce: bigint;
  /** Which attempt it answers (1-based). */
  readonly attempt: number;
  /** Milliseconds from sending that attempt to the reply. */
  readonly rttMs: number;
  /** The Map-Reply's records. */
  readonly records: readonly EidRecord[];
}

/** What {@link lig} can be given instead of the defaults (tests). */
export interface LigDeps {
  /** A fresh 64-bit nonce (default: random). */
  readonly nonce?: () => bigint;
  /** Called after each Map-Request is sent, with its 1-based number. */
  readonly onSend?: (attempt: number, result: Omit<LigResult, "attempts" | "reply">) => void;
  /** Where the control socket's own warnings go (default: nowhere). */
  readonly log?: (line: string) => void;
}

function randomNonce(): bigint {
  return crypto.getRandomValues(new BigUint64Array(1))[0]!;
}

/** Binds to `source`, or to the wildcard of its family when `source` is not ours. */
async function openControl(source: string, logger: Logger): Promise<ControlPlane> {
  const counters = new Counters();
  try {
    return await ControlPlane.open({ logger, counters, address: source, port: 0 });
  } catch {
    const any = isIPv4(source) ? "0.0.0.0" : "::";
    return await ControlPlane.open({ logger, counters, address: any, port: 0 });
  }
}

/**
 * Runs one lig query: sends up to `count` ECM Map-Requests, each with its
 * own nonce, and resolves with the first Map-Reply that answers one of
 * them, or with no `reply` after the last timeout. Throws `TypeError` for
 * options {@link ligOptionsFromValues} would reject, and whatever opening
 * the socket throws.
 */
export async function lig(o: LigOptions, deps: LigDeps = {}): Promise<LigResult> {
  const bad = checkOptions(o);
  if (bad !== undefined) throw new TypeError(bad);
  const q = query(o)!;
  const mrAddress = canonicalIp(o.mr)!;
  const mr: Peer = { address: mrAddress, port: o.port ?? LISP_CONTROL_PORT };
  const source = o.source !== undefined ? canonicalIp(o.source)! : localSourceFor(mrAddress);
  const count = o.count ?? LIG_DEFAULT_COUNT;
  const timeoutMs = (o.timeoutSeconds ?? LIG_DEFAULT_TIMEOUT_SECONDS) * 1000;
  const nextNonce = deps.nonce ?? randomNonce;
  const log = deps.log;
  const logger = new Logger({
    role: "lig",
    level: "warn",
    sink: { write: (line) => log?.(line) },
  });
  const cp = await openControl(source, logger);
  const base = { eid: q.text, mr, source };

  // The inner header goes from us to the EID; when the EID is of the other
  // family, from that family's unspecified address (the reply goes to the
  // ITR-RLOC anyway).
  const eidIp = prefixAddress(q.prefix);
  const eidV4 = eidIp.kind === "ipv4";
  const innerSrc = eidV4 === isIPv4(source) ? source : eidV4 ? "0.0.0.0" : "::";
  const innerDst = eidIp.kind === "mac" ? mrAddress : eidIp.ip;

  const sentAt = new Map<bigint, { at: number; attempt: number }>();
  let answer: (() => void) | undefined;
  let reply: LigReply | undefined;
  cp.on("map-reply", (m, r) => {
    if (reply !== undefined) return;
    const s = sentAt.get(m.nonce);
    if (s === undefined) return; // not ours (or probe noise): ignore
    reply = {
      from: r.from,
      nonce: m.nonce,
      attempt: s.attempt,
      rttMs: performance.now() - s.at,
      records: m.records,
    };
    answer?.();
  });

  let attempts = 0;
  try {
    while (attempts < count && reply === undefined) {
      attempts++;
      const nonce = nextNonce();
      const bytes = emitMapRequest({
        authoritative: false,
        probe: false,
        smr: false,
        pitr: false,
        smrInvoked: false,
        localXtr: false,
        dontMapReply: false,
        nonce,
        sourceEid: NO_ADDRESS,
        itrRlocs: [ipAddress(source)],
        records: [{ maskLen: q.prefix.len, eid: q.eid }],
      });
      sentAt.set(nonce, { at: performance.now(), attempt: attempts });
      cp.sendEcm(
        bytes,
        { src: innerSrc, dst: innerDst, srcPort: cp.port, dstPort: LISP_CONTROL_PORT },
        mr,
      );
      deps.onSend?.(attempts, base);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          answer = undefined;
          resolve();
        }, timeoutMs);
        answer = () => {
          clearTimeout(timer);
          answer = undefined;
          resolve();
        };
        if (reply !== undefined) answer();
      });
    }
  } finally {
    cp.close();
  }
  return reply === undefined ? { ...base, attempts } : { ...base, attempts, reply };
}

// ---------------------------------------------------------------------------
// Output.

const ACTION_NAMES: readonly string[] = [
  "no-action",
  "native-forward",
  "send-map-request",
  "drop",
  "drop-policy-denied",
  "drop-auth-failure",
];

/** The name of a Map-Reply action (RFC 9301 §5.4), `action-N` for unknown ones. */
export function actionName(action: number): string {
  return ACTION_NAMES[action] ?? `action-${action}`;
}

/** `"10.1.0.0/16"` or `"[5]10.1.0.0/16"` for a record's EID prefix. */
function recordPrefix(rec: EidRecord): string {
  const p = prefixOf(rec.eid, rec.maskLen);
  return p !== undefined ? formatPrefix(p) : `${addressToString(rec.eid)}/${rec.maskLen}`;
}

function ttlText(ttl: number): string {
  return ttl === 0xffffffff ? "never expires" : `${ttl} min`;
}

/** The text `oor lig` prints for a reply (after the send lines). */
export function formatLigReply(result: LigResult): string {
  const r = result.reply;
  if (r === undefined) return "";
  let s = `Received map-reply from ${formatPeer(r.from)} with rtt ${r.rttMs.toFixed(3)} ms\n\n`;
  s += `Mapping entry for EID ${result.eid}:\n`;
  if (r.records.length === 0) s += "(the map-reply has no records)\n";
  for (const rec of r.records) {
    const negative = rec.locators.length === 0;
    s += `${recordPrefix(rec)}, record ttl: ${ttlText(rec.ttl)}, auth bit: ${
      rec.authoritative ? 1 : 0
    }, ${negative ? "negative, " : ""}action: ${actionName(rec.action)}`;
    if (rec.mapVersion !== 0) s += `, map-version: ${rec.mapVersion}`;
    s += "\n";
    if (negative) continue;
    const rows = rec.locators.map((l) => [
      addressToString(l.address),
      l.reachable ? "up" : "down",
      `${l.priority}/${l.weight}`,
      l.local ? "local" : "",
    ]);
    const w = Math.max(7, ...rows.map((row) => row[0]!.length));
    s += `  ${"Locator".padEnd(w)}  State  Priority/Weight\n`;
    for (const [addr, state, pw, local] of rows) {
      s += `  ${addr!.padEnd(w)}  ${state!.padEnd(5)}  ${pw}${local ? `  (${local})` : ""}`
        .trimEnd() + "\n";
    }
  }
  return s;
}

/** The `--json` object of a run (bigints as 0x-hex). */
export function ligJson(result: LigResult): Record<string, unknown> {
  const o: Record<string, unknown> = {
    eid: result.eid,
    mr: formatPeer(result.mr),
    source: result.source,
    attempts: result.attempts,
    timeout: result.reply === undefined,
  };
  const r = result.reply;
  if (r === undefined) return o;
  o["replier"] = formatPeer(r.from);
  o["rttMs"] = Math.round(r.rttMs * 1000) / 1000;
  o["nonce"] = `0x${r.nonce.toString(16).padStart(16, "0")}`;
  o["negative"] = r.records.length === 0 || r.records.every((rec) => rec.locators.length === 0);
  o["records"] = r.records.map((rec) => {
    const p = prefixOf(rec.eid, rec.maskLen);
    const out: Record<string, unknown> = {
      eidPrefix: p !== undefined ? formatPrefix({ ...p, iid: 0 }) : recordPrefix(rec),
    };
    if (rec.eid.kind === "iid") out["iid"] = rec.eid.iid;
    out["ttl"] = rec.ttl;
    out["action"] = actionName(rec.action);
    out["authoritative"] = rec.authoritative;
    out["negative"] = rec.locators.length === 0;
    out["mapVersion"] = rec.mapVersion;
    out["locators"] = rec.locators.map((l) => ({
      address: addressToString(l.address),
      priority: l.priority,
      weight: l.weight,
      mPriority: l.mPriority,
      mWeight: l.mWeight,
      state: l.reachable ? "up" : "down",
      local: l.local,
      probed: l.probed,
    }));
    return out;
  });
  return o;
}

/** Where `oor lig` writes. */
export interface LigIo {
  /** Standard output (text ends in a newline). */
  readonly stdout: (text: string) => void;
  /** Standard error (text ends in a newline). */
  readonly stderr: (text: string) => void;
}

/**
 * `oor lig`: `args` are the arguments after `lig` (parsed here) or options
 * already parsed. Resolves to the exit code: 0 on a reply, 1 when none
 * came or the query could not be sent, 2 for bad usage.
 */
export async function runLig(
  args: readonly string[] | LigOptions,
  io: LigIo,
  deps: Omit<LigDeps, "onSend"> = {},
): Promise<number> {
  const o = Array.isArray(args) ? parseLigArgs(args) : args as LigOptions;
  if (typeof o === "string") {
    io.stderr(`oor lig: ${o} (see oor lig --help)\n`);
    return 2;
  }
  const bad = checkOptions(o);
  if (bad !== undefined) {
    io.stderr(`oor lig: ${bad} (see oor lig --help)\n`);
    return 2;
  }
  const json = o.json === true;
  let result: LigResult;
  try {
    result = await lig(o, {
      ...deps,
      log: deps.log ?? ((line) => io.stderr(line)),
      onSend: (_attempt, b) => {
        if (!json) io.stdout(`Send map-request to ${formatPeer(b.mr)} for ${b.eid} ...\n`);
      },
    });
  } catch (e) {
    io.stderr(`oor lig: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  if (json) io.stdout(JSON.stringify(ligJson(result)) + "\n");
  else io.stdout(formatLigReply(result));
  if (result.reply === undefined) {
    const each = (o.timeoutSeconds ?? LIG_DEFAULT_TIMEOUT_SECONDS).toString();
    io.stderr(
      `oor lig: no map-reply from ${
        formatPeer(result.mr)
      } for ${result.eid} after ${result.attempts} map-request${
        result.attempts === 1 ? "" : "s"
      } (${each} s each)\n`,
    );
    return 1;
  }
  return 0;
}
