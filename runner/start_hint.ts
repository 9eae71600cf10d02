/**
 * What to do about an error that stopped a role from starting (or its API
 * from listening): the `hint` of the `start-failed` and `api-listen-failed`
 * log lines. The errors come from node:dgram and Deno (`bind
 * EADDRNOTAVAIL 192.0.2.61:4342`) and from ffi/ (`TUNSETIFF lispTun0:
 * Operation not permitted (EPERM)`); they are read here by their code and
 * text, not changed where they are raised.
 *
 * @module
 */

/** What {@link startHint} knows of the process besides the error. */
export interface HintContext {
  /** The setting that chose the address: `control-address` (default) or `[api] listen`. */
  readonly setting?: string;
  /** The address and port tried, when the error does not say (Deno's errors do not). */
  readonly address?: string;
  /** See {@link HintContext.address}. */
  readonly port?: number;
  /**
   * The executable to give capabilities to: `Deno.execPath()` by default.
   * Run from source that is `deno`, and the hint names the compiled
   * `dist/oor` instead.
   */
  readonly executable?: string;
}

/** The parts of an error a hint is made from. */
interface ErrorFacts {
  /** `EADDRNOTAVAIL`, `EPERM`, ... when known. */
  readonly code: string | undefined;
  /** The whole message. */
  readonly text: string;
  /** `address:port` the error names, if any. */
  readonly address: string | undefined;
  readonly port: number | undefined;
}

/** strerror() texts, for errors that carry no code. */
const STRERROR: readonly (readonly [RegExp, string])[] = [
  [/Operation not permitted/i, "EPERM"],
  [/Permission denied/i, "EACCES"],
  [/Cannot assign requested address/i, "EADDRNOTAVAIL"],
  [/Address already in use/i, "EADDRINUSE"],
  [/No such file or directory/i, "ENOENT"],
];

function codeOfText(text: string): string | undefined {
  return STRERROR.find(([re]) => re.test(text))?.[1];
}

function facts(e: unknown): ErrorFacts {
  const text = e instanceof Error ? e.message : String(e);
  const o = (typeof e === "object" && e !== null ? e : {}) as Record<string, unknown>;
  let code = typeof o["code"] === "string" ? o["code"] as string : undefined;
  if (code === undefined) {
    if (e instanceof Deno.errors.AddrNotAvailable) code = "EADDRNOTAVAIL";
    else if (e instanceof Deno.errors.AddrInUse) code = "EADDRINUSE";
    else if (e instanceof Deno.errors.PermissionDenied) code = "EACCES";
    else code = /\b(E[A-Z]{3,})\b/.exec(text)?.[1] ?? codeOfText(text);
  }
  let address = typeof o["address"] === "string" ? o["address"] as string : undefined;
  let port = typeof o["port"] === "number" ? o["port"] as number : undefined;
  if (address === undefined) {
    // `bind 192.0.2.61:4342`, `bind [2001:db8::1]:4341`, `bind 2001:db8::1:4341`.
    const m = /\b(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]|[0-9a-fA-F]*:[0-9a-fA-F:.]+):(\d+)\b/
      .exec(text);
    if (m !== null) {
      address = m[1]!.replace(/^\[|\]$/g, "");
      port = Number(m[2]);
    }
  }
  return { code, text, address, port };
}

/** The command that gives the executable its capabilities, or how to get one. */
function setcapLine(ctx: HintContext): string {
  let exe = ctx.executable;
  if (exe === undefined) {
    try {
      exe = Deno.execPath();
    } catch {
      exe = undefined;
    }
  }
  const fromSource = exe === undefined || /(^|\/)deno$/.test(exe);
  return fromSource
    ? "sudo setcap cap_net_admin,cap_net_raw+ep dist/oor (the executable of " +
      "'deno task compile'; run from source, run as root)"
    : `sudo setcap cap_net_admin,cap_net_raw+ep ${exe}`;
}

/** Whether the failed call is one that needs CAP_NET_ADMIN. */
function needsNetAdmin(text: string): boolean {
  return /\/dev\/net\/tun|TUNSET|\bRTM_[A-Z]+|netlink|SIOCS/i.test(text);
}

/** Whether the failed call is one that needs CAP_NET_RAW. */
function needsNetRaw(text: string): boolean {
  return /SO_BINDTODEVICE|SOCK_RAW|raw socket|IPPROTO_RAW/i.test(text);
}

/**
 * A sentence that says what to do about `e`, or undefined when there is
 * nothing to add to its message.
 */
export function startHint(e: unknown, ctx: HintContext = {}): string | undefined {
  const found = facts(e);
  const f = found.address === undefined && ctx.address !== undefined
    ? { ...found, address: ctx.address, port: ctx.port }
    : found;
  const at = f.address !== undefined
    ? `${f.address.includes(":") ? `[${f.address}]` : f.address}${
      f.port !== undefined ? `:${f.port}` : ""
    }`
    : undefined;
  switch (f.code) {
    case "EADDRNOTAVAIL":
      return `${f.address ?? "the address"} is not an address of this host: set ` +
        `${ctx.setting ?? "control-address"} to one it has (ip -br addr lists them), or add ` +
        "it to an interface first";
    case "EADDRINUSE":
      return `${at ?? "that port"} is already in use, by another oor role or program ` +
        `(ss -ulpn or ss -tlpn shows which)${
          f.port === 9942 ? "; give each process its own [api] listen port" : ""
        }`;
    case "EPERM":
    case "EACCES":
      if (needsNetRaw(f.text)) {
        return "this needs CAP_NET_RAW: run as root, or give the executable its " +
          `capabilities once: ${setcapLine(ctx)}`;
      }
      if (needsNetAdmin(f.text)) {
        const what = /tun|TUNSET/i.test(f.text)
          ? "creating the TUN device"
          : "changing addresses, routes and rules";
        return `${what} needs CAP_NET_ADMIN: run as root, or give the executable its ` +
          `capabilities once: ${setcapLine(ctx)} (systemd: ` +
          "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW)";
      }
      if (f.port !== undefined && f.port < 1024) {
        return `port ${f.port} is privileged: use a port from 1024 up, or run with ` +
          "CAP_NET_BIND_SERVICE";
      }
      return undefined;
    case "ENOENT":
      if (/\/dev\/net\/tun/.test(f.text)) {
        return "this host has no /dev/net/tun: load the tun module (modprobe tun), or give " +
          "the container the device (docker run --device /dev/net/tun)";
      }
      return undefined;
    default:
      return undefined;
  }
}
