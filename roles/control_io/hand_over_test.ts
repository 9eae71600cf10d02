import assert from "node:assert/strict";
import type { Peer } from "../../core/control.ts";
import {
  BACKLOG_FULL,
  HAND_OVER_HEADER,
  HandOverReader,
  HandOverStage,
  type Received,
  STAGED,
  TOO_LARGE,
} from "./hand_over.ts";

interface Seen {
  kind: number;
  from: Peer;
  data: number[];
  extra: number[] | undefined;
  seq: number;
}

function readAll(reader: HandOverReader, buf: ArrayBuffer, first: number): Seen[] {
  const out: Seen[] = [];
  reader.read(buf, first, (kind, from, data, extra, seq) => {
    out.push({ kind, from, data: [...data], extra: extra && [...extra], seq });
  });
  return out;
}

/** The datagram `b[start, end)` from `fam`, `src4` or `b[src6]`, and `port`. */
function at(
  bytes: Uint8Array,
  start: number,
  end: number,
  fam: number,
  src4: number,
  src6: number,
  port: number,
): Received {
  return { bytes, start, end, fam, src4, src6, port };
}

function acks(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * 4));
}

/** A receive buffer with an IPv6 source address at 0 and a datagram at 16. */
function datagram(bytes: number[]): Uint8Array {
  const b = new Uint8Array(16 + bytes.length);
  b.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42], 0);
  b.set(bytes, 16);
  return b;
}

Deno.test("HandOverStage and HandOverReader: IPv4 and IPv6 sources, extra bytes, sequence numbers round trip", () => {
  const stage = new HandOverStage(acks(), 1, () => assert.fail("not full"), 4096);
  const b = datagram([1, 2, 3, 4, 5]);
  const extra = new Uint8Array([9, 8, 7, 6, 5, 4, 3]);
  assert.equal(stage.first, 1);
  // 10.1.2.3:4342, the datagram's 5 bytes, no extra.
  assert.equal(stage.stage(2, at(b, 16, 21, 4, 0x0a010203, -1, 4342)), STAGED);
  // [2001:db8::42]:1234, 3 bytes, 2 extra bytes of 7.
  assert.equal(stage.stage(3, at(b, 16, 19, 6, 0, 0, 1234), extra, 2), STAGED);
  // 10.1.2.3:4342 again, empty datagram, 7 extra bytes.
  assert.equal(stage.stage(4, at(b, 16, 16, 4, 0x0a010203, -1, 4342), extra, 7), STAGED);
  assert.equal(stage.seq, 3);
  assert.equal(stage.first, 1);
  // Each entry padded to 4 bytes: 28 + 5 -> 36, 28 + 3 + 2 -> 36, 28 + 0 + 7 -> 36.
  assert.equal(stage.length, 3 * 36);
  const buf = stage.take()!;
  assert.equal(buf.byteLength, 3 * 36);
  assert.equal(stage.length, 0);
  assert.equal(stage.first, 4);
  assert.equal(stage.take(), undefined);
  const v = new DataView(buf);
  assert.deepEqual([v.getUint8(0), v.getUint8(1), v.getUint16(2), v.getUint32(4), v.getUint32(8)], [
    2,
    4,
    4342,
    5,
    0,
  ]);
  assert.equal(v.getUint32(12), 0x0a010203);

  const reader = new HandOverReader((e) => assert.fail(String(e)));
  const seen = readAll(reader, buf, stage.first - 3);
  assert.deepEqual(seen, [
    {
      kind: 2,
      from: { address: "10.1.2.3", port: 4342 },
      data: [1, 2, 3, 4, 5],
      extra: undefined,
      seq: 1,
    },
    {
      kind: 3,
      from: { address: "2001:db8::42", port: 1234 },
      data: [1, 2, 3],
      extra: [9, 8],
      seq: 2,
    },
    {
      kind: 4,
      from: { address: "10.1.2.3", port: 4342 },
      data: [],
      extra: [9, 8, 7, 6, 5, 4, 3],
      seq: 3,
    },
  ]);
  // One Peer object per IPv4 source.
  assert.equal(seen[0]!.from, seen[2]!.from);
  assert.equal(reader.peer4(0x0a010203, 4342), seen[0]!.from);
  assert.notEqual(reader.peer4(0x0a010203, 4343), seen[0]!.from);
});

Deno.test("HandOverStage: an entry that does not fit behind the staged ones calls full, which takes them", () => {
  const posted: { buf: ArrayBuffer; first: number; seq: number }[] = [];
  const stage: HandOverStage = new HandOverStage(acks(), 0, () => {
    const first = stage.first;
    posted.push({ buf: stage.take()!, first, seq: stage.seq });
  }, 128);
  const b = datagram(Array.from({ length: 60 }, (_, i) => i));
  // 28 + 30 -> 60 bytes an entry: two fit in 128, the third does not.
  for (let k = 0; k < 5; k++) assert.equal(stage.stage(1, at(b, 16, 46, 4, k, -1, 1)), STAGED);
  assert.deepEqual(posted.map((p) => [p.buf.byteLength, p.first, p.seq]), [[120, 1, 2], [
    120,
    3,
    4,
  ]]);
  assert.equal(stage.first, 5);
  assert.equal(stage.length, 60);
  const reader = new HandOverReader((e) => assert.fail(String(e)));
  assert.deepEqual(
    readAll(reader, posted[1]!.buf, posted[1]!.first).map((s) => [s.seq, s.from.address]),
    [[3, "0.0.0.2"], [4, "0.0.0.3"]],
  );
  // Larger than the whole buffer: the staged one is posted, this one refused.
  assert.equal(stage.stage(1, at(b, 16, 16 + 101, 4, 0, -1, 1)), TOO_LARGE);
  assert.equal(posted.length, 3);
  assert.equal(stage.seq, 5);
  assert.equal(stage.length, 0);
});

Deno.test("HandOverStage refuses an entry once seq - acks[index] reaches the backlog, and takes more once acknowledged", () => {
  const a = acks();
  const stage = new HandOverStage(a, 2, () => {}, 4096, 3);
  const b = datagram([1]);
  for (let k = 0; k < 3; k++) assert.equal(stage.stage(1, at(b, 16, 17, 4, 1, -1, 1)), STAGED);
  assert.equal(stage.stage(1, at(b, 16, 17, 4, 1, -1, 1)), BACKLOG_FULL);
  assert.equal(stage.seq, 3);
  // Another Worker's acknowledgement does not count.
  Atomics.store(a, 1, 3);
  assert.equal(stage.stage(1, at(b, 16, 17, 4, 1, -1, 1)), BACKLOG_FULL);
  Atomics.store(a, 2, 1);
  assert.equal(stage.acked, 1);
  assert.equal(stage.stage(1, at(b, 16, 17, 4, 1, -1, 1)), STAGED);
  assert.equal(stage.stage(1, at(b, 16, 17, 4, 1, -1, 1)), BACKLOG_FULL);
  assert.equal(stage.seq, 4);
  assert.equal(stage.take()!.byteLength, 4 * 32);
});

Deno.test("HandOverReader: an entry whose visit throws is reported, and the walk goes on", () => {
  const stage = new HandOverStage(acks(), 0, () => {}, 4096);
  const b = datagram([1, 2]);
  for (let k = 0; k < 3; k++) stage.stage(k, at(b, 16, 18, 4, 1, -1, 1));
  const failed: unknown[] = [];
  const reader = new HandOverReader((e) => failed.push(e));
  const kinds: number[] = [];
  reader.read(stage.take()!, 1, (kind) => {
    if (kind === 1) throw new Error("no");
    kinds.push(kind);
  });
  assert.deepEqual(kinds, [0, 2]);
  assert.equal(failed.length, 1);
  assert.equal(HAND_OVER_HEADER, 28);
});
