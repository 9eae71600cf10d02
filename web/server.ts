/**
 * Serving the app with `Deno.serve`.
 *
 * @module
 */

import type { Hono } from "hono";

/** Where to listen. */
export interface ApiListen {
  /** Address to bind (`127.0.0.1` unless the config says otherwise). */
  readonly host: string;
  /** TCP port; 0 picks a free one (tests). */
  readonly port: number;
  /** Stops the server when aborted, like {@link ApiServer.close}. */
  readonly signal?: AbortSignal;
}

/** A listening API server. */
export interface ApiServer {
  /** The bound port. */
  readonly port: number;
  /** The bound address. */
  readonly host: string;
  /** `http://host:port/` (IPv6 in brackets). */
  readonly url: string;
  /** Stops accepting, lets requests in flight finish, and resolves when the server is down. */
  close(): Promise<void>;
}

/**
 * Serves `app` on `host:port`. Rejects if the address cannot be bound
 * (`Deno.errors.AddrInUse`, `PermissionDenied`...).
 */
export function startApi(app: Hono, listen: ApiListen): Promise<ApiServer> {
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  listen.signal?.addEventListener("abort", onAbort, { once: true });
  const ready = Promise.withResolvers<Deno.NetAddr>();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: listen.host,
      port: listen.port,
      signal: abort.signal,
      onListen: (addr) => ready.resolve(addr),
      onError: (e) =>
        new Response(
          JSON.stringify({ error: `internal error: ${e instanceof Error ? e.message : e}` }),
          { status: 500, headers: { "content-type": "application/json" } },
        ),
    }, (req) => app.fetch(req));
  } catch (e) {
    listen.signal?.removeEventListener("abort", onAbort);
    return Promise.reject(e);
  }
  let closed: Promise<void> | undefined;
  return ready.promise.then((addr) => {
    const host = addr.hostname;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${addr.port}/`;
    return {
      port: addr.port,
      host,
      url,
      close() {
        closed ??= (async () => {
          listen.signal?.removeEventListener("abort", onAbort);
          await server.shutdown();
          await server.finished;
        })();
        return closed;
      },
    };
  });
}
