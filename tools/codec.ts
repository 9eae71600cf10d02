/**
 * `oor decode` and `oor encode`: LISP messages between hex (or a pcap)
 * and their JSON form (see `wire/json.ts`).
 *
 * `oor decode HEX` prints the message as JSON; `oor encode` reads that JSON
 * back and prints hex, so `oor decode HEX | oor encode` prints `HEX`.
 *
 * @module
 */

import {
  emitPacket,
  fromHex,
  fromJson,
  type Json,
  type PacketKind,
  parsePacket,
  toHex,
  toJson,
} from "../wire/json.ts";
import { WireError } from "../wire/errors.ts";
import { LISP_CONTROL_PORT, LISP_DATA_PORT, VXLAN_GPE_PORT } from "../wire/data_header.ts";
import { readPcapUdp } from "./pcap.ts";

/** What the codec commands need from the outside world. */
export interface CodecIo {
  /** Writes to standard output. */
  readonly stdout: (text: string) => void;
  /** Writes to standard error. */
  readonly stderr: (text: string) => void;
  /** Reads all of standard input. */
  readonly readStdin: () => Promise<Uint8Array>;
  /** Reads a whole file. */
  readonly readFile: (path: string) => Promise<Uint8Array>;
}

/** Options of `oor decode`. */
export interface DecodeOptions {
  /** Hex strings given on the command line; standard input when empty. */
  readonly inputs: readonly string[];
  /** `--pcap FILE`. */
  readonly pcap?: string;
  /** `--as KIND`: how to read hex input. */
  readonly as?: string;
  /** `--compact`: one JSON value per line. */
  readonly compact?: boolean;
}

const KINDS: readonly PacketKind[] = ["control", "lisp-data", "vxlan-gpe"];

/** The packet kind for a UDP port, or undefined for ports that carry no LISP. */
export function kindForPort(port: number): PacketKind | undefined {
  if (port === LISP_CONTROL_PORT) return "control";
  if (port === LISP_DATA_PORT) return "lisp-data";
  if (port === VXLAN_GPE_PORT) return "vxlan-gpe";
  return undefined;
}

function show(value: Json, compact: boolean): string {
  return (compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)) + "\n";
}

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs `oor decode`; resolves to the exit code. */
export async function runDecode(opts: DecodeOptions, io: CodecIo): Promise<number> {
  const compact = opts.compact === true;
  if (opts.pcap !== undefined) {
    if (opts.inputs.length > 0) {
      io.stderr("oor decode: give hex or --pcap FILE, not both\n");
      return 2;
    }
    let bytes: Uint8Array;
    try {
      bytes = await io.readFile(opts.pcap);
    } catch (e) {
      io.stderr(`oor decode: ${opts.pcap}: ${describeError(e)}\n`);
      return 1;
    }
    let datagrams;
    try {
      datagrams = readPcapUdp(bytes);
    } catch (e) {
      io.stderr(`oor decode: ${opts.pcap}: ${describeError(e)}\n`);
      return 1;
    }
    let status = 0;
    for (const d of datagrams) {
      const kind = kindForPort(d.dstPort) ?? kindForPort(d.srcPort);
      if (kind === undefined) continue;
      const where = {
        frame: d.index + 1,
        src: `${d.src}:${d.srcPort}`,
        dst: `${d.dst}:${d.dstPort}`,
      };
      try {
        io.stdout(show({ ...where, packet: toJson(parsePacket(d.payload, kind)) }, compact));
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        io.stdout(show({ ...where, error: e.message }, compact));
        status = 1;
      }
    }
    return status;
  }
  const kind = (opts.as ?? "control") as PacketKind;
  if (!KINDS.includes(kind)) {
    io.stderr(`oor decode: --as must be one of ${KINDS.join(", ")} (got '${opts.as}')\n`);
    return 2;
  }
  let inputs = opts.inputs;
  if (inputs.length === 0) {
    const text = new TextDecoder().decode(await io.readStdin());
    inputs = text.split("\n").filter((l) => l.trim().length > 0);
  }
  if (inputs.length === 0) {
    io.stderr("oor decode: no input (give hex, pipe it in, or use --pcap FILE)\n");
    return 2;
  }
  let status = 0;
  for (const [i, input] of inputs.entries()) {
    const label = inputs.length > 1 ? `input ${i + 1}: ` : "";
    let bytes: Uint8Array;
    try {
      bytes = fromHex(input);
    } catch (e) {
      io.stderr(`oor decode: ${label}${describeError(e)}\n`);
      status = 2;
      continue;
    }
    try {
      io.stdout(show(toJson(parsePacket(bytes, kind)), compact));
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      io.stderr(`oor decode: ${label}malformed: ${e.message}\n`);
      status = status || 1;
    }
  }
  return status;
}

/**
 * Splits text holding one or more JSON values (an array of packets,
 * concatenated objects, or one object per line) into values.
 */
export function splitJsonValues(text: string): Json[] {
  const values: Json[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      if (depth === 0) start = i;
      depth++;
    } else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) {
        const v = JSON.parse(text.slice(start, i + 1)) as Json;
        if (Array.isArray(v)) values.push(...v);
        else values.push(v);
      } else if (depth < 0) {
        throw new SyntaxError(`unbalanced '${c}' at character ${i}`);
      }
    } else if (depth === 0 && !/\s/.test(c!)) {
      throw new SyntaxError(`unexpected '${c}' at character ${i} (expected a JSON object)`);
    }
  }
  if (depth !== 0) throw new SyntaxError("unterminated JSON value");
  return values;
}

/** Runs `oor encode`; resolves to the exit code. */
export async function runEncode(inputs: readonly string[], io: CodecIo): Promise<number> {
  const text = inputs.length > 0
    ? inputs.join("\n")
    : new TextDecoder().decode(await io.readStdin());
  let values: Json[];
  try {
    values = splitJsonValues(text);
  } catch (e) {
    io.stderr(`oor encode: not JSON: ${describeError(e)}\n`);
    return 2;
  }
  if (values.length === 0) {
    io.stderr("oor encode: no input (give JSON as an argument or on standard input)\n");
    return 2;
  }
  let status = 0;
  for (const [i, v] of values.entries()) {
    const label = values.length > 1 ? `value ${i + 1}: ` : "";
    // `oor decode --pcap` wraps each packet with where it was seen.
    const packet = v !== null && typeof v === "object" && !Array.isArray(v) &&
        v["packet"] !== undefined
      ? v["packet"]!
      : v;
    try {
      io.stdout(`${toHex(emitPacket(fromJson(packet)))}\n`);
    } catch (e) {
      if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
      io.stderr(`oor encode: ${label}${e.message}\n`);
      status = 2;
    }
  }
  return status;
}
