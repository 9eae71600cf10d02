/**
 * The layering rule of docs/architecture.md, checked on every import of
 * the repository's own modules:
 *
 * - product folders import only the folders below them (the table
 *   {@link MAY_IMPORT}); nothing in the product imports tests/ or scripts/;
 * - a `_module.ts` is imported only from its own folder;
 * - no product file is over 1,200 lines, none in roles/ over 800.
 *
 * Tests and benchmarks beside a module (`x_test.ts`, `x_bench.ts`) may
 * import anything, except another folder's `_modules`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url)).replace(/\/$/, "");

/** Which top-level folders (or root files) each layer may import. */
export const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  "wire": ["wire"],
  "ffi": ["ffi", "wire"],
  "config": ["config", "wire"],
  "core": ["core", "config", "wire", "version.ts"],
  "dataplane": ["dataplane", "core", "ffi", "wire"],
  "roles": ["roles", "dataplane", "core", "config", "ffi", "wire"],
  "web": ["web", "core", "config", "wire"],
  "runner": ["runner", "web", "core", "config", "wire", "version.ts"],
  "tools": ["tools", "core", "config", "wire", "version.ts"],
  "main.ts": ["runner", "roles", "tools", "core", "config", "wire", "version.ts"],
  "mod.ts": ["wire", "config", "version.ts"],
  "version.ts": [],
  "scripts": [
    "scripts",
    "main.ts",
    "runner",
    "roles",
    "web",
    "tools",
    "dataplane",
    "core",
    "config",
    "ffi",
    "wire",
    "version.ts",
  ],
};

/** Largest product file, and largest in roles/, in lines. */
const MAX_LINES = 1200;
const MAX_ROLE_LINES = 800;

function walk(dir: string, out: string[] = []): string[] {
  for (const e of Deno.readDirSync(dir)) {
    if (e.name === "node_modules" || e.name === "dist" || e.name.startsWith(".")) continue;
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) walk(p, out);
    else if (/\.(ts|tsx)$/.test(e.name)) out.push(p.slice(ROOT.length + 1));
  }
  return out;
}

const SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)(["'])(\.{1,2}\/[^"']+)\1/g;

/** Relative module specifiers of a file's source (imports, dynamic imports, `new URL`). */
export function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  return [...code.matchAll(SPEC)].map((m) => m[2]!).filter((s) => /\.(ts|tsx|js)$/.test(s));
}

function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== "." && part !== "") out.push(part);
  }
  return out.join("/");
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

function layerOf(path: string): string {
  const i = path.indexOf("/");
  return i < 0 ? path : path.slice(0, i);
}

function isTestFile(path: string): boolean {
  return /_(test|bench)\.ts$/.test(path) || /\/testdata\//.test(path);
}

/** Every rule broken by the repository's imports, one line each. */
export function violations(files: readonly string[], read: (f: string) => string): string[] {
  const out: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const test = isTestFile(file) || from === "tests";
    for (const spec of specifiers(read(file))) {
      const target = normalize(`${dirOf(file)}/${spec}`);
      const base = target.slice(target.lastIndexOf("/") + 1);
      if (base.startsWith("_") && dirOf(target) !== dirOf(file)) {
        out.push(`${file}: imports ${target}, private to ${dirOf(target) || "the root"}/`);
      }
      if (test) continue;
      const to = layerOf(target);
      const allowed = MAY_IMPORT[from];
      if (allowed === undefined) {
        out.push(`${file}: is in no layer of MAY_IMPORT`);
      } else if (!allowed.includes(to)) {
        out.push(`${file}: imports ${target} (${from} may import ${allowed.join(", ")})`);
      }
    }
  }
  return out;
}

// This file's own fixtures are strings that look like imports.
const FILES = walk(ROOT).filter((f) => f !== "tests/layers_test.ts");
const read = (f: string) => Deno.readTextFileSync(`${ROOT}/${f}`);

Deno.test("every import follows the layering rule of docs/architecture.md", () => {
  assert.deepEqual(violations(FILES, read), []);
});

Deno.test("violations() flags an upward import, another folder's _module and an unknown layer", () => {
  const src: Record<string, string> = {
    "web/app.ts": 'import { x } from "../roles/ms.ts";\nimport { y } from "../core/status.ts";',
    "core/a.ts": 'import { z } from "../dataplane/_private.ts";',
    "roles/ms_test.ts": 'import { w } from "../tests/_x.ts";\nimport { v } from "../web/app.ts";',
    "elsewhere/b.ts": 'import { q } from "../wire/ip.ts";',
    "wire/c.ts":
      '// import { r } from "../roles/ms.ts";\nconst u = new URL("./_w.ts", import.meta.url);',
  };
  assert.deepEqual(violations(Object.keys(src), (f) => src[f]!), [
    "web/app.ts: imports roles/ms.ts (web may import web, core, config, wire)",
    "core/a.ts: imports dataplane/_private.ts, private to dataplane/",
    "core/a.ts: imports dataplane/_private.ts (core may import core, config, wire, version.ts)",
    "roles/ms_test.ts: imports tests/_x.ts, private to tests/",
    "elsewhere/b.ts: is in no layer of MAY_IMPORT",
  ]);
});

Deno.test("no product file is over 1,200 lines, none in roles/ over 800", () => {
  const big: string[] = [];
  for (const f of FILES) {
    const layer = layerOf(f);
    if (isTestFile(f) || layer === "tests" || layer === "scripts") continue;
    const lines = read(f).split("\n").length - 1;
    const max = layer === "roles" ? MAX_ROLE_LINES : MAX_LINES;
    if (lines > max) big.push(`${f}: ${lines} lines (at most ${max})`);
  }
  assert.deepEqual(big, []);
});

Deno.test("docs/architecture.md lists every product module", () => {
  const doc = read("docs/architecture.md");
  const missing: string[] = [];
  for (const f of FILES) {
    const layer = layerOf(f);
    if (isTestFile(f) || layer === "tests" || f.endsWith("_bench.ts")) continue;
    // The full path, or a folder heading of the tree and the rest of the path under it.
    let listed = doc.includes(`\n${f} `);
    for (let i = f.indexOf("/"); i >= 0 && !listed; i = f.indexOf("/", i + 1)) {
      const heading = escape(f.slice(0, i + 1));
      const rest = escape(f.slice(i + 1));
      listed = new RegExp(`\\n${heading}[^\\n]*\\n(?:  [^\\n]*\\n)*?  ${rest}\\s`).test(doc);
    }
    if (!listed) {
      missing.push(f);
    }
  }
  assert.deepEqual(missing, []);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
