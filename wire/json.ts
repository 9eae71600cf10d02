/**
 * A JSON form of LISP messages, for `oor decode` / `oor encode`, logs and
 * the HTTP API.
 *
 * The record types of `wire/` are JSON-like already except for two kinds
 * of value: 64/128-bit integers (`bigint`: nonces, xTR-IDs, site-IDs),
 * written as `"0x…"` hex strings, and byte strings (`Uint8Array`:
 * authentication data, raw LCAF bodies, payloads), written as plain hex.
 * {@link fromJson} turns them back by field name, so
 * `emit(fromJson(toJson(parse(x))))` gives `x` back for canonical input.
 *
 * A packet is a {@link Packet}: a control message, or a LISP or VXLAN-GPE
 * data packet (header and payload). An ECM's inner control message is
 * shown decoded as `message` in place of its payload bytes.
 *
 * @module
 */

import { type LispDataHeader, parseLispDataHeader } from "./data_header.ts";
import { emitLispDataHeader, LISP_DATA_HEADER_LENGTH } from "./data_header.ts";
import {
  emitVxlanGpeHeader,
  parseVxlanGpeHeader,
  VXLAN_GPE_HEADER_LENGTH,
  type VxlanGpeHeader,
} from "./vxlan_gpe.ts";
import { type ControlMessage, emitControlMessage, parseControlMessage } from "./message.ts";
import { WireError } from "./errors.ts";

/** Fields holding 64- or 128-bit integers (`bigint`), by name. */
const BIGINT_FIELDS: ReadonlySet<string> = new Set(["nonce", "xtrId", "siteId"]);
/** Fields holding byte strings (`Uint8Array`), by name. */
const BYTES_FIELDS: ReadonlySet<string> = new Set([
  "authData",
  "rtrAuthData",
  "body",
  "data",
  "payload",
  "signature",
  "options",
]);
/** Hex digits to pad each bigint field to. */
const BIGINT_DIGITS: Readonly<Record<string, number>> = { nonce: 16, xtrId: 32, siteId: 16 };

/** How to read a buffer: which dissector applies. */
export type PacketKind = "control" | "lisp-data" | "vxlan-gpe";

/** A decoded packet: a control message or a data packet with its payload. */
export type Packet =
  | ControlMessage
  | { readonly type: "lisp-data"; readonly header: LispDataHeader; readonly payload: Uint8Array }
  | { readonly type: "vxlan-gpe"; readonly header: VxlanGpeHeader; readonly payload: Uint8Array };

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Two lowercase hex digits of each byte value. */
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lowercase hex of `bytes`, no separators (a table lookup a byte: the ms saves thousands at once). */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX_BYTE[bytes[i]!];
  return s;
}

/**
 * Bytes from hex text. Whitespace, `:` and `-` separators and a leading
 * `0x` are allowed; anything else is a `TypeError` naming the position.
 */
export function fromHex(text: string): Uint8Array {
  let t = text.trim();
  if (t.startsWith("0x") || t.startsWith("0X")) t = t.slice(2);
  const digits = t.replace(/[\s:-]/g, "");
  const bad = digits.search(/[^0-9a-fA-F]/);
  if (bad >= 0) throw new TypeError(`not hex: '${digits[bad]}' at digit ${bad}`);
  if (digits.length % 2 !== 0) throw new TypeError(`odd number of hex digits (${digits.length})`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Parses one packet of the given kind. Throws `WireError` for malformed input. */
export function parsePacket(bytes: Uint8Array, kind: PacketKind = "control"): Packet {
  switch (kind) {
    case "control":
      return parseControlMessage(bytes);
    case "lisp-data":
      return {
        type: "lisp-data",
        header: parseLispDataHeader(bytes.subarray(0, LISP_DATA_HEADER_LENGTH)),
        payload: bytes.slice(LISP_DATA_HEADER_LENGTH),
      };
    case "vxlan-gpe":
      return {
        type: "vxlan-gpe",
        header: parseVxlanGpeHeader(bytes.subarray(0, VXLAN_GPE_HEADER_LENGTH)),
        payload: bytes.slice(VXLAN_GPE_HEADER_LENGTH),
      };
  }
}

/** Emits one packet. Throws `TypeError`/`RangeError` for values that cannot be encoded. */
export function emitPacket(p: Packet): Uint8Array {
  if (p.type === "lisp-data") {
    const out = new Uint8Array(LISP_DATA_HEADER_LENGTH + p.payload.length);
    emitLispDataHeader(p.header, out, 0);
    out.set(p.payload, LISP_DATA_HEADER_LENGTH);
    return out;
  }
  if (p.type === "vxlan-gpe") {
    const out = new Uint8Array(VXLAN_GPE_HEADER_LENGTH + p.payload.length);
    emitVxlanGpeHeader(p.header, out, 0);
    out.set(p.payload, VXLAN_GPE_HEADER_LENGTH);
    return out;
  }
  return emitControlMessage(p);
}

/**
 * The JSON form of a packet or any codec record. An ECM whose payload
 * parses as a control message shows it as `message` instead of `payload`.
 */
export function toJson(value: unknown): Json {
  return convertOut(value, "");
}

function convertOut(v: unknown, key: string): Json {
  if (typeof v === "bigint") {
    return `0x${v.toString(16).padStart(BIGINT_DIGITS[key] ?? 0, "0")}`;
  }
  if (v instanceof Uint8Array) return toHex(v);
  if (v === null || typeof v !== "object") {
    if (v === undefined) return null;
    return v as Json;
  }
  if (Array.isArray(v)) return v.map((x) => convertOut(x, ""));
  const o = v as Record<string, unknown>;
  if (o["type"] === "ecm" && typeof o["msg"] === "object" && o["msg"] !== null) {
    const msg = o["msg"] as Record<string, unknown>;
    const payload = msg["payload"];
    if (payload instanceof Uint8Array) {
      try {
        const message = parseControlMessage(payload);
        const { payload: _payload, checksumOk: _c, ...rest } = msg;
        return { type: "ecm", msg: convertOut({ ...rest, message }, "msg") };
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
      }
    }
  }
  const out: { [k: string]: Json } = {};
  for (const [k, x] of Object.entries(o)) {
    if (x === undefined) continue;
    out[k] = convertOut(x, k);
  }
  return out;
}

/**
 * Turns the JSON form back into codec records: `"0x…"` strings in bigint
 * fields become `bigint`, hex strings in byte fields become `Uint8Array`,
 * and an ECM's `message` is emitted into its payload. Throws
 * `TypeError` naming the path of a value that does not convert.
 */
export function fromJson(json: Json): Packet {
  return convertIn(json, "", "$") as Packet;
}

function convertIn(v: Json, key: string, path: string): unknown {
  if (typeof v === "string") {
    if (BIGINT_FIELDS.has(key)) {
      if (!/^0x[0-9a-fA-F]+$/.test(v) && !/^[0-9]+$/.test(v)) {
        throw new TypeError(`${path}: expected a 0x-prefixed hex or decimal integer`);
      }
      return BigInt(v);
    }
    if (BYTES_FIELDS.has(key)) {
      try {
        return fromHex(v);
      } catch (e) {
        throw new TypeError(`${path}: ${(e as Error).message}`);
      }
    }
    return v;
  }
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x, i) => convertIn(x, "", `${path}[${i}]`));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null) continue;
    out[k] = convertIn(x, k, `${path}.${k}`);
  }
  if (v["type"] === "ecm" && typeof out["msg"] === "object" && out["msg"] !== null) {
    const msg = out["msg"] as Record<string, unknown>;
    if (msg["message"] !== undefined) {
      const { message, ...rest } = msg;
      out["msg"] = { ...rest, payload: emitControlMessage(message as ControlMessage) };
    }
  }
  return out;
}
