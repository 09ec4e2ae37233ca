/**
 * Caddy's native JSON config, generated as data (no text templating): one server for the
 * routes, one loopback-only server for the container's healthcheck, TLS per the stack.
 * Upstreams are container names: Caddy resolves them through Docker's DNS when it dials, so a
 * recreated backend with a new IP is reached without touching the proxy.
 */

/** One proxy route: a host (and path prefix) to a container's port. */
export interface ProxyRoute {
    /** Host name matched against the request's Host header. */
    host: string;
    /** Upstream container name (resolved by Docker's embedded DNS). */
    upstream: string;
    /** Upstream port. */
    port: number;
    /** Path prefix such as "/api/*". @default none (every path of the host) */
    path?: string;
}

/** Inputs of {@link buildCaddyConfig}: every value explicit (the component fills in its defaults first). */
export interface CaddyConfigArgs {
    /** The routes, in any order (see {@link routePrecedence}). */
    routes: ProxyRoute[];
    /** Port Caddy listens on for HTTP inside the container (same number as published). */
    httpPort: number;
    /** Port for HTTPS (ignored when tls is "off"). */
    httpsPort: number;
    /** acme: public certificates; internal: Caddy's local CA; off: plain HTTP only. */
    tls: "acme" | "internal" | "off";
    /** ACME account e-mail (required for acme). @default none (the ACME issuer gets no e-mail; only used with tls "acme") */
    acmeEmail?: string;
    /** "loopback": admin API on the container's own 127.0.0.1:2019 (reach it with `docker exec`); "off": no admin API. */
    adminApi: "off" | "loopback";
    /** Port of the healthcheck endpoint on the container's loopback. */
    healthPort: number;
    /** Port of the admin API on the container's loopback. */
    adminPort: number;
    /** Where certificates and ACME state live (a storage volume). */
    storageRoot: string;
}

/**
 * Route precedence, whatever the order in config (Caddy tries routes in order; the first match
 * answers): an exact host before any wildcard (so `agent.example.com` is never answered by
 * `*.example.com`); among wildcards, the deeper domain first (`*.a.example.com` before
 * `*.example.com`); for the same kind of host, a longer path prefix before a shorter one and any
 * path before host-only; then by host and path, so the generated config never depends on order.
 */
export function routePrecedence(a: ProxyRoute, b: ProxyRoute): number {
    const wildcard = (r: ProxyRoute) => (r.host.startsWith("*.") ? 1 : 0);
    const depth = (r: ProxyRoute) => r.host.split(".").length;
    const key = (r: ProxyRoute) => `${r.host.toLowerCase()}\u0000${r.path ?? ""}`;
    return (
        wildcard(a) - wildcard(b) ||
        depth(b) - depth(a) ||
        (b.path ?? "").length - (a.path ?? "").length ||
        (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)
    );
}

function orderRoutes(routes: ProxyRoute[]): ProxyRoute[] {
    return [...routes].sort(routePrecedence);
}

/** The proxy's whole Caddy JSON config for these arguments. Pure. */
export function buildCaddyConfig(args: CaddyConfigArgs): Record<string, unknown> {
    const tlsOn = args.tls !== "off";
    const routes = orderRoutes(args.routes).map((r) => ({
        // Host names are case-insensitive (RFC 4343); Caddy matches them so, and the config says them once, lower-case.
        match: [r.path ? { host: [r.host.toLowerCase()], path: [r.path] } : { host: [r.host.toLowerCase()] }],
        handle: [
            {
                handler: "reverse_proxy",
                upstreams: [{ dial: `${r.upstream}:${r.port}` }],
                // A dial on the local bridge takes well under a millisecond; one that has not
                // connected in 100 ms went to an address or MAC that is gone (a backend being
                // recreated) and waiting for TCP's 1 s SYN retransmit would only lengthen the gap,
                // so it is abandoned and retried with a fresh DNS lookup.
                transport: { protocol: "http", dial_timeout: "100ms" },
                // Hold requests while a backend is recreated (stop, remove, create, start) and
                // retry every 50 ms, instead of answering 502 at once.
                load_balancing: { try_duration: "15s", try_interval: "50ms" },
            },
        ],
        terminal: true,
    }));
    const hosts = [...new Set(args.routes.map((r) => r.host.toLowerCase()))].sort();

    const config: Record<string, unknown> = {
        admin:
            args.adminApi === "off"
                ? { disabled: true, config: { persist: false } }
                : { listen: `127.0.0.1:${args.adminPort}`, config: { persist: false } },
        storage: { module: "file_system", root: args.storageRoot },
        logging: { logs: { default: { level: "INFO", writer: { output: "stderr" } } } },
        apps: {
            http: {
                http_port: args.httpPort,
                https_port: args.httpsPort,
                servers: {
                    routes: {
                        listen: [tlsOn ? `:${args.httpsPort}` : `:${args.httpPort}`],
                        routes,
                        // With TLS, the redirect server below sends HTTP to HTTPS: Caddy's own redirect
                        // drops a non-443 port when it equals https_port (dev's 8443 would become 443).
                        automatic_https: tlsOn ? { disable_redirects: true } : { disable: true },
                    },
                    ...(tlsOn
                        ? {
                              redirect: {
                                  listen: [`:${args.httpPort}`],
                                  routes: [
                                      {
                                          handle: [
                                              {
                                                  handler: "static_response",
                                                  status_code: 308,
                                                  headers: { Location: [`https://{http.request.host}${args.httpsPort === 443 ? "" : `:${args.httpsPort}`}{http.request.uri}`] },
                                              },
                                          ],
                                      },
                                  ],
                              },
                          }
                        : {}),
                    health: {
                        listen: [`127.0.0.1:${args.healthPort}`],
                        routes: [{ handle: [{ handler: "static_response", status_code: 200, body: "ok" }] }],
                        automatic_https: { disable: true },
                    },
                },
            },
            // Caddy's local CA lives in the data volume; installing it into the container's own trust store is pointless.
            ...(args.tls === "internal" ? { pki: { certificate_authorities: { local: { install_trust: false } } } } : {}),
            ...(tlsOn && hosts.length > 0
                ? {
                      tls: {
                          automation: {
                              policies: [
                                  {
                                      subjects: hosts,
                                      issuers: args.tls === "acme" ? [{ module: "acme", email: args.acmeEmail }] : [{ module: "internal" }],
                                  },
                              ],
                          },
                      },
                  }
                : {}),
        },
    };
    return config;
}
