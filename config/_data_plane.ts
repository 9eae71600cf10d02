/**
 * `[data-plane]` of a tunnel router's config (config/validate.ts reads the
 * rest): offloads, UDP GSO, the number of Workers and the CPUs they are
 * pinned to, each checked with file:line errors through the {@link Ctx}.
 *
 * @module
 */

import { type Ctx, own, readBool, readInt, readTable, type Table, typeName } from "./_read.ts";
import { type DataPlaneConfig, DEFAULTS } from "./schema.ts";

/** The keys `[data-plane]` takes. */
export const DATA_PLANE_KEYS = ["offloads", "udp-gso", "workers", "cpus"] as const;

/** `[data-plane]` of `raw` (defaults for what is absent). */
export function readDataPlane(ctx: Ctx, raw: Table): DataPlaneConfig {
  const t = readTable(ctx, raw, "data-plane", DATA_PLANE_KEYS);
  return {
    offloads: readBool(ctx, t, ["data-plane"], "offloads", DEFAULTS.dataPlaneOffloads),
    udpGso: readBool(ctx, t, ["data-plane"], "udp-gso", DEFAULTS.dataPlaneUdpGso),
    ...readWorkers(ctx, t),
    ...readCpus(ctx, t),
  };
}

/** `[data-plane] workers`: absent (the number of cores), or 1 to 64. */
function readWorkers(ctx: Ctx, t: Table): { workers?: number } {
  if (own(t, "workers") === undefined) return {};
  const n = readInt(ctx, t, ["data-plane"], "workers", 1, DEFAULTS.dataPlaneMaxWorkers, 0);
  return n === 0 ? {} : { workers: n };
}

/** Highest CPU number `[data-plane] cpus` takes (a 1,024-CPU affinity mask). */
const MAX_CPU = 1023;

/** `[data-plane] cpus`: absent (the kernel places the Workers), or distinct CPU numbers. */
function readCpus(ctx: Ctx, t: Table): { cpus?: readonly number[] } {
  const v = own(t, "cpus");
  if (v === undefined) return {};
  const p = ["data-plane", "cpus"];
  if (!Array.isArray(v) || v.length === 0) {
    ctx.error(p, `must be a non-empty list of CPU numbers, e.g. [0, 1], not ${typeName(v)}`);
    return {};
  }
  const cpus: number[] = [];
  for (const c of v) {
    if (typeof c !== "number" || !Number.isInteger(c) || c < 0 || c > MAX_CPU) {
      ctx.error(p, `each CPU must be an integer from 0 to ${MAX_CPU} (got ${JSON.stringify(c)})`);
      return {};
    }
    if (cpus.includes(c)) {
      ctx.error(p, `CPU ${c} is listed twice`);
      return {};
    }
    cpus.push(c);
  }
  return { cpus };
}
