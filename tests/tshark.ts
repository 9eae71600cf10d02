/**
 * Wireshark's dissector as an independent check of what we put on the wire.
 *
 * `dissect(frames)` wraps each UDP payload in Ethernet + IPv4/IPv6 + UDP,
 * writes a pcap, runs `tshark -T pdml` on it and returns, per frame, the
 * flat list of dissected fields (name, shown value) in tree order, the
 * protocol stack and the expert infos. `assertClean(frame)` fails when
 * tshark found the packet malformed or raised a warning or an error.
 *
 * Why PDML: it keeps every field in order with duplicates (a Map-Register
 * with three locators has three `lisp.loc.locator` fields; `-T json` folds
 * them into one object key unless `--no-duplicate-keys`, and loses the
 * order across keys), it carries both the raw `show` value and the
 * `showname` label, the byte position of each field, and expert infos as
 * ordinary fields (`_ws.expert` with `_ws.expert.severity` / `.group` /
 * `.message` and the dissector's own expert name such as
 * `lisp.unexpected_field`). `-T ek` flattens too much; `-V` is text.
 *
 * tshark runs with:
 * - `-n` (no name resolution),
 * - `-d udp.port==4342,lisp -d udp.port==4341,lisp-data -d udp.port==4790,vxlan_gpe`
 *   (these are tshark 4.0's defaults too; stated so a changed profile cannot move them),
 * - `-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE`, so a wrong IPv4
 *   header or UDP checksum (ours, or in an inner packet) is an expert error.
 *
 * @module
 */

import { LINKTYPE_ETHERNET, LINKTYPE_RAW, type PcapPacket, writePcap } from "../tools/pcap.ts";
import { udpFrame } from "./pcap_frames.ts";

/** The tshark binary; override with the `TSHARK` environment variable. */
export const TSHARK: string = envOr("TSHARK", "tshark");

function envOr(name: string, fallback: string): string {
  try {
    return Deno.env.get(name) ?? fallback;
  } catch {
    return fallback; // no --allow-env
  }
}

/** LISP control port (RFC 9301 §5.1 / IANA). */
export const LISP_CONTROL_PORT = 4342;
/** LISP data port (RFC 9300 §5.3 / IANA). */
export const LISP_DATA_PORT = 4341;
/** VXLAN-GPE port (IANA). */
export const VXLAN_GPE_PORT = 4790;

/** Base timestamp of generated pcaps: 2024-01-01T00:00:00Z in µs; frame i gets base + i µs. */
export const PCAP_BASE_TS = 1_704_067_200_000_000;

/** `-d` arguments: which dissector tshark uses for which UDP port. */
export const DECODE_AS: readonly string[] = [
  `udp.port==${LISP_CONTROL_PORT},lisp`,
  `udp.port==${LISP_DATA_PORT},lisp-data`,
  `udp.port==${VXLAN_GPE_PORT},vxlan_gpe`,
];

/** `-o` preferences: verify IPv4 and UDP checksums. */
export const PREFERENCES: readonly string[] = [
  "ip.check_checksum:TRUE",
  "udp.check_checksum:TRUE",
];

/** One UDP datagram to dissect. */
export interface Frame {
  /** The UDP payload (a LISP message, a LISP data packet, a VXLAN-GPE packet...). */
  readonly payload: Uint8Array;
  /** UDP source port. */
  readonly srcPort: number;
  /** UDP destination port. */
  readonly dstPort: number;
  /** Carry it over IPv6 (2001:db8::1 -> 2001:db8::2) instead of IPv4 (192.0.2.1 -> 192.0.2.2). */
  readonly v6?: boolean;
  /** Outer source address; overrides the default of the family. */
  readonly src?: string;
  /** Outer destination address; overrides the default of the family. */
  readonly dst?: string;
}

/** One node of tshark's dissection tree, flattened. */
export interface Field {
  /** Field name (`"lisp.nonce"`); `""` for text-only tree items. */
  readonly name: string;
  /** The value as tshark shows it in filters: `"3"`, `"0x0123456789abcdef"`, `"192.0.2.1"`; `""` for none. */
  readonly show: string;
  /** The tree label: `"Type: Map-Register (3)"`. */
  readonly showname: string;
  /** Raw bytes of the field in hex, when tshark gives them. */
  readonly value?: string;
  /** Byte offset in the frame (Ethernet header included). */
  readonly pos: number;
  /** Length in bytes. */
  readonly size: number;
  /** The protocol layer it sits in (`"lisp"`, `"ip"`, `"_ws.malformed"`...). */
  readonly proto: string;
  /** Index of the parent field in {@link DissectedFrame.fields}, or -1 at the protocol's top level. */
  readonly parent: number;
}

/** Severity of an expert info, as Wireshark names it. */
export type Severity = "comment" | "chat" | "note" | "warning" | "error" | "unknown";

/** One expert info (a remark of the dissector about the packet). */
export interface ExpertInfo {
  /** The expert's field name (`"lisp.unexpected_field"`, `"_ws.malformed.expert"`, `"udp.checksum_bad.expert"`). */
  readonly name: string;
  /** The message shown. */
  readonly message: string;
  /** Severity. */
  readonly severity: Severity;
  /** Group (`"malformed"`, `"protocol"`, `"checksum"`, `"undecoded"`...). */
  readonly group: string;
  /** The protocol layer it was raised in. */
  readonly proto: string;
}

/** What tshark made of one frame. */
export interface DissectedFrame {
  /** Frame number (1-based, as tshark counts). */
  readonly number: number;
  /**
   * The protocol stack as tshark reports it (`frame.protocols` split on
   * `:`), e.g. `["eth","ethertype","ip","udp","lisp"]`. Note: tshark 4.0
   * leaves VXLAN-GPE out of it (`...:udp:ip:icmp`); see {@link layers}.
   */
  readonly protocols: readonly string[];
  /**
   * The top-level protocol layers of the dissection tree, in order, e.g.
   * `["frame","eth","ipv6","udp","vxlan","ip","icmp"]` (VXLAN-GPE
   * shows as `vxlan`). A layer called from inside another's tree (such as the
   * `data` after a LISP control message) is a field of that layer instead.
   */
  readonly layers: readonly string[];
  /** Every field of the tree, in order, including the `eth`/`ip`/`udp` layers. */
  readonly fields: readonly Field[];
  /** Expert infos, in order. */
  readonly experts: readonly ExpertInfo[];
  /** True when tshark flagged the packet malformed (a `_ws.malformed` layer). */
  readonly malformed: boolean;
}

/** Options of {@link dissect} and {@link dissectPcap}. */
export interface DissectOptions {
  /** More `-d` arguments, e.g. `"udp.port==14342,lisp"` for a test on another port. */
  readonly decodeAs?: readonly string[];
  /** More `-o` preferences. */
  readonly preferences?: readonly string[];
  /** Link type of the generated pcap: Ethernet (default) or raw IP (101). */
  readonly linktype?: typeof LINKTYPE_ETHERNET | typeof LINKTYPE_RAW;
}

let available: Promise<string | undefined> | undefined;

/**
 * Why tshark cannot be used here (`undefined` when it can). Runs
 * `tshark --version` once and remembers the answer.
 */
export function tsharkMissing(): Promise<string | undefined> {
  available ??= (async () => {
    try {
      const out = await new Deno.Command(TSHARK, {
        args: ["--version"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) {
        return `${TSHARK} --version exited with ${out.code}: ${
          new TextDecoder().decode(out.stderr).trim()
        }`;
      }
      return undefined;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        return `${TSHARK} is not installed (apt-get install tshark)`;
      }
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        return `no permission to run ${TSHARK} (run the tests with --allow-run)`;
      }
      return `cannot run ${TSHARK}: ${e instanceof Error ? e.message : String(e)}`;
    }
  })();
  return available;
}

/** Whether tshark can be run. */
export async function tsharkAvailable(): Promise<boolean> {
  return (await tsharkMissing()) === undefined;
}

/** The first line of `tshark --version`, e.g. `"TShark (Wireshark) 4.0.17 (...)"`. */
export async function tsharkVersion(): Promise<string> {
  const out = await new Deno.Command(TSHARK, {
    args: ["--version"],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n")[0]!.trim();
}

/** Builds the pcap that {@link dissect} hands to tshark (exported so a test can keep it). */
export function framesToPcap(
  frames: readonly Frame[],
  linktype: typeof LINKTYPE_ETHERNET | typeof LINKTYPE_RAW = LINKTYPE_ETHERNET,
): Uint8Array {
  const packets: PcapPacket[] = frames.map((f, i) => ({
    ts: PCAP_BASE_TS + i,
    data: udpFrame({
      src: f.src ?? (f.v6 ? "2001:db8::1" : "192.0.2.1"),
      dst: f.dst ?? (f.v6 ? "2001:db8::2" : "192.0.2.2"),
      srcPort: f.srcPort,
      dstPort: f.dstPort,
      payload: f.payload,
      linktype,
    }),
  }));
  return writePcap(packets, { linktype });
}

/** Dissects UDP payloads with tshark; one result per frame, in order. */
export async function dissect(
  frames: readonly Frame[],
  options: DissectOptions = {},
): Promise<DissectedFrame[]> {
  const out = await dissectPcap(
    framesToPcap(frames, options.linktype ?? LINKTYPE_ETHERNET),
    options,
  );
  if (out.length !== frames.length) {
    throw new Error(`tshark returned ${out.length} frames for ${frames.length}`);
  }
  return out;
}

/** Dissects a whole pcap file (our own or a capture) with tshark. */
export async function dissectPcap(
  pcap: Uint8Array,
  options: DissectOptions = {},
): Promise<DissectedFrame[]> {
  const path = await Deno.makeTempFile({ prefix: "oor-tshark-", suffix: ".pcap" });
  try {
    await Deno.writeFile(path, pcap);
    return await dissectFile(path, options);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

/** Dissects a pcap or pcapng file on disk with tshark. */
export async function dissectFile(
  path: string,
  options: DissectOptions = {},
): Promise<DissectedFrame[]> {
  const args = ["-n", "-r", path, "-T", "pdml"];
  for (const d of [...DECODE_AS, ...(options.decodeAs ?? [])]) args.push("-d", d);
  for (const o of [...PREFERENCES, ...(options.preferences ?? [])]) args.push("-o", o);
  const out = await new Deno.Command(TSHARK, { args, stdout: "piped", stderr: "piped" }).output();
  const stderr = new TextDecoder().decode(out.stderr)
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("Running as user"))
    .join("\n");
  if (!out.success) {
    throw new Error(`${TSHARK} ${args.join(" ")} exited with ${out.code}:\n${stderr}`);
  }
  return parsePdml(new TextDecoder().decode(out.stdout));
}

// ---------------------------------------------------------------------------
// PDML
// ---------------------------------------------------------------------------

// Wireshark's expert severities and groups (epan/proto.h, PI_*).
const SEVERITIES: ReadonlyMap<number, Severity> = new Map([
  [0x00100000, "comment"],
  [0x00200000, "chat"],
  [0x00400000, "note"],
  [0x00600000, "warning"],
  [0x00800000, "error"],
]);
const GROUPS: ReadonlyMap<number, string> = new Map([
  [0x01000000, "checksum"],
  [0x02000000, "sequence"],
  [0x03000000, "response-code"],
  [0x04000000, "request-code"],
  [0x05000000, "undecoded"],
  [0x06000000, "reassemble"],
  [0x07000000, "malformed"],
  [0x08000000, "debug"],
  [0x09000000, "protocol"],
  [0x0a000000, "security"],
  [0x0b000000, "comment"],
  [0x0c000000, "decryption"],
  [0x0d000000, "assumption"],
  [0x0e000000, "deprecated"],
]);

const TAG = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.:-]+="[^"]*")*)\s*(\/?)>/g;
const ATTR = /([\w.:-]+)="([^"]*)"/g;

/**
 * Parses tshark's PDML output into frames. Exported for tests of the
 * harness; knows only the parts of PDML tshark writes.
 */
export function parsePdml(xml: string): DissectedFrame[] {
  const frames: DissectedFrame[] = [];
  let fields: Field[] = [];
  let number = 0;
  let protoStack: string[] = [];
  let layers: string[] = [];
  // Stack of open <field> elements: index in `fields` (or -1 for a skipped one).
  let fieldStack: number[] = [];
  TAG.lastIndex = 0;
  for (let m = TAG.exec(xml); m !== null; m = TAG.exec(xml)) {
    const closing = m[1] === "/";
    const tag = m[2]!;
    const selfClosing = m[4] === "/";
    if (tag === "packet") {
      if (!closing) {
        fields = [];
        layers = [];
        protoStack = [];
        fieldStack = [];
        number = frames.length + 1;
      } else {
        frames.push(finishFrame(number, fields, layers));
      }
    } else if (tag === "proto") {
      if (closing) {
        protoStack.pop();
      } else {
        const a = attrs(m[3]!);
        const name = a.get("name") ?? "";
        if (protoStack.length === 0 && name !== "geninfo") layers.push(name);
        if (!selfClosing) protoStack.push(name);
        // A self-closing proto (e.g. the hidden second `_ws.malformed`) still marks the layer.
        if (selfClosing) {
          fields.push(makeField(a, a.get("name") ?? "", -1, true));
        }
      }
    } else if (tag === "field") {
      if (closing) {
        fieldStack.pop();
        continue;
      }
      const a = attrs(m[3]!);
      const proto = protoStack[protoStack.length - 1] ?? "";
      const parent = fieldStack.length > 0 ? fieldStack[fieldStack.length - 1]! : -1;
      fields.push(makeField(a, proto, parent, false));
      if (!selfClosing) fieldStack.push(fields.length - 1);
    }
  }
  return frames;
}

function makeField(a: Map<string, string>, proto: string, parent: number, isProto: boolean): Field {
  const value = a.get("value");
  return {
    name: a.get("name") ?? "",
    show: a.get("show") ?? "",
    showname: a.get("showname") ?? "",
    ...(value !== undefined ? { value } : {}),
    pos: Number(a.get("pos") ?? 0),
    size: Number(a.get("size") ?? 0),
    proto: isProto ? a.get("name") ?? proto : proto,
    parent,
  };
}

function finishFrame(number: number, fields: Field[], layers: string[]): DissectedFrame {
  const experts: ExpertInfo[] = [];
  fields.forEach((f, i) => {
    if (f.name !== "_ws.expert") return;
    let name = "";
    let message = "";
    let severity: Severity = "unknown";
    let group = "unknown";
    for (let j = i + 1; j < fields.length && fields[j]!.parent === i; j++) {
      const c = fields[j]!;
      if (c.name === "_ws.expert.message") message = c.show;
      else if (c.name === "_ws.expert.severity") {
        severity = SEVERITIES.get(Number(c.show)) ?? "unknown";
      } else if (c.name === "_ws.expert.group") group = GROUPS.get(Number(c.show)) ?? c.show;
      else if (name === "") name = c.name;
    }
    if (message === "") message = f.showname.replace(/^Expert Info \([^)]*\):\s*/, "");
    experts.push({ name, message, severity, group, proto: f.proto });
  });
  const protocols = fields.find((f) => f.name === "frame.protocols")?.show.split(":") ?? [];
  const malformed = fields.some((f) => f.proto === "_ws.malformed") ||
    experts.some((e) => e.group === "malformed");
  return { number, protocols, layers, fields, experts, malformed };
}

function attrs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  ATTR.lastIndex = 0;
  for (let m = ATTR.exec(text); m !== null; m = ATTR.exec(text)) out.set(m[1]!, unescapeXml(m[2]!));
  return out;
}

function unescapeXml(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|quot|amp|lt|gt|apos);/g, (_, e: string) => {
    switch (e) {
      case "quot":
        return '"';
      case "amp":
        return "&";
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "apos":
        return "'";
    }
    return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

// ---------------------------------------------------------------------------
// Helpers for tests
// ---------------------------------------------------------------------------

/** The shown values of every field called `name`, in tree order (empty when none). */
export function fieldValues(frame: DissectedFrame, name: string): string[] {
  const out: string[] = [];
  for (const f of frame.fields) if (f.name === name) out.push(f.show);
  return out;
}

/** The shown value of the one field called `name`; throws when there is none or several. */
export function fieldValue(frame: DissectedFrame, name: string): string {
  const v = fieldValues(frame, name);
  if (v.length !== 1) {
    throw new Error(
      `frame ${frame.number}: expected one ${name}, found ${v.length}${
        v.length ? ` (${v.join(", ")})` : ""
      }\n${describeFrame(frame, "lisp")}`,
    );
  }
  return v[0]!;
}

/** The fields nested (at any depth) under `frame.fields[index]`, in order. */
export function fieldsUnder(frame: DissectedFrame, index: number): Field[] {
  const out: Field[] = [];
  const inside = new Set([index]);
  for (let i = index + 1; i < frame.fields.length; i++) {
    const f = frame.fields[i]!;
    if (!inside.has(f.parent)) {
      if (f.parent < index) break;
      continue;
    }
    inside.add(i);
    out.push(f);
  }
  return out;
}

/** Options of {@link assertClean}. */
export interface CleanOptions {
  /**
   * Accept bytes the LISP dissector left over (a `data` layer right after
   * `lisp`); by default they fail, since they mean tshark and we disagree
   * on a length. Default false.
   */
  readonly allowTrailingData?: boolean;
  /** Expert names to accept even at warning/error severity, e.g. `["lisp.undecoded"]` for a vendor LCAF. */
  readonly allowExperts?: readonly string[];
}

const TUNNEL_LAYERS: ReadonlySet<string> = new Set(["lisp", "lisp-data", "vxlan"]);

/** The problems {@link assertClean} would fail on (empty when clean). */
export function problems(frame: DissectedFrame, options: CleanOptions = {}): string[] {
  const out: string[] = [];
  if (frame.malformed) out.push("tshark flagged the packet malformed");
  for (const e of frame.experts) {
    if (
      (e.severity === "warning" || e.severity === "error") &&
      !options.allowExperts?.includes(e.name)
    ) {
      out.push(`expert ${e.severity}/${e.group} in ${e.proto}: ${e.message} (${e.name})`);
    }
  }
  if (!options.allowTrailingData) {
    // LISP control calls the data dissector inside its own tree for bytes it
    // did not consume: a `data` field in the `lisp` layer.
    frame.fields.forEach((f, i) => {
      if (f.name === "data" && TUNNEL_LAYERS.has(f.proto)) {
        const len = fieldsUnder(frame, i).find((c) => c.name === "data.len")?.show ?? "some";
        out.push(`${f.proto} left ${len} bytes undissected (a data layer inside it)`);
      }
    });
    // A data layer right after a LISP/VXLAN header: a payload tshark could not recognise.
    frame.layers.forEach((p, i) => {
      const next = frame.layers[i + 1];
      // PDML names the data layer `fake-field-wrapper` in some frames.
      if (TUNNEL_LAYERS.has(p) && (next === "data" || next === "fake-field-wrapper")) {
        out.push(`${p} is followed by bytes tshark could not decode (a data layer)`);
      }
    });
  }
  return out;
}

/**
 * Throws (with the list of problems and the dissection) when tshark found
 * the frame malformed, raised an expert info of severity warning or error,
 * or left bytes after a LISP layer undissected.
 */
export function assertClean(frame: DissectedFrame, options: CleanOptions = {}): void {
  const p = problems(frame, options);
  if (p.length > 0) {
    throw new Error(
      `tshark frame ${frame.number} (${frame.protocols.join(":")}) is not clean:\n  - ${
        p.join("\n  - ")
      }\n${describeFrame(frame)}`,
    );
  }
}

/**
 * The dissection as text, one `name = show` line per field, indented by
 * depth; only the layers from `fromProto` on (default: from the first
 * layer above `udp`).
 */
export function describeFrame(frame: DissectedFrame, fromProto?: string): string {
  const startProto = fromProto ?? frame.protocols[frame.protocols.indexOf("udp") + 1] ?? "";
  const depth: number[] = [];
  const lines: string[] = [];
  let on = false;
  frame.fields.forEach((f, i) => {
    depth[i] = f.parent < 0 ? 0 : depth[f.parent]! + 1;
    if (f.proto === startProto) on = true;
    if (!on || f.name.startsWith("_ws.expert.")) return;
    const label = f.name === "" ? `(${f.showname || f.show})` : `${f.name} = ${f.show}`;
    lines.push(`    ${"  ".repeat(depth[i]!)}${label}`);
  });
  return lines.join("\n");
}
