/**
 * What a tunnel router (xtr, mn, rtr) asks of the host: interface
 * addresses and link state, rtnetlink routes and rules, the TUN device,
 * the data UDP sockets, link/address events and sysctls. {@link Platform}
 * is that surface; {@link linuxPlatform} implements it with ffi/ (never
 * by running `ip`), and unit tests pass an in-memory fake.
 *
 * @module
 */

import {
  ErrnoError,
  type InterfaceAddress,
  type IpFamily,
  type Link,
  Netlink,
  type NetlinkEvent,
  NetlinkEvents,
  Tun,
  UdpSocket,
} from "../../ffi/mod.ts";
import { WaitSet, Waker } from "../../ffi/wait.ts";

/** The rtnetlink operations a tunnel router uses (a subset of {@link Netlink}). */
export type NetOps = Pick<
  Netlink,
  | "routeAdd"
  | "routeDel"
  | "ruleAdd"
  | "ruleDel"
  | "addrAdd"
  | "addrDel"
  | "routes"
  | "rules"
  | "addresses"
  | "links"
>;

/** An open TUN device. */
export interface TunDevice {
  /** File descriptor (given to the data plane). */
  readonly fd: number;
  /** Interface index. */
  readonly index: number;
  /** Interface name. */
  readonly name: string;
  /** Closes the fd, which deletes the interface. */
  close(): void;
}

/** An open data UDP socket. */
export interface DataSocket {
  /** File descriptor (given to the data plane). */
  readonly fd: number;
  /** Closes it. */
  close(): void;
}

/** What a tunnel router needs from the host. */
export interface Platform {
  /** rtnetlink requests. */
  readonly net: NetOps;
  /**
   * Opens the TUN device `name` with `mtu`, up; linuxPlatform's carries a
   * virtio-net header, so that the data plane can turn offloads on (it
   * writes and reads plain packets behind a zero header otherwise). With
   * `multiQueue`, {@link openTunQueue} can add queues to it (one per
   * data-plane Worker).
   */
  openTun(name: string, mtu: number, multiQueue?: boolean): TunDevice;
  /**
   * Opens one more queue of the multi-queue TUN whose first fd is `fd`
   * (closing it detaches the queue). Absent (a fake): one data-plane
   * Worker, whatever `[data-plane] workers` says.
   */
  openTunQueue?(fd: number): DataSocket;
  /**
   * Opens a nonblocking UDP socket bound to `address` (default the
   * wildcard) and `port`; with `reusePort`, SO_REUSEPORT (one socket per
   * data-plane Worker).
   */
  openUdp(family: IpFamily, port: number, address?: string, reusePort?: boolean): DataSocket;
  /**
   * Attaches the classic BPF program `filter` to the SO_REUSEPORT group of
   * the socket `fd`: it picks the socket of each datagram (dataplane/spread.ts).
   * Absent (a fake): one data-plane Worker.
   */
  spreadUdp?(fd: number, filter: Uint8Array): void;
  /**
   * Opens a send-only raw IPv4 socket (needs CAP_NET_RAW): an RTR sends
   * data to xTRs behind a NAT through it, from its control port. Absent
   * (a fake): the RTR sends them from the data socket.
   */
  openRawIpv4?(): DataSocket;
  /** Link and address events until `signal` aborts. */
  events(signal: AbortSignal): AsyncIterable<NetlinkEvent>;
  /** A sysctl under /proc/sys by path segments (`["net", "ipv4", "ip_forward"]`), trimmed. */
  readSysctl(path: readonly string[]): string | undefined;
  /** The source address the kernel would use toward `dst`, if there is a route. */
  routeSource(dst: string): string | undefined;
  /** Releases what the platform holds (netlink sockets). */
  close(): void;
}

/** Socket buffers of the data sockets (forced when allowed). */
const DATA_SOCKET_BUFFER = 4 << 20;

/** The host's platform through ffi/: rtnetlink, TUN, UDP sockets, /proc/sys. */
export function linuxPlatform(): Platform {
  const nl = Netlink.open();
  return {
    net: nl,
    openTun: (name, mtu, multiQueue) =>
      Tun.open(name, { mtu, netlink: nl, vnetHdr: true, multiQueue: multiQueue === true }),
    openTunQueue: (fd) => Tun.openQueue(fd),
    openUdp: (family, port, address, reusePort) =>
      UdpSocket.open({
        family,
        port,
        ...(address !== undefined ? { address } : {}),
        recvBuffer: DATA_SOCKET_BUFFER,
        sendBuffer: DATA_SOCKET_BUFFER,
        reusePort: reusePort === true,
      }),
    spreadUdp: (fd, filter) => UdpSocket.fromFd(fd).attachReusePortFilter(filter),
    openRawIpv4: () => UdpSocket.openRawIpv4(DATA_SOCKET_BUFFER),
    events: (signal) => routineNetlinkEvents(signal),
    readSysctl: (path) => {
      try {
        return Deno.readTextFileSync(`/proc/sys/${path.join("/")}`).trim();
      } catch {
        return undefined;
      }
    },
    routeSource: (dst) => {
      try {
        return nl.routeGet(dst).src;
      } catch {
        return undefined;
      }
    },
    close: () => nl.close(),
  };
}

/**
 * Link and address events as they come: a poll() on the netlink socket off
 * the event loop (ffi/wait.ts), woken at once by an abort. A mobile node's
 * move is seen within a millisecond, not at the next tick of a timer.
 */
async function* routineNetlinkEvents(signal: AbortSignal): AsyncGenerator<NetlinkEvent> {
  const ev = NetlinkEvents.open();
  const waker = new Waker();
  const wake = () => waker.wake();
  signal.addEventListener("abort", wake, { once: true });
  const set = new WaitSet([ev.fd, waker.fd]);
  try {
    while (!signal.aborted && ev.fd >= 0) {
      for (const e of ev.drain()) yield e;
      if (signal.aborted) break;
      await set.wait(1000);
    }
  } finally {
    signal.removeEventListener("abort", wake);
    ev.close();
    waker.close();
  }
}

/** The errno name of an error from {@link NetOps} (or a fake's `{code}`). */
export function errCode(e: unknown): string | undefined {
  if (e instanceof ErrnoError) return e.code;
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

/** Addresses usable as RLOCs: not tentative, not failed DAD. */
export function usableAddress(a: InterfaceAddress): boolean {
  const IFA_F_DADFAILED = 0x08;
  const IFA_F_TENTATIVE = 0x40;
  return (a.flags & (IFA_F_DADFAILED | IFA_F_TENTATIVE)) === 0;
}

/** Whether a link carries traffic (administratively up and running). */
export function linkUsable(l: Link): boolean {
  return l.up && l.running;
}
