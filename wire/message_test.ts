import assert from "node:assert/strict";
import { WireError } from "./errors.ts";
import { parseMapRequest } from "./map_request.ts";
import { parseMapReply } from "./map_reply.ts";
import { parseMapRegister } from "./map_register.ts";
import { parseMapNotify } from "./map_notify.ts";
import { parseMapReferral } from "./map_referral.ts";
import { parseInfo } from "./info.ts";
import { parseEcm } from "./ecm.ts";
import {
  type ControlMessage,
  controlMessageLength,
  emitControlMessage,
  LISP_TYPE,
  messageType,
  parseControlMessage,
} from "./message.ts";
import { hex } from "../tests/hex.ts";

// --- Fixtures: one hand-written message of each type -------------------------

const NONCE = "01 02 03 04 05 06 07 08";
const AUTH20 = "00 01 00 14" + " 00".repeat(20); // Key ID 1, length 20, zeroed data
const RECORD = `
  00 00 05 a0               # Record TTL = 1440
  01 18 10 00               # Locator Count=1, EID mask-len=24, ACT=0, A=1
  00 00 00 01 0a 00 01 00   # Map-Version 0, EID-AFI=1, 10.0.1.0
  01 64 ff 00 00 05         # Priority 1, Weight 100, M Priority 255, M Weight 0, L=1, R=1
  00 01 c0 00 02 01         # Loc-AFI=1, 192.0.2.1
`;
const MAP_REQUEST = `
  10 00 00 01 ${NONCE}      # Type=1, IRC=0, Record Count=1, Nonce
  00 01 0a 00 00 01         # Source-EID-AFI=1, 10.0.0.1
  00 01 c0 00 02 01         # ITR-RLOC-AFI=1, 192.0.2.1
  00 20 00 01 0a 00 00 02   # Reserved, EID mask-len=32, AFI=1, 10.0.0.2
`;

const FIXTURES: [ControlMessage["type"], number, string, (b: Uint8Array) => unknown][] = [
  ["map-request", 1, MAP_REQUEST, parseMapRequest],
  ["map-reply", 2, `20 00 00 01 ${NONCE} ${RECORD}`, parseMapReply],
  ["map-register", 3, `30 00 01 01 ${NONCE} ${AUTH20} ${RECORD}  # M=1`, parseMapRegister],
  ["map-notify", 4, `40 00 00 01 ${NONCE} ${AUTH20} ${RECORD}`, parseMapNotify],
  ["map-notify-ack", 5, `50 00 00 01 ${NONCE} ${AUTH20} ${RECORD}`, parseMapNotify],
  [
    "map-referral",
    6,
    `60 00 00 01 ${NONCE}
     00 00 00 0f 00 10 90 00 00 00 00 01 0a 02 00 00  # DELEGATION-HOLE 10.2.0.0/16, no refs`,
    parseMapReferral,
  ],
  [
    "info-request",
    7,
    `70 00 00 00 ${NONCE} 00 00 00 00   # R=0, Key ID 0, no auth data
     00 00 00 00 00 18 00 01 c0 a8 01 00 00 00  # TTL 0, mask 24, 192.168.1.0, AFI 0`,
    parseInfo,
  ],
  [
    "info-reply",
    7,
    `78 00 00 00 ${NONCE} 00 00 00 00   # R=1, Key ID 0, no auth data
     00 00 05 a0 00 18 00 01 c0 a8 01 00  # TTL 1440, mask 24, 192.168.1.0
     40 03 00 00 07 00 00 16  # NAT-Traversal LCAF, length 22
     10 f6 c3 50  # MS port 4342, ETR port 50000
     00 01 cb 00 71 05  00 01 c6 33 64 01  00 01 0a 00 00 02  # global ETR, MS, private ETR`,
    parseInfo,
  ],
  [
    "ecm",
    8,
    `88 00 00 00                  # Type=8, S=1
     45 00 00 3c 00 00 40 00 40 11 6e ae c0 00 02 01 0a 00 00 02  # IPv4 192.0.2.1 -> 10.0.0.2
     ee 48 10 f6 00 28 3e 1f      # UDP 61000 -> 4342, length 40
     ${MAP_REQUEST}`,
    parseEcm,
  ],
];

for (const [type, n, h, parse] of FIXTURES) {
  Deno.test(`parseControlMessage() dispatches type ${n} to the ${type} codec`, () => {
    const bytes = hex(h);
    assert.equal(messageType(bytes), n);
    const m = parseControlMessage(bytes);
    assert.equal(m.type, type);
    assert.deepEqual(m.msg, parse(bytes));
  });
  Deno.test(`emitControlMessage() writes the ${type} back to the same bytes`, () => {
    const bytes = hex(h);
    const m = parseControlMessage(bytes);
    assert.equal(controlMessageLength(m), bytes.length);
    assert.deepEqual(emitControlMessage(m), bytes);
    const buf = new Uint8Array(bytes.length + 4).fill(0xa5);
    assert.deepEqual(emitControlMessage(m, buf, 1), bytes);
    assert.equal(buf[0], 0xa5);
    assert.deepEqual(buf.subarray(1 + bytes.length), hex("a5a5a5"));
  });
}

Deno.test("LISP_TYPE numbers the messages as RFC 9301 §5.1 and IANA do", () => {
  assert.deepEqual(LISP_TYPE, {
    MAP_REQUEST: 1,
    MAP_REPLY: 2,
    MAP_REGISTER: 3,
    MAP_NOTIFY: 4,
    MAP_NOTIFY_ACK: 5,
    MAP_REFERRAL: 6,
    INFO: 7,
    ECM: 8,
    SHARED_EXTENSION: 15,
  });
});

Deno.test("messageType() reads the top four bits and rejects an empty buffer", () => {
  assert.equal(messageType(hex("ff")), 15);
  assert.equal(messageType(hex("0f")), 0);
  assert.throws(() => messageType(new Uint8Array(0)), (e: unknown) => {
    assert.ok(e instanceof WireError);
    assert.equal(e.field, "message.type");
    return true;
  });
});

Deno.test("parseControlMessage() rejects an empty buffer and every type without a codec", () => {
  const bad: Uint8Array[] = [new Uint8Array(0)];
  for (const t of [0, 9, 10, 11, 12, 13, 14, 15]) {
    bad.push(hex(`${t.toString(16)}0 00 00 00 ${NONCE}`));
  }
  for (const b of bad) {
    assert.throws(() => parseControlMessage(b), (e: unknown) => {
      assert.ok(e instanceof WireError, String(e));
      assert.equal(e.field, "message.type");
      assert.equal(e.offset, 0);
      return true;
    });
  }
});

Deno.test("parseControlMessage() passes the message codec's WireError through", () => {
  const cases: [string, string][] = [
    ["10 00 00 01", "map-request"],
    ["60 00 00 05 " + NONCE, "map-referral.record-count"],
    ["70 00 00 00", "info.header"],
    ["88 00 00 00 99", "ecm.ip.version"],
  ];
  for (const [h, prefix] of cases) {
    assert.throws(() => parseControlMessage(hex(h)), (e: unknown) => {
      assert.ok(e instanceof WireError, String(e));
      assert.ok(e.field.startsWith(prefix), `${e.field} should start with ${prefix}`);
      return true;
    });
  }
});

Deno.test("parseControlMessage() rejects every truncation of every fixture with a WireError", () => {
  for (const [type, , h] of FIXTURES) {
    const full = hex(h);
    for (let n = 0; n < full.length; n++) {
      assert.throws(() => parseControlMessage(full.subarray(0, n)), WireError, `${type} ${n}`);
    }
  }
});

Deno.test("emitControlMessage() refuses a type that disagrees with the record", () => {
  const notify = parseControlMessage(hex(FIXTURES[3]![2]));
  const ack = parseControlMessage(hex(FIXTURES[4]![2]));
  const req = parseControlMessage(hex(FIXTURES[6]![2]));
  const rep = parseControlMessage(hex(FIXTURES[7]![2]));
  const mismatched = [
    { type: "map-notify-ack", msg: notify.msg },
    { type: "map-notify", msg: ack.msg },
    { type: "info-reply", msg: req.msg },
    { type: "info-request", msg: rep.msg },
    { type: "map-whatever", msg: notify.msg },
  ] as unknown as ControlMessage[];
  for (const m of mismatched) {
    assert.throws(() => emitControlMessage(m), TypeError, m.type);
  }
  assert.throws(() => controlMessageLength(mismatched[4]!), TypeError);
});
