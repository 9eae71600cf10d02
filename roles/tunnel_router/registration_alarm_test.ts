import assert from "node:assert/strict";
import { Logger } from "../../core/log.ts";
import { UdpSocket } from "../../ffi/udp.ts";
import {
  likelyCause,
  type MapServerFailure,
  probeMapServer,
  type ProbeResult,
  RegistrationAlarm,
} from "./registration_alarm.ts";

function logger(lines: string[], now: () => number): Logger {
  return new Logger({
    role: "xtr",
    level: "debug",
    format: "text",
    now,
    sink: { write: (l) => lines.push(l) },
  });
}

const failing = (over: Partial<MapServerFailure> = {}): MapServerFailure => ({
  failing: true,
  since: 1_000,
  mapRegisters: 7,
  prefixes: ["10.1.0.0/24"],
  port: 4342,
  facts: { keyType: 1, authFailures: 0 },
  ...over,
});

Deno.test("likelyCause() names a key mismatch when a Map-Notify failed authentication", () => {
  assert.match(likelyCause({ keyType: 1, authFailures: 1 }), /failed authentication: the key/);
});

Deno.test("likelyCause() names what the probe found: no route, ICMP port unreachable", () => {
  assert.match(
    likelyCause({ keyType: 1, authFailures: 0, probe: { kind: "no-route", error: "ENETUNREACH" } }),
    /^no route to the map-server \(ENETUNREACH\)/,
  );
  assert.match(
    likelyCause({ keyType: 1, authFailures: 0, probe: { kind: "port-unreachable" } }),
    /ICMP port unreachable: nothing listens/,
  );
});

Deno.test("likelyCause() with nothing found locally lists wrong key, prefix not in a site, unreachable", () => {
  const c = likelyCause({ keyType: 1, authFailures: 0, probe: { kind: "ok" } });
  assert.match(
    c,
    /^wrong key or key-type, EID prefix not in a site there, or map-server unreachable/,
  );
  assert.match(c, /the route is there, no ICMP unreachable/);
  assert.match(
    likelyCause({ keyType: 2, authFailures: 0, probe: { kind: "ok" } }),
    /key-type 2 \(HMAC-SHA-256\), which OOR 1\.3\.0's map-server does not take/,
  );
  assert.match(
    likelyCause({ keyType: 1, authFailures: 0, viaRtr: true }),
    /map-server or RTR unreachable/,
  );
});

Deno.test("RegistrationAlarm warns once with what was tried, again only after the repeat period, and says when it recovered", async () => {
  let now = 100_000;
  const lines: string[] = [];
  const probes: string[] = [];
  const alarm = new RegistrationAlarm({
    log: logger(lines, () => now),
    now: () => now,
    probe: (a, p) => {
      probes.push(`${a}:${p}`);
      return Promise.resolve<ProbeResult>({ kind: "ok" });
    },
    repeatMs: 60_000,
  });
  alarm.update("192.0.2.1", { ...failing(), failing: false });
  assert.equal(alarm.failure("192.0.2.1"), undefined);
  alarm.update("192.0.2.1", failing());
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(probes, ["192.0.2.1:4342"]);
  const warns = () => lines.filter((l) => / registration-failing /.test(l));
  assert.equal(warns().length, 1);
  assert.match(warns()[0]!, /WARN/i);
  assert.match(warns()[0]!, /no Map-Notify from 192\.0\.2\.1 after 7 Map-Registers/);
  assert.match(warns()[0]!, /since=1970-01-01T00:00:01\.000Z/);
  assert.match(warns()[0]!, /wrong key or key-type, EID prefix not in a site there/);
  assert.equal(alarm.failure("192.0.2.1")?.since, 1_000);
  for (let i = 0; i < 10; i++) {
    now += 5_000; // 50 s: within the repeat period
    alarm.update("192.0.2.1", failing({ mapRegisters: 8 + i }));
  }
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(warns().length, 1, "not again within the repeat period");
  now += 10_000;
  alarm.update("192.0.2.1", failing({ mapRegisters: 20 }));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(warns().length, 2);
  assert.match(warns()[1]!, /after 20 Map-Registers/);
  alarm.update("192.0.2.1", { ...failing(), failing: false });
  assert.equal(
    lines.filter((l) => / registration-recovered .*mapServer=192\.0\.2\.1/.test(l)).length,
    1,
  );
  assert.equal(alarm.failure("192.0.2.1"), undefined);
});

Deno.test("RegistrationAlarm through RTRs does not probe the map-server", () => {
  const lines: string[] = [];
  const alarm = new RegistrationAlarm({
    log: logger(lines, () => 0),
    now: () => 0,
    probe: () => Promise.reject(new Error("must not probe")),
  });
  alarm.update("192.0.2.1", failing({ facts: { keyType: 1, authFailures: 0, viaRtr: true } }));
  assert.equal(lines.filter((l) => / registration-failing .*RTR unreachable/.test(l)).length, 1);
});

Deno.test("probeMapServer() sees an ICMP port unreachable from a closed port, and a listener as fine", async () => {
  const s = UdpSocket.open({ address: "127.0.0.1" });
  const port = s.localAddress().port;
  try {
    assert.deepEqual(await probeMapServer("127.0.0.1", port), { kind: "ok" });
  } finally {
    s.close();
  }
  assert.deepEqual(await probeMapServer("127.0.0.1", port), { kind: "port-unreachable" });
});

Deno.test("RegistrationAlarm: a map-server that fails again soon after it recovered is not warned of again before the repeat period", async () => {
  let now = 0;
  const lines: string[] = [];
  const alarm = new RegistrationAlarm({
    log: logger(lines, () => now),
    now: () => now,
    probe: null,
    repeatMs: 60_000,
  });
  const warns = () => lines.filter((l) => / registration-failing /.test(l)).length;
  alarm.update("192.0.2.1", failing());
  assert.equal(warns(), 1);
  now += 15_000;
  alarm.update("192.0.2.1", { ...failing(), failing: false });
  now += 15_000;
  alarm.update("192.0.2.1", failing({ since: now - 10_000 }));
  assert.equal(warns(), 1, "30 s after the last warning");
  assert.equal(alarm.failure("192.0.2.1")?.since, now - 10_000, "the page still shows it");
  now += 30_000;
  alarm.update("192.0.2.1", failing({ since: now - 40_000 }));
  assert.equal(warns(), 2);
  await Promise.resolve();
});
