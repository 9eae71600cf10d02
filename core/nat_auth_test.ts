/**
 * Unit tests of core/nat_auth.ts: the MS-RTR authentication of a Map-Notify
 * that an RTR relays to an xTR behind a NAT.
 */

import assert from "node:assert/strict";
import { ipAddress } from "../wire/address.ts";
import { authStatus, HmacKey } from "../wire/auth.ts";
import { ACTION } from "../wire/eid_record.ts";
import { emitSignedMapNotify, type MapNotify, parseMapNotify } from "../wire/map_notify.ts";
import { emitMsRtrMapNotify, msRtrAuthOk, withoutMsRtr } from "./nat_auth.ts";

const SITE = new HmacKey("sha256", "site-key");
const RTR = new HmacKey("sha1", "rtr-key");

const NOTIFY: MapNotify = {
  ack: false,
  xtrIdPresent: true,
  rtrAuthPresent: false,
  nonce: 0x0102030405060708n,
  keyId: SITE.keyId,
  authData: new Uint8Array(0),
  records: [{
    ttl: 1440,
    maskLen: 24,
    action: ACTION.NO_ACTION,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: ipAddress("10.1.0.0"),
    locators: [{
      priority: 1,
      weight: 100,
      mPriority: 255,
      mWeight: 0,
      local: false,
      probed: false,
      reachable: true,
      address: ipAddress("100.64.3.2"),
    }],
  }],
  xtrId: 0x00112233445566778899aabbccddeeffn,
  siteId: 7n,
};

Deno.test("emitMsRtrMapNotify() signs for the RTR and, once stripped, for the site", () => {
  const bytes = emitMsRtrMapNotify(NOTIFY, SITE, RTR);
  const m = parseMapNotify(bytes);
  assert.equal(m.rtrAuthPresent, true);
  assert.equal(m.rtrKeyId, RTR.keyId);
  assert.equal(m.rtrAuthData?.length, RTR.digestLength);
  assert.equal(msRtrAuthOk(bytes, m, RTR), true, "the RTR's check passes");
  // What the xTR gets is what the map-server would have sent it directly.
  const plain = withoutMsRtr(m);
  assert.deepEqual(plain, emitSignedMapNotify(NOTIFY, SITE));
  assert.equal(authStatus(plain, SITE), "ok", "the site's own check passes");
  assert.equal(parseMapNotify(plain).rtrAuthPresent, false);
});

Deno.test("msRtrAuthOk() refuses another key, a changed byte and a missing MS-RTR part", () => {
  const bytes = emitMsRtrMapNotify(NOTIFY, SITE, RTR);
  const m = parseMapNotify(bytes);
  assert.equal(msRtrAuthOk(bytes, m, new HmacKey("sha1", "other-key")), false);
  assert.equal(msRtrAuthOk(bytes, m, new HmacKey("sha256", "rtr-key")), false, "key id differs");
  for (const at of [4, 20, bytes.length - RTR.digestLength - 5, bytes.length - 1]) {
    const changed = bytes.slice();
    changed[at]! ^= 0x01;
    assert.equal(msRtrAuthOk(changed, parseMapNotify(changed), RTR), false, `byte ${at} changed`);
  }
  const plain = emitSignedMapNotify(NOTIFY, SITE);
  assert.equal(msRtrAuthOk(plain, parseMapNotify(plain), RTR), false, "no R bit");
});
