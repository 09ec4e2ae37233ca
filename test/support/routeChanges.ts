/**
 * Route changes under load, the same way for each proxy engine (test/real/proxyRouteReload*.test.ts):
 * two clients at once on 127.0.0.1 while the real config step changes the routes again and again.
 *   - a browser-like client on keep-alive connections, which sends a request again when it failed
 *     on a reused connection, as Go's net/http Transport does;
 *   - a client that opens a new connection per request and never retries.
 * After each change, every route the change names must answer as expected before the next one.
 */
import * as http from "http";
import { ProxyRoute } from "../../components/caddyConfig";
import { ProxyConfigResult } from "../../components/reverseProxyNetwork";
import { sh } from "./host";
import { describeLoad, LoadReport, startLoad } from "./load";

/**
 * One request through the proxy on 127.0.0.1:`port`, without blocking the event loop (the load
 * runs in the same process); node:http, not fetch, which does not send a Host of our choosing.
 * `newConnection`: not on a kept-alive connection (one kept from before a reload may still
 * belong to the old HAProxy worker, which answers its next request with the old routes).
 */
export function requestThroughProxy(port: number, host: string, urlPath = "/", newConnection = false): Promise<{ status: string; body: string }> {
    return new Promise((resolve, reject) => {
        http.get(`http://127.0.0.1:${port}${urlPath}`, { ...(newConnection ? { agent: false } : {}), headers: { Host: host }, timeout: 5000 }, (res) => {
            let body = "";
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve({ status: String(res.statusCode), body: body.trim() }));
        }).on("error", reject);
    });
}

/** A container's identity: a replaced container has a new id, a restarted one a new start time. */
export function containerIdentity(name: string): { id: string; startedAt: string } {
    const [id, startedAt] = sh("docker", ["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", name]).trim().split(" ");
    return { id, startedAt };
}

/** One route change: the routes to apply, and the body each `host/path` must then answer with. */
export interface RouteChange {
    routes: ProxyRoute[];
    expect: Record<string, string>;
}

/** Applies `changes` route changes (cycling through `variants`), 500 ms apart, under both clients; returns their reports. */
export async function routeChangesUnderLoad(opts: {
    /** Prefix of the log lines. */
    label: string;
    /** The proxy's published port on 127.0.0.1. */
    port: number;
    /** Host header of the load. */
    host: string;
    changes: number;
    variants: RouteChange[];
    /** Runs the config step with these routes. */
    apply: (routes: ProxyRoute[]) => Promise<ProxyConfigResult>;
    /** One request through the proxy: its body. */
    get: (host: string, urlPath: string) => Promise<{ body: string }>;
}): Promise<{ keepAlive: LoadReport; fresh: LoadReport }> {
    const url = `http://127.0.0.1:${opts.port}/`;
    const keepAlive = startLoad({ url, host: opts.host, retryOnReusedConnection: true });
    const fresh = startLoad({ url, host: opts.host, keepAlive: false, workers: 2 });
    for (let n = 0; n < opts.changes; n++) {
        const v = opts.variants[n % opts.variants.length];
        const result = await opts.apply(v.routes);
        expect(result.applied).toBe("reloaded");
        for (const [target, body] of Object.entries(v.expect)) {
            const [host, ...rest] = target.split("/");
            const r = await opts.get(host, `/${rest.join("/")}`);
            expect({ target, body: r.body }).toEqual({ target, body });
        }
        await new Promise((r) => setTimeout(r, 500));
    }
    const reports = { keepAlive: await keepAlive.stop(), fresh: await fresh.stop() };
    console.log(describeLoad(`${opts.label}${opts.changes} route changes, keep-alive client`, reports.keepAlive));
    console.log(describeLoad(`${opts.label}${opts.changes} route changes, a new connection per request`, reports.fresh));
    return reports;
}
