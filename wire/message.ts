/**
 * The LISP control message dispatcher: the message type in the top four
 * bits of the first byte (RFC 9301 §5.1, IANA "LISP Packet Types") picks
 * the codec.
 *
 * | Type | Message                         | Codec            | Source                      |
 * | ---- | ------------------------------- | ---------------- | --------------------------- |
 * | 1    | Map-Request                     | map_request.ts   | RFC 9301 §5.2               |
 * | 2    | Map-Reply                       | map_reply.ts     | RFC 9301 §5.4               |
 * | 3    | Map-Register                    | map_register.ts  | RFC 9301 §5.6               |
 * | 4    | Map-Notify                      | map_notify.ts    | RFC 9301 §5.7               |
 * | 5    | Map-Notify-Ack                  | map_notify.ts    | RFC 9301 §5.7               |
 * | 6    | Map-Referral                    | map_referral.ts  | RFC 8111 §6.4               |
 * | 7    | Info-Request / Info-Reply       | info.ts          | NAT traversal draft         |
 * | 8    | Encapsulated Control Message    | ecm.ts           | RFC 9301 §5.8               |
 * | 15   | LISP Shared Extension Message   | (not modelled)   | RFC 9301 §5.1, RFC 8113     |
 *
 * {@link ControlMessage} is a discriminated union on `type`, one name per
 * message as Wireshark shows it; Map-Notify and Map-Notify-Ack share the
 * {@link MapNotify} record (its `ack` flag must agree with `type`), and
 * Info-Request and Info-Reply are the two halves of {@link Info}.
 * An ECM is not opened: its `payload` is the inner message's bytes, for
 * another call to {@link parseControlMessage}.
 *
 * Any type without a codec here (0, 9..15) is a `WireError` with field
 * "message.type".
 *
 * @module
 */

import { WireError } from "./errors.ts";
import { type Ecm, ecmLength, emitEcm, parseEcm } from "./ecm.ts";
import { emitInfo, infoLength, type InfoReply, type InfoRequest, parseInfo } from "./info.ts";
import { emitMapNotify, type MapNotify, mapNotifyLength, parseMapNotify } from "./map_notify.ts";
import {
  emitMapReferral,
  type MapReferral,
  mapReferralLength,
  parseMapReferral,
} from "./map_referral.ts";
import {
  emitMapRegister,
  type MapRegister,
  mapRegisterLength,
  parseMapRegister,
} from "./map_register.ts";
import { emitMapReply, type MapReply, mapReplyLength, parseMapReply } from "./map_reply.ts";
import {
  emitMapRequest,
  type MapRequest,
  mapRequestLength,
  parseMapRequest,
} from "./map_request.ts";

/** LISP control message types (RFC 9301 §5.1 and IANA "LISP Packet Types"). */
export const LISP_TYPE = {
  /** Map-Request (RFC 9301 §5.2). */
  MAP_REQUEST: 1,
  /** Map-Reply (RFC 9301 §5.4). */
  MAP_REPLY: 2,
  /** Map-Register (RFC 9301 §5.6). */
  MAP_REGISTER: 3,
  /** Map-Notify (RFC 9301 §5.7). */
  MAP_NOTIFY: 4,
  /** Map-Notify-Ack (RFC 9301 §5.7). */
  MAP_NOTIFY_ACK: 5,
  /** Map-Referral (RFC 8111 §6.4). */
  MAP_REFERRAL: 6,
  /** Info-Request and Info-Reply (draft-ermagan-lisp-nat-traversal; R bit for the reply). */
  INFO: 7,
  /** Encapsulated Control Message (RFC 9301 §5.8). */
  ECM: 8,
  /** LISP Shared Extension Message (RFC 9301 §5.1, RFC 8113); not modelled here. */
  SHARED_EXTENSION: 15,
} as const;

/** Any LISP control message this module can parse and emit, tagged by `type`. */
export type ControlMessage =
  | { readonly type: "map-request"; readonly msg: MapRequest }
  | { readonly type: "map-reply"; readonly msg: MapReply }
  | { readonly type: "map-register"; readonly msg: MapRegister }
  | { readonly type: "map-notify"; readonly msg: MapNotify }
  | { readonly type: "map-notify-ack"; readonly msg: MapNotify }
  | { readonly type: "map-referral"; readonly msg: MapReferral }
  | { readonly type: "info-request"; readonly msg: InfoRequest }
  | { readonly type: "info-reply"; readonly msg: InfoReply }
  | { readonly type: "ecm"; readonly msg: Ecm };

/** The `type` names of {@link ControlMessage}. */
export type ControlMessageType = ControlMessage["type"];

/**
 * The LISP message type of a control message: the top four bits of its
 * first byte (a number 0..15, see {@link LISP_TYPE}). `WireError` with
 * field "message.type" for an empty buffer.
 */
export function messageType(bytes: Uint8Array): number {
  if (bytes.length === 0) throw new WireError("message.type", 0, "empty message");
  return bytes[0]! >>> 4;
}

/**
 * Parses any LISP control message; `bytes` must hold exactly one message.
 * `WireError` "message.type" for an empty buffer or a type without a
 * codec; otherwise whatever the message's own parser throws.
 */
export function parseControlMessage(bytes: Uint8Array): ControlMessage {
  const t = messageType(bytes);
  switch (t) {
    case LISP_TYPE.MAP_REQUEST:
      return { type: "map-request", msg: parseMapRequest(bytes) };
    case LISP_TYPE.MAP_REPLY:
      return { type: "map-reply", msg: parseMapReply(bytes) };
    case LISP_TYPE.MAP_REGISTER:
      return { type: "map-register", msg: parseMapRegister(bytes) };
    case LISP_TYPE.MAP_NOTIFY:
      return { type: "map-notify", msg: parseMapNotify(bytes) };
    case LISP_TYPE.MAP_NOTIFY_ACK:
      return { type: "map-notify-ack", msg: parseMapNotify(bytes) };
    case LISP_TYPE.MAP_REFERRAL:
      return { type: "map-referral", msg: parseMapReferral(bytes) };
    case LISP_TYPE.INFO: {
      const msg = parseInfo(bytes);
      return msg.reply ? { type: "info-reply", msg } : { type: "info-request", msg };
    }
    case LISP_TYPE.ECM:
      return { type: "ecm", msg: parseEcm(bytes) };
    default:
      throw new WireError("message.type", 0, `unknown LISP message type ${t}`);
  }
}

/** Encoded length of a control message. */
export function controlMessageLength(m: ControlMessage): number {
  switch (m.type) {
    case "map-request":
      return mapRequestLength(m.msg);
    case "map-reply":
      return mapReplyLength(m.msg);
    case "map-register":
      return mapRegisterLength(m.msg);
    case "map-notify":
    case "map-notify-ack":
      return mapNotifyLength(m.msg);
    case "map-referral":
      return mapReferralLength(m.msg);
    case "info-request":
    case "info-reply":
      return infoLength(m.msg);
    case "ecm":
      return ecmLength(m.msg);
    default:
      throw new TypeError(`unknown control message type ${(m as { type: unknown }).type}`);
  }
}

/**
 * Emits a control message into a new buffer or into `into` at `offset`.
 * `TypeError` when `type` disagrees with the record (a Map-Notify whose
 * `ack` is set, an Info-Request whose `reply` is set, and so on) or is
 * unknown; otherwise whatever the message's own emitter throws.
 */
export function emitControlMessage(
  m: ControlMessage,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  switch (m.type) {
    case "map-request":
      return emitMapRequest(m.msg, into, offset);
    case "map-reply":
      return emitMapReply(m.msg, into, offset);
    case "map-register":
      return emitMapRegister(m.msg, into, offset);
    case "map-notify":
    case "map-notify-ack":
      if (m.msg.ack !== (m.type === "map-notify-ack")) {
        throw new TypeError(`a ${m.type} needs msg.ack ${!m.msg.ack}`);
      }
      return emitMapNotify(m.msg, into, offset);
    case "map-referral":
      return emitMapReferral(m.msg, into, offset);
    case "info-request":
    case "info-reply":
      if (m.msg.reply !== (m.type === "info-reply")) {
        throw new TypeError(`an ${m.type} needs msg.reply ${!m.msg.reply}`);
      }
      return emitInfo(m.msg, into, offset);
    case "ecm":
      return emitEcm(m.msg, into, offset);
    default:
      throw new TypeError(`unknown control message type ${(m as { type: unknown }).type}`);
  }
}
