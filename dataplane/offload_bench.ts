/**
 * What the offload paths cost per packet in JavaScript (issue 15, point 5):
 * the one's complement sum of 64 KiB (the 32-bit JS loop against the
 * WebAssembly SIMD one), cutting a 64 KiB TCP super-packet into 1448-byte
 * segments (copies, header fixes and a whole checksum each: segment.ts),
 * and merging those 45 segments back into one TUN write (checksums checked:
 * coalesce.ts), each over a plain and over a WebAssembly batch.
 *
 *   deno bench -A dataplane/offload_bench.ts
 *
 * Nothing here allocates per packet; the figures are what a core spends,
 * so 1 / (µs per 64 KiB) is the ceiling one Worker could carry.
 *
 * @module
 */

import { PacketBatch } from "../ffi/batch.ts";
import { ChecksumBuffer } from "../wire/checksum.ts";
import { Segmenter } from "./segment.ts";
import { Coalescer, TUN_MERGE_TCP, TUN_VNET } from "./coalesce.ts";
import { tcpSegment } from "../tests/inner_packets.ts";

const MSS = 1448;
const SUPER = tcpSegment({ v6: false, sport: 40000 }, { seq: 1, payload: 45 * MSS, id: 7 });

for (const wasm of [false, true]) {
  const tag = wasm ? "wasm" : "js";
  const b = new PacketBatch({ slots: 64, slotSize: 4096, headroom: 64, spill: 72_000, wasm });
  b.bytes.set(SUPER, b.spillOffset);
  const cb = new ChecksumBuffer(b.bytes, b.memory);
  const seg = new Segmenter(b);

  Deno.bench(`sum of 64 KiB (${tag})`, { group: "sum", baseline: !wasm }, () => {
    cb.sum(b.spillOffset + 1, b.spillOffset + 1 + 65_000);
  });

  Deno.bench(`split a 64 KiB TCP super-packet into 45 segments (${tag})`, {
    group: "split",
    baseline: !wasm,
  }, () => {
    seg.plan(b.spillOffset, SUPER.length, 1, MSS, 20);
    seg.split(b.spillOffset, MSS, 20, 0);
  });

  // The 45 segments, kept aside, copied back before each merge (the merge edits the first).
  seg.plan(b.spillOffset, SUPER.length, 1, MSS, 20);
  seg.split(b.spillOffset, MSS, 20, 0);
  const rx = new PacketBatch({ slots: 64, slotSize: 4096, headroom: 64, wasm });
  const lens: number[] = [];
  for (let j = 0; j < 45; j++) {
    rx.bytes.set(b.packet(j), rx.offset[j]!);
    lens.push(b.length[j]!);
  }
  const first = rx.bytes.slice(rx.offset[0]!, rx.offset[0]! + 52);
  const co = new Coalescer(rx, 64 * 128);
  co.setMode(0, TUN_VNET | TUN_MERGE_TCP);
  let writes = 0;
  const sink = () => void writes++;
  Deno.bench(`merge 45 TCP segments into one TUN write (${tag})`, {
    group: "merge",
    baseline: !wasm,
  }, () => {
    rx.bytes.set(first, rx.offset[0]!);
    co.begin();
    for (let j = 0; j < 45; j++) co.add(0, rx.offset[j]!, lens[j]!);
    co.flush(sink);
  });
}
