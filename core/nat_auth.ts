/**
 * NAT traversal pieces shared by the map-server (`ms.ts`) and the tunnel
 * routers (roles/tunnel_router/): the MS-RTR authentication of a Map-Notify
 * that an RTR relays, and the control messages carried on the data port.
 *
 * MS-RTR authentication (the R bit of a Map-Notify, draft-ermagan/ietf
 * lisp-nat-traversal; the fields are in `wire/map_notify.ts`): the
 * map-server first signs the Map-Notify as it would send it to the xTR
 * (R bit clear, no MS-RTR fields) with the site key; the same message
 * with the R bit, that authentication data kept, and the MS-RTR Key ID,
 * length and data appended is then signed again with the key shared with
 * the RTR (`[[ms-rtr-node]]` / `[[rtr-ms-node]]`): the HMAC of the whole
 * message with the MS-RTR authentication data zeroed. The RTR checks the
 * MS-RTR part and strips it ({@link withoutMsRtr}); what is left is, byte
 * for byte, what the map-server signed for the xTR, so the xTR checks it
 * with its own key unchanged.
 *
 * @module
 */

import { constantTimeEqual, type HmacKey } from "../wire/auth.ts";
import { emitMapNotify, emitSignedMapNotify, type MapNotify } from "../wire/map_notify.ts";

/** How long a NATed xTR's entry lives on an RTR after its last Map-Notify (3 min + 30 s, as OOR). */
export const RTR_NAT_ENTRY_MS = 210_000;

/**
 * Emits `m` (R bit and MS-RTR fields ignored) signed with `siteKey` and
 * then, with the R bit, signed for the RTR with `rtrKey` (see the module
 * notes).
 */
export function emitMsRtrMapNotify(m: MapNotify, siteKey: HmacKey, rtrKey: HmacKey): Uint8Array {
  const plain: MapNotify = stripRtr(m);
  const signed = emitSignedMapNotify(plain, siteKey);
  const authLength = (signed[14]! << 8) | signed[15]!;
  const withR: MapNotify = {
    ...plain,
    authData: signed.slice(16, 16 + authLength),
    rtrAuthPresent: true,
    rtrKeyId: rtrKey.keyId,
    rtrAuthData: new Uint8Array(rtrKey.digestLength),
  };
  const bytes = emitMapNotify(withR);
  bytes.set(rtrKey.mac(bytes), bytes.length - rtrKey.digestLength);
  return bytes;
}

/** Whether the MS-RTR authentication of Map-Notify `bytes` (parsed: `m`) is right under `rtrKey`. */
export function msRtrAuthOk(bytes: Uint8Array, m: MapNotify, rtrKey: HmacKey): boolean {
  const data = m.rtrAuthData;
  if (!m.rtrAuthPresent || data === undefined || m.rtrKeyId !== rtrKey.keyId) return false;
  if (data.length !== rtrKey.digestLength || data.length > bytes.length) return false;
  const copy = bytes.slice();
  copy.fill(0, copy.length - data.length);
  return constantTimeEqual(rtrKey.mac(copy), data);
}

/** The Map-Notify without its MS-RTR part, as the xTR gets it (its own authentication kept). */
export function withoutMsRtr(m: MapNotify): Uint8Array {
  return emitMapNotify(stripRtr(m));
}

function stripRtr(m: MapNotify): MapNotify {
  const { rtrKeyId: _k, rtrAuthData: _d, ...rest } = m;
  return { ...rest, rtrAuthPresent: false };
}
