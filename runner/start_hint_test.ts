import { ok, strictEqual } from "node:assert/strict";
import dgram from "node:dgram";
import { ErrnoError } from "../ffi/libc.ts";
import { startHint } from "./start_hint.ts";

/** The error node:dgram gives for a bind to `address`. */
function bindError(address: string, port: number): Promise<Error> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
    s.on("error", (e) => {
      s.close();
      resolve(e);
    });
    s.bind(port, address, () => {
      s.close();
      resolve(new Error(`bound ${address}:${port}`));
    });
  });
}

const LIBC_EPERM = 1;
const LIBC_EACCES = 13;
const LIBC_ENOENT = 2;
const LIBC_EADDRNOTAVAIL = 99;

Deno.test("startHint() says an address is not on this host, whoever raised the error", async () => {
  // node:dgram's own error, as the control plane gets it.
  const e = await bindError("192.0.2.61", 4342);
  strictEqual((e as { code?: string }).code, "EADDRNOTAVAIL", e.message);
  strictEqual(
    startHint(e),
    "192.0.2.61 is not an address of this host: set control-address to one it has " +
      "(ip -br addr lists them), or add it to an interface first",
  );
  // ffi/'s, for a data socket; Deno's for the API, which names no address.
  const ffi = new ErrnoError(LIBC_EADDRNOTAVAIL, "bind 2001:db8::61:4341");
  ok(startHint(ffi)?.startsWith("2001:db8::61 is not an address of this host"), startHint(ffi));
  const deno = new Deno.errors.AddrNotAvailable("Cannot assign requested address (os error 99)");
  ok(
    startHint(deno, { setting: "[api] listen", address: "192.0.2.9", port: 9942 })
      ?.startsWith("192.0.2.9 is not an address of this host: set [api] listen to one it has"),
  );
});

Deno.test("startHint() names CAP_NET_ADMIN and the setcap line for the TUN and rtnetlink", () => {
  const exe = { executable: "/usr/local/bin/oor" };
  const setcap = "sudo setcap cap_net_admin,cap_net_raw+ep /usr/local/bin/oor";
  for (
    const e of [
      new ErrnoError(LIBC_EPERM, "TUNSETIFF lispTun0"),
      new ErrnoError(LIBC_EACCES, "open /dev/net/tun"),
      new Error("open /dev/net/tun: Permission denied"),
      new Error("TUNSETIFF: Operation not permitted"),
    ]
  ) {
    const hint = startHint(e, exe) ?? "";
    ok(hint.startsWith("creating the TUN device needs CAP_NET_ADMIN: run as root"), hint);
    ok(hint.includes(setcap), hint);
  }
  const route = startHint(new ErrnoError(LIBC_EPERM, "RTM_NEWRULE from 10.1.0.0/24"), exe) ?? "";
  ok(route.startsWith("changing addresses, routes and rules needs CAP_NET_ADMIN"), route);
  // Run from source, the executable is deno: the hint names the compiled one.
  const src = startHint(new ErrnoError(LIBC_EPERM, "TUNSETIFF lispTun0"), {
    executable: "/work/node_modules/.bin/deno",
  });
  ok(src?.includes("sudo setcap cap_net_admin,cap_net_raw+ep dist/oor"), src);
  const raw = startHint(new ErrnoError(LIBC_EPERM, "setsockopt SO_BINDTODEVICE rloc0"), exe);
  ok(raw?.startsWith("this needs CAP_NET_RAW"), raw);
  const noTun = startHint(new ErrnoError(LIBC_ENOENT, "open /dev/net/tun"), exe);
  ok(noTun?.includes("modprobe tun"), noTun);
});

Deno.test("startHint() says which port is in use, and nothing for errors it cannot help with", async () => {
  const first = dgram.createSocket("udp4");
  await new Promise<void>((r) => first.bind(0, "127.0.0.1", r));
  try {
    const port = first.address().port;
    const e = await bindError("127.0.0.1", port);
    ok(startHint(e)?.startsWith(`127.0.0.1:${port} is already in use`), startHint(e));
  } finally {
    first.close();
  }
  strictEqual(startHint(new Error("the state file is not JSON")), undefined);
  strictEqual(startHint(new ErrnoError(LIBC_EPERM, "kill 1")), undefined);
});

Deno.test("a role that cannot bind its control-address logs start-failed with the hint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/ms.toml`;
    await Deno.writeTextFile(
      config,
      'control-address = "192.0.2.61"\n[api]\nenabled = false\n' +
        '[[lisp-site]]\neid-prefix = "10.1.0.0/16"\nkey-type = 2\nkey = "s3cret"\n',
    );
    const p = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "ms", "-c", config],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(p.stderr);
    strictEqual(p.code, 1, err);
    const line = err.split("\n").find((l) => l.includes(" start-failed ")) ?? "";
    ok(line.includes("EADDRNOTAVAIL"), err);
    ok(
      line.includes('hint="192.0.2.61 is not an address of this host: set control-address'),
      line,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
