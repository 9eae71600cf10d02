/**
 * oor as a library: the LISP wire codec, usable on its own (it has no Deno
 * dependencies and runs in a browser), plus the configuration loader.
 *
 * Every message has a readonly record type and `parseX(bytes)`,
 * `emitX(x, into?, offset?)` and `xLength(x)`. Malformed input throws
 * {@link WireError}.
 *
 * @example
 * ```ts
 * import { parseControlMessage } from "./mod.ts";
 * const m = parseControlMessage(bytes);
 * if (m.type === "map-register") console.log(m.msg.records.length);
 * ```
 *
 * @module
 */

export * from "./wire/errors.ts";
export * from "./wire/ip_text.ts";
export * from "./wire/address.ts";
export * from "./wire/locator.ts";
export * from "./wire/eid_record.ts";
export * from "./wire/map_request.ts";
export * from "./wire/map_reply.ts";
export * from "./wire/map_register.ts";
export * from "./wire/map_notify.ts";
export * from "./wire/map_referral.ts";
export * from "./wire/info.ts";
export * from "./wire/ecm.ts";
export * from "./wire/message.ts";
export * from "./wire/auth.ts";
export * from "./wire/data_header.ts";
export * from "./wire/vxlan_gpe.ts";
export * from "./wire/ip.ts";
export * from "./wire/udp.ts";
export * from "./wire/json.ts";
export { Reader, Writer } from "./wire/cursor.ts";
export { VERSION } from "./version.ts";
export { loadConfig, parseConfig } from "./config/mod.ts";
export type * from "./config/mod.ts";
