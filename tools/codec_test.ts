import assert from "node:assert/strict";
import { runDecode, runEncode, splitJsonValues } from "./codec.ts";
import { writePcap } from "./pcap.ts";
import { udpFrame } from "../tests/pcap_frames.ts";
import { fromHex, toHex } from "../wire/json.ts";

/** Captures what a codec command prints. */
function capture(stdin = "", files: Record<string, Uint8Array> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: (t: string) => void out.push(t),
      stderr: (t: string) => void err.push(t),
      readStdin: () => Promise.resolve(new TextEncoder().encode(stdin)),
      readFile: (p: string) => {
        const f = files[p];
        return f ? Promise.resolve(f) : Promise.reject(new Error("no such file"));
      },
    },
  };
}

// A Map-Request written by hand from RFC 9301 §5.2:
const MAP_REQUEST = [
  "10000001", // type 1, no flags, IRC 0, 1 record
  "0102030405060708", // nonce
  "0001 c0000201", // source EID AFI 1, 192.0.2.1
  "0001 c0000202", // ITR-RLOC AFI 1, 192.0.2.2
  "00 18 0001 0a010100", // record: reserved, mask-len 24, AFI 1, 10.1.1.0
].join("").replace(/\s/g, "");

// A Map-Register (RFC 9301 §5.6): M bit, key id 1 with 20 auth bytes, one
// record with one locator.
const MAP_REGISTER = [
  "30000101", // type 3, M bit, 1 record
  "1111111111111111", // nonce
  "0001 0014", // key id 1, auth length 20
  "00".repeat(20), // auth data
  "0000000a", // TTL 10 minutes
  "01 18 0000", // 1 locator, mask-len 24, ACT 0
  "0000 0001 0a010100", // map-version 0, AFI 1, 10.1.1.0
  "01 64 ff 00 0005 0001 c0000201", // priority 1, weight 100, L|R, AFI 1, 192.0.2.1
].join("").replace(/\s/g, "");

// LISP data header (RFC 9300 §5.3): N and I bits, nonce 0xabcdef, iid 7,
// then an inner payload.
const LISP_DATA = "88abcdef00000700" + "45000014";

Deno.test("decode then encode gives the same hex back for control and data packets", async () => {
  for (
    const [hex, as] of [[MAP_REQUEST, "control"], [MAP_REGISTER, "control"], [
      LISP_DATA,
      "lisp-data",
    ]] as const
  ) {
    const d = capture();
    assert.equal(await runDecode({ inputs: [hex], as }, d.io), 0, d.err.join(""));
    const e = capture(d.out.join(""));
    assert.equal(await runEncode([], e.io), 0, e.err.join(""));
    assert.equal(e.out.join(""), `${hex}\n`);
  }
});

Deno.test("decode then encode is the identity for ECMs as OOR 1.3.0 sends them", async () => {
  // OOR's ECM'd Map-Register through an RTR (R bit at byte 1), as captured
  // in the interop run: inner IPv4 with an identification and TTL 255.
  const oor = "804000004500008000024000ff11f17dc0a801026440640210f610f6006c3d023b0001019fdf3e6f" +
    "453fde9e000100143224aac392d853962a597178a05bbca9908c1a570000000a021810000000000" +
    "10a0300000164ff0000010001644003020164ff0000040001c0a80102c065533f527c2567e03a84f" +
    "b9bc79e7b0000000000000000";
  // The same ECM with DF clear (header checksum fixed) and no UDP checksum.
  const b = fromHex(oor);
  b[10] = 0x00;
  b[14] = 0;
  b[15] = 0;
  let sum = 0;
  for (let i = 4; i < 24; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  b[14] = (~sum >>> 8) & 0xff;
  b[15] = ~sum & 0xff;
  b[30] = 0;
  b[31] = 0;
  for (const hex of [oor, toHex(b)]) {
    const d = capture();
    assert.equal(await runDecode({ inputs: [hex], as: "control" }, d.io), 0, d.err.join(""));
    const e = capture(d.out.join(""));
    assert.equal(await runEncode([], e.io), 0, e.err.join(""));
    assert.equal(e.out.join(""), `${hex}\n`);
  }
});

Deno.test("decode prints the fields an operator looks for", async () => {
  const d = capture();
  assert.equal(await runDecode({ inputs: [MAP_REGISTER] }, d.io), 0);
  const json = JSON.parse(d.out.join(""));
  assert.equal(json.type, "map-register");
  assert.equal(json.msg.nonce, "0x1111111111111111");
  assert.equal(json.msg.keyId, 1);
  assert.equal(json.msg.authData, "00".repeat(20));
  assert.equal(json.msg.wantMapNotify, true);
  assert.deepEqual(json.msg.records[0].eid, { kind: "ipv4", ip: "10.1.1.0" });
  assert.equal(json.msg.records[0].locators[0].address.ip, "192.0.2.1");
});

Deno.test("decode shows an ECM's inner message and encode rebuilds the ECM", async () => {
  // ECM (RFC 9301 §5.8) with the S bit, inner IPv4/UDP carrying MAP_REQUEST.
  const inner = fromHex(MAP_REQUEST);
  const { emitEcm } = await import("../wire/ecm.ts");
  const ecm = emitEcm({
    security: true,
    ddtOriginated: false,
    forRtr: false,
    rtrRelayed: false,
    inner: { src: "192.0.2.2", dst: "10.1.1.1", srcPort: 61000, dstPort: 4342, ttl: 64 },
    payload: inner,
  });
  const d = capture();
  assert.equal(await runDecode({ inputs: [toHex(ecm)] }, d.io), 0, d.err.join(""));
  const json = JSON.parse(d.out.join(""));
  assert.equal(json.msg.message.type, "map-request");
  assert.equal(json.msg.payload, undefined);
  const e = capture(d.out.join(""));
  assert.equal(await runEncode([], e.io), 0, e.err.join(""));
  assert.equal(e.out.join(""), `${toHex(ecm)}\n`);
});

Deno.test("decode reports a malformed message with its field and exits 1", async () => {
  const d = capture();
  assert.equal(await runDecode({ inputs: [MAP_REGISTER.slice(0, 60)] }, d.io), 1);
  assert.match(d.err.join(""), /malformed: map-register\.auth/);
});

Deno.test("decode rejects bad hex and an unknown --as with exit 2", async () => {
  const a = capture();
  assert.equal(await runDecode({ inputs: ["10zz"] }, a.io), 2);
  assert.match(a.err.join(""), /not hex/);
  const b = capture();
  assert.equal(await runDecode({ inputs: [MAP_REQUEST], as: "bogus" }, b.io), 2);
});

Deno.test("decode --pcap decodes the LISP datagrams of a capture and skips the rest", async () => {
  const frame = (port: number, hex: string, i: number) => ({
    ts: 1_700_000_000_000_000 + i,
    data: udpFrame({
      src: "192.0.2.1",
      dst: "192.0.2.2",
      srcPort: 40000,
      dstPort: port,
      payload: fromHex(hex),
    }),
  });
  const pcap = writePcap([
    frame(4342, MAP_REQUEST, 0),
    frame(53, "0000", 1),
    frame(4341, LISP_DATA, 2),
  ]);
  const d = capture("", { "x.pcap": pcap });
  assert.equal(await runDecode({ inputs: [], pcap: "x.pcap", compact: true }, d.io), 0);
  const lines = d.out.join("").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].frame, 1);
  assert.equal(lines[0].packet.type, "map-request");
  assert.equal(lines[1].frame, 3);
  assert.equal(lines[1].packet.type, "lisp-data");
  assert.equal(lines[1].packet.header.instanceId, 7);
  // The pcap form encodes back too.
  const e = capture(d.out.join(""));
  assert.equal(await runEncode([], e.io), 0);
  assert.deepEqual(e.out.join("").trim().split("\n"), [MAP_REQUEST, LISP_DATA]);
});

Deno.test("encode names the path of a value that does not convert", async () => {
  const e = capture();
  const bad = JSON.stringify({ type: "map-request", msg: { nonce: "xyz" } });
  assert.equal(await runEncode([bad], e.io), 2);
  assert.match(e.err.join(""), /\$\.msg\.nonce/);
});

Deno.test("splitJsonValues() reads arrays, concatenated objects and JSON lines", () => {
  assert.deepEqual(splitJsonValues('[{"a":1},{"b":"}"}]'), [{ a: 1 }, { b: "}" }]);
  assert.deepEqual(splitJsonValues('{"a":1}\n{"b":2}'), [{ a: 1 }, { b: 2 }]);
  assert.throws(() => splitJsonValues('{"a":1} x'), SyntaxError);
  assert.throws(() => splitJsonValues('{"a":1'), SyntaxError);
});
