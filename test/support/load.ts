/**
 * Bounded HTTP load for churn tests: a fixed number of workers, each sending one request at a
 * time over a keep-alive connection to a loopback address, with a short pause between requests.
 * Records every outcome, so a test can say how many failed and the longest time without a
 * successful response.
 */
import * as http from "http";

export interface LoadTarget {
    /** Loopback URL, e.g. http://127.0.0.1:18081/ */
    url: string;
    /** Host header (the route). */
    host: string;
    /** Concurrent workers. @default 4 */
    workers?: number;
    /** Pause after each request per worker, ms. @default 5 */
    pauseMs?: number;
    /** Per-request timeout, ms: longer than the proxy's own retry window. @default 15000 */
    timeoutMs?: number;
    /**
     * Keep connections open between requests (HTTP/1.1 keep-alive); false opens a new connection
     * for every request. @default true
     */
    keepAlive?: boolean;
    /**
     * Behave like Go's net/http Transport (and browsers, curl): a request that fails on a *reused*
     * keep-alive connection before any byte of a response arrived (the server closed that idle
     * connection as the request went out) is sent again, as RFC 9112 §9.3.1 expects of clients
     * ("connections can be closed at any time"). Like Go's `Transport.roundTrip` loop
     * (`pconn.shouldRetryRequest` holds only for a reused connection), it retries for as long as
     * the failure is on a reused connection: the next idle one in the pool may have been closed
     * by the same server shutdown. A failure on a new connection is a failure. Bounded at
     * {@link MAX_REUSED_RETRIES}. Counted in {@link LoadReport.retriedOnReusedConnection}. @default false
     */
    retryOnReusedConnection?: boolean;
}

export interface LoadOutcome {
    startMs: number;
    endMs: number;
    ok: boolean;
    /** HTTP status, or the error code. */
    result: string;
    /** The request went out on a reused keep-alive connection (only set for a failure). */
    reused?: boolean;
}

export interface LoadReport {
    requests: number;
    /** Requests sent again because the server closed their idle keep-alive connection first (see {@link LoadTarget.retryOnReusedConnection}). */
    retriedOnReusedConnection: number;
    failures: LoadOutcome[];
    /** Longest time between two successful responses (or from the start to the first), ms. */
    longestGapMs: number;
    /** When that gap started (ms since the load started). */
    longestGapAtMs: number;
    durationMs: number;
}

/**
 * The most times one request is sent again after failing on a reused connection: a pool holds at
 * most `workers` idle connections, and one server shutdown closes each of them once.
 */
export const MAX_REUSED_RETRIES = 16;

export function startLoad(target: LoadTarget): { stop: () => Promise<LoadReport> } {
    if (!/^http:\/\/(127\.0\.0\.1|\[::1\])[:/]/.test(target.url)) throw new Error(`load goes to loopback only, not ${target.url}`);
    const workers = target.workers ?? 4;
    const agent = new http.Agent({ keepAlive: target.keepAlive ?? true, maxSockets: workers });
    const outcomes: LoadOutcome[] = [];
    const t0 = Date.now();
    let running = true;
    let retriedOnReusedConnection = 0;

    const once = (startMs = Date.now() - t0, retriesLeft = target.retryOnReusedConnection ? MAX_REUSED_RETRIES : 0): Promise<LoadOutcome> =>
        new Promise<LoadOutcome>((resolve) => {
            const done = (ok: boolean, result: string, reused?: boolean) => resolve({ startMs, endMs: Date.now() - t0, ok, result, ...(ok ? {} : { reused }) });
            let responded = false;
            const req = http.get(target.url, { agent, headers: { Host: target.host }, timeout: target.timeoutMs ?? 15_000 }, (res) => {
                responded = true;
                res.resume();
                res.on("end", () => done(res.statusCode === 200, String(res.statusCode)));
                res.on("error", (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
            });
            req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
            req.on("error", (e: NodeJS.ErrnoException) => {
                // Node's own documented pattern (http.ClientRequest.reusedSocket): the connection was
                // idle in the pool and the server closed it as this request went out.
                if (retriesLeft > 0 && req.reusedSocket && !responded && ["ECONNRESET", "EPIPE"].includes(e.code ?? "")) {
                    retriedOnReusedConnection++;
                    once(startMs, retriesLeft - 1).then(resolve);
                    return;
                }
                done(false, e.code ?? e.message, req.reusedSocket);
            });
        });

    const loops = Array.from({ length: workers }, async () => {
        while (running) {
            outcomes.push(await once());
            await new Promise((r) => setTimeout(r, target.pauseMs ?? 5));
        }
    });

    return {
        stop: async () => {
            running = false;
            await Promise.all(loops);
            agent.destroy();
            const durationMs = Date.now() - t0;
            const successes = outcomes.filter((o) => o.ok).map((o) => o.endMs).sort((a, b) => a - b);
            let longestGapMs = 0;
            let longestGapAtMs = 0;
            let last = 0;
            for (const t of [...successes, durationMs]) {
                if (t - last > longestGapMs) [longestGapMs, longestGapAtMs] = [t - last, last];
                last = t;
            }
            return { requests: outcomes.length, retriedOnReusedConnection, failures: outcomes.filter((o) => !o.ok), longestGapMs, longestGapAtMs, durationMs };
        },
    };
}

/** One line for the test log. */
export function describeLoad(label: string, r: LoadReport): string {
    const kinds = new Map<string, number>();
    for (const f of r.failures) kinds.set(f.result, (kinds.get(f.result) ?? 0) + 1);
    const onReused = r.failures.filter((f) => f.reused).length;
    const failed = ([...kinds].map(([k, n]) => `${n}×${k}`).join(", ") || "none") + (onReused > 0 ? ` (${onReused} on a reused connection)` : "");
    const retried = r.retriedOnReusedConnection > 0 ? `, sent again after the server closed their idle keep-alive connection: ${r.retriedOnReusedConnection}` : "";
    return `${label}: ${r.requests} requests in ${(r.durationMs / 1000).toFixed(1)} s, failed: ${failed}${retried}, longest gap without a success ${r.longestGapMs} ms (at ${(r.longestGapAtMs / 1000).toFixed(1)} s)`;
}
