/**
 * What the registration probe (roles/tunnel_router/registration_alarm.ts)
 * puts on the wire, one per warning: an empty UDP datagram to the
 * map-server's control port. tshark finds nothing malformed in it (no LISP
 * message to dissect, no warning) over IPv4 and IPv6.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertClean, dissect, LISP_CONTROL_PORT, tsharkMissing } from "./tshark.ts";
import { testNeeding } from "./prereq.ts";

const missing = await tsharkMissing();

testNeeding(missing, {
  name: "tshark: the registration probe's empty datagram to port 4342 is clean, IPv4 and IPv6",
  async fn() {
    const frames = [false, true].map((v6) => ({
      payload: new Uint8Array(0),
      srcPort: 40000,
      dstPort: LISP_CONTROL_PORT,
      v6,
    }));
    const out = await dissect(frames);
    assert.equal(out.length, 2);
    for (const f of out) assertClean(f);
  },
});
