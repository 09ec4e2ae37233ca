/**
 * What the e2e tests do to a deployed stack from the outside: HTTPS through the proxy's
 * published port, waiting for a condition, comparing volume contents, reading engine events.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import Docker from "dockerode";
import * as fs from "fs";
import * as path from "path";

export interface ProxyTarget {
    /** The CA certificate (PEM file) the proxy's certificates chain to: the stack output `proxyCaCertificate`, or {@link caddyRootCert}. */
    caFile: string;
    /** The routed host name. */
    host: string;
    /** The published HTTPS port on 127.0.0.1. */
    httpsPort: number;
}

/** Where engine "caddy" keeps its internal CA's root certificate, in the proxy-data volume (host path). */
export function caddyRootCert(proxyDataPath: string): string {
    return path.join(proxyDataPath, "caddy/pki/authorities/local/root.crt");
}

/** HTTPS through the published port on 127.0.0.1, trusting only the stack's own internal CA. */
export function viaProxy(target: ProxyTarget, urlPath: string, opts: { data?: string } = {}): { status: number; body: string } {
    const args = ["-s", "--max-time", "10", "--cacert", target.caFile, "--resolve", `${target.host}:${target.httpsPort}:127.0.0.1`, "-w", "\n%{http_code}"];
    if (opts.data !== undefined) args.push("--data-binary", opts.data);
    const r = spawnSync("curl", [...args, `https://${target.host}:${target.httpsPort}${urlPath}`], { encoding: "utf8" });
    const lines = r.stdout.split("\n");
    return { status: Number(lines.pop()), body: lines.join("\n") + (r.status !== 0 ? r.stderr : "") };
}

/** Polls `probe` every 200 ms; resolves with the ms it took, or fails naming `what`. */
export async function untilTrue(what: string, seconds: number, probe: () => boolean | Promise<boolean>): Promise<number> {
    const start = Date.now();
    while (Date.now() - start < seconds * 1000) {
        if (await probe()) return Date.now() - start;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what}: not within ${seconds}s`);
}

/** A directory tree as "path mode size sha256" lines: equal listings mean equal data. */
export function treeListing(root: string): string[] {
    const lines: string[] = [];
    const walk = (rel: string) => {
        const full = path.join(root, rel);
        const st = fs.lstatSync(full);
        const sha = st.isFile() ? crypto.createHash("sha256").update(fs.readFileSync(full)).digest("hex") : "-";
        lines.push(`${rel} ${st.mode.toString(8)} ${st.isFile() ? st.size : "-"} ${sha}`);
        if (st.isDirectory()) for (const child of fs.readdirSync(full).sort()) walk(path.join(rel, child));
    };
    walk(".");
    return lines;
}

/** Engine events for one container between two times (ms). */
export async function containerEvents(docker: Docker, name: string, sinceMs: number, untilMs: number): Promise<{ action: string; id: string; timeNano: number; signal?: string }[]> {
    const stream = await docker.getEvents({ since: Math.floor(sinceMs / 1000), until: Math.ceil(untilMs / 1000) + 1, filters: { container: [name], type: ["container"] } });
    let text = "";
    for await (const chunk of stream as any) text += chunk;
    return text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .map((e) => ({ action: e.Action ?? e.status, id: e.id, timeNano: Number(e.timeNano), signal: e.Actor?.Attributes?.signal as string | undefined }))
        .filter((e) => e.timeNano >= sinceMs * 1e6);
}

/** Removes containers, the network and volumes an interrupted earlier run of a stack left. */
export async function removeStackLeftovers(docker: Docker, prefix: string, network: string): Promise<void> {
    for (const c of await docker.listContainers({ all: true, filters: { label: ["mmagent.container"] } })) {
        if (c.Names.some((n) => n.startsWith(`/${prefix}-`))) await docker.getContainer(c.Id).remove({ force: true });
    }
    for (const n of await docker.listNetworks({ filters: { name: [network] } })) if (n.Name === network) await docker.getNetwork(n.Id).remove();
    for (const v of (await docker.listVolumes()).Volumes ?? []) if (v.Name.startsWith(`${prefix}-`)) await docker.getVolume(v.Name).remove();
}
