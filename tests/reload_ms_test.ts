/**
 * Configuration reload of a map-server process on loopback (runner/reload.ts):
 * `oor ms` gets SIGHUP after a `[[lisp-site]]` was added to its file and one
 * removed; the sites change without a restart; a bad file is then refused
 * with its error at its line, and the sites stay as they were.
 *
 * @module
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function freeTcpPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

function msFile(controlPort: number, apiPort: number, sites: readonly string[]): string {
  return [
    'operating-mode = "MS"',
    'control-address = "127.0.0.1"',
    `control-port = ${controlPort}`,
    "[api]",
    `listen = "127.0.0.1:${apiPort}"`,
    ...sites.flatMap((eid) => [
      "[[lisp-site]]",
      `eid-prefix = "${eid}"`,
      "key-type = 1",
      'key = "k"',
    ]),
    "",
  ].join("\n");
}

Deno.test("SIGHUP: an ms takes a site added to its file and drops one removed, then refuses a bad file and keeps its sites", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oor-reload-ms-" });
  const file = `${dir}/ms.toml`;
  const controlPort = await freeUdpPort();
  const apiPort = freeTcpPort();
  await Deno.writeTextFile(file, msFile(controlPort, apiPort, ["10.1.0.0/16", "10.2.0.0/16"]));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "ms", "--config", file],
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const pump = (async () => {
    for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) log += t;
  })();
  const waitLog = async (re: RegExp, from: number) => {
    const deadline = Date.now() + 15_000;
    while (!re.test(log.slice(from))) {
      if (Date.now() > deadline) throw new Error(`no ${re} in:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const sites = async () => {
    const r = await fetch(`http://127.0.0.1:${apiPort}/api/v1/sites`);
    const body = await r.json() as { sites: Record<string, string>[] };
    return body.sites.map((s) => s["prefix"] ?? s["eid-prefix"]).sort();
  };
  try {
    await waitLog(/ started /, 0);
    assert.deepEqual(await sites(), ["10.1.0.0/16", "10.2.0.0/16"]);
    await Deno.writeTextFile(file, msFile(controlPort, apiPort, ["10.1.0.0/16", "10.3.0.0/16"]));
    let from = log.length;
    child.kill("SIGHUP");
    await waitLog(/ reloaded /, from);
    assert.match(log.slice(from), / reload-applied table=lisp-site action=added .*10\.3\.0\.0\/16/);
    assert.match(
      log.slice(from),
      / reload-applied table=lisp-site action=removed .*10\.2\.0\.0\/16/,
    );
    assert.deepEqual(await sites(), ["10.1.0.0/16", "10.3.0.0/16"]);

    await Deno.writeTextFile(
      file,
      msFile(controlPort, apiPort, ["10.1.0.0/16"]).replace("key-type = 1", "key-type = 7"),
    );
    from = log.length;
    child.kill("SIGHUP");
    await waitLog(/ reload-refused /, from);
    assert.match(log.slice(from), /ms\.toml:\d+: lisp-site\[0\]\.key-type/);
    assert.deepEqual(await sites(), ["10.1.0.0/16", "10.3.0.0/16"]);
    assert.doesNotMatch(log, / stopping /);
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // exited already: its log says why
    }
    await child.status;
    await pump;
    await Deno.remove(dir, { recursive: true });
  }
});
