/**
 * Summarizes a V8 CPU profile (`deno run --cpu-prof`, a `.cpuprofile`
 * file): the functions with the most self time, with their share of the
 * samples, and the share of samples in the idle and GC nodes.
 *
 * ```
 * deno run -A scripts/cpuprof_summary.ts FILE.cpuprofile [--top 25]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Self time per function (name and file:line) in ms, sorted; idle and GC apart. */
export function summarize(p: Profile): {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  top: { name: string; ms: number; share: number }[];
} {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const n = byId.get(p.samples[i]!);
    if (n === undefined) continue;
    total += dt;
    const f = n.callFrame;
    if (f.functionName === "(idle)") {
      idle += dt;
      continue;
    }
    if (f.functionName === "(garbage collector)") gc += dt;
    const file = f.url.replace(/^.*\//, "");
    const key = `${f.functionName || "(anonymous)"} ${file}${file ? `:${f.lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const busy = total - idle;
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => ({ name, ms: Math.round(ms), share: busy > 0 ? ms / busy : 0 }));
  return { totalMs: Math.round(total), idleMs: Math.round(idle), gcMs: Math.round(gc), top };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { top: { type: "string", default: "25" } },
  });
  for (const file of positionals) {
    const s = summarize(JSON.parse(Deno.readTextFileSync(file)) as Profile);
    console.log(
      `${file}: ${s.totalMs} ms sampled, ${s.idleMs} ms idle, ${s.gcMs} ms GC (${
        Math.round(s.gcMs / Math.max(1, s.totalMs - s.idleMs) * 1000) / 10
      }% of busy)`,
    );
    for (const t of s.top.slice(0, Number(values.top))) {
      console.log(
        `  ${(t.share * 100).toFixed(1).padStart(5)}%  ${String(t.ms).padStart(6)} ms  ${t.name}`,
      );
    }
  }
}
