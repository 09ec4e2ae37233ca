/**
 * `mmagent status`: the stack's state on its host at a glance, read-only.
 *
 * Two read-only host scripts answer: status.sh (the engine's own `docker inspect` JSON of the
 * stack's containers and their images, and its storage driver) and storage.sh `list` (per volume:
 * path, used and quota bytes, the snapshot it was last restored from, every snapshot with the
 * image and volume size it recorded). Everything else is computed here by pure functions that the
 * tests call: summarizeStatus, renderTable, renderPrometheus.
 */
import { containerName } from "../components/roles";
import { proxyImage, SERVICE_ROLES, ServiceRole, StackConfig } from "../components/config";
import { planVolumes, proxyContainerName } from "../components/stack";
import { HostRunner, scriptJson } from "./hostRun";

/** A snapshot as storage.sh `list` reports it (fields it did not record are ""/null). */
export interface ListedSnapshot {
    name: string;
    createdAt: string;
    image: string;
    imageId: string;
    imageDigest: string;
    nextImage: string;
    bytes: number | null;
}

export interface ListedVolume {
    path: string;
    exists: boolean;
    usedBytes: number | null;
    /** The quota the backend enforces (ZFS `quota`, Btrfs qgroup limit); null when none. */
    quotaBytes: number | null;
    /** The snapshot the live volume was last restored from ("" when never). */
    restoredFrom: string;
    /** Oldest first. */
    snapshots: ListedSnapshot[];
}

/** storage.sh `list` output. */
export interface StorageListing {
    requested: string;
    backend: "zfs" | "btrfs" | "dir";
    root: string;
    volumes: Record<string, ListedVolume>;
}

/** status.sh output: the engine's JSON, of which only these fields are read. */
export interface EngineListing {
    driver: string;
    dockerVersion: string;
    containers: {
        Name: string;
        Image: string;
        Config: { Image: string };
        State: { Status: string; Running: boolean; StartedAt: string; Health?: { Status: string } };
    }[];
    images: { Id: string; RepoDigests?: string[] | null }[];
    missing: string[];
}

export interface ServiceStatus {
    /** Role, or "proxy". */
    role: string;
    container: string;
    /** created, running, restarting, exited, … or "missing". */
    state: string;
    /** healthy, unhealthy, starting, or "none" (no healthcheck) / "" (missing). */
    health: string;
    /** The reference the container was created with. */
    image: string;
    /** Its registry digest (`repo@sha256:…`), or "" for an image built on the host. */
    imageDigest: string;
    /** The image ID the engine runs. */
    imageId: string;
    /** The image the config declares (a difference means an `up` is pending). */
    configuredImage: string;
}

export interface VolumeStatus {
    name: string;
    /** The container that writes it. */
    service: string;
    path: string;
    exists: boolean;
    usedBytes: number | null;
    quotaBytes: number | null;
    /** "host" when the backend enforces the quota, "config" when only declared (dir backend). */
    quotaSource: "host" | "config" | "none";
    /** used / quota, 0–100+ (null without a quota). */
    usedPercent: number | null;
    snapshotCount: number;
    latestSnapshot: ListedSnapshot | null;
    oldestSnapshot: ListedSnapshot | null;
    /** The configured `restoreFrom` when it has not been applied yet, else null. */
    pendingRestore: string | null;
    /** Least-squares growth over the sizes recorded with the snapshots and now; null with fewer than two points or under an hour of history. */
    growthBytesPerDay: number | null;
    /** Days until the quota at that growth; null without a quota or without growth. */
    daysUntilFull: number | null;
}

export interface Finding {
    level: "problem" | "warning";
    /** What it is about: a container or volume name, or "docker". */
    subject: string;
    message: string;
}

export interface StatusReport {
    stack: string;
    backend: string;
    dockerVersion: string;
    storageDriver: string;
    services: ServiceStatus[];
    volumes: VolumeStatus[];
    findings: Finding[];
    /** Percent used at which a volume is a problem. */
    thresholdPercent: number;
    /** True when no finding is a problem: the exit code is 0. */
    ok: boolean;
}

/** What status reads on the host: the stack's containers and its snapshot-able volumes. */
export function statusTargets(config: StackConfig): { containers: { role: string; container: string; image: string }[]; volumes: { name: string; service: string }[] } {
    const containers = SERVICE_ROLES.filter((r) => config.services[r].enabled).map((r) => ({
        role: r as string,
        container: containerName(config.namePrefix, r),
        image: config.services[r].image,
    }));
    containers.push({ role: "proxy", container: proxyContainerName(config), image: proxyImage(config) });
    // NFS inputs live on another machine: nothing of them is on this host's storage root.
    const volumes = planVolumes(config)
        .filter((v) => !v.nfs)
        .map((v) => ({ name: v.name, service: v.service ?? "" }));
    return { containers, volumes };
}

/** Runs the two read-only host scripts. */
export async function collectStatus(config: StackConfig, run: HostRunner): Promise<{ engine: EngineListing; storage: StorageListing }> {
    const targets = statusTargets(config);
    const engine = scriptJson<EngineListing>("status.sh", await run("status", { MMAGENT_CONTAINERS: targets.containers.map((c) => c.container).join(" ") }));
    const storage = scriptJson<StorageListing>(
        "storage.sh list",
        await run("storage", {
            MMAGENT_ACTION: "list",
            MMAGENT_BACKEND: config.storage.backend,
            MMAGENT_ROOT: config.storage.root,
            MMAGENT_VOLUMES: targets.volumes.map((v) => v.name).join(" "),
        }),
    );
    return { engine, storage };
}

/** `docker.io/library/redis` → `redis`: the form RepoDigests use (as storage.sh `familiar`). */
function familiar(repo: string): string {
    return repo.replace(/^(docker\.io|index\.docker\.io)\//, "").replace(/^library\//, "");
}

/** The repository of a reference: without digest and tag. */
export function repositoryOf(ref: string): string {
    const noDigest = ref.split("@")[0];
    const slash = noDigest.lastIndexOf("/");
    const colon = noDigest.lastIndexOf(":");
    return familiar(colon > slash ? noDigest.slice(0, colon) : noDigest);
}

/** The registry digest of an image for the reference's repository, "" when it has none. */
export function registryDigest(ref: string, repoDigests: readonly string[] | null | undefined): string {
    const repo = repositoryOf(ref);
    const d = (repoDigests ?? []).find((x) => familiar(x.split("@")[0]) === repo);
    return d ? `${repo}@${d.split("@")[1]}` : "";
}

const DAY_MS = 86_400_000;

/**
 * Points closer together than this give no growth figure: minutes of writes extrapolated to a
 * day say nothing about when a quota fills.
 */
export const MIN_GROWTH_SPAN_MS = 3_600_000;

/** Least-squares slope in bytes per day; null with fewer than two points or a span under {@link MIN_GROWTH_SPAN_MS}. */
export function growthPerDay(points: { at: number; bytes: number }[]): number | null {
    if (points.length < 2) return null;
    const times = points.map((p) => p.at);
    if (Math.max(...times) - Math.min(...times) < MIN_GROWTH_SPAN_MS) return null;
    const n = points.length;
    const mx = points.reduce((s, p) => s + p.at, 0) / n;
    const my = points.reduce((s, p) => s + p.bytes, 0) / n;
    const sxx = points.reduce((s, p) => s + (p.at - mx) ** 2, 0);
    if (sxx === 0) return null;
    const sxy = points.reduce((s, p) => s + (p.at - mx) * (p.bytes - my), 0);
    return (sxy / sxx) * DAY_MS;
}

export interface SummarizeOptions {
    stack: string;
    /** ms since the epoch. */
    now: number;
    /** @default 85 */
    thresholdPercent?: number;
}

/** The report, from the config and what the host said. Pure. */
export function summarizeStatus(config: StackConfig, engine: EngineListing, storage: StorageListing, opts: SummarizeOptions): StatusReport {
    const threshold = opts.thresholdPercent ?? 85;
    const findings: Finding[] = [];
    const targets = statusTargets(config);
    const byName = new Map(engine.containers.map((c) => [c.Name.replace(/^\//, ""), c]));
    const images = new Map(engine.images.map((i) => [i.Id, i]));

    const services: ServiceStatus[] = targets.containers.map((t) => {
        const c = byName.get(t.container);
        if (!c) {
            findings.push({ level: "problem", subject: t.container, message: "no such container: run `pulumi up`" });
            return { role: t.role, container: t.container, state: "missing", health: "", image: "", imageDigest: "", imageId: "", configuredImage: t.image };
        }
        const health = c.State.Health?.Status ?? "none";
        if (!c.State.Running) findings.push({ level: "problem", subject: t.container, message: `not running (${c.State.Status})` });
        else if (health === "unhealthy") findings.push({ level: "problem", subject: t.container, message: "unhealthy: see docker inspect --format '{{json .State.Health}}'" });
        else if (health === "starting") findings.push({ level: "warning", subject: t.container, message: "health check still starting" });
        if (c.Config.Image !== t.image) {
            findings.push({ level: "warning", subject: t.container, message: `runs ${c.Config.Image}, the config says ${t.image}: an \`up\` is pending` });
        }
        return {
            role: t.role,
            container: t.container,
            state: c.State.Status,
            health,
            image: c.Config.Image,
            imageDigest: registryDigest(c.Config.Image, images.get(c.Image)?.RepoDigests),
            imageId: c.Image,
            configuredImage: t.image,
        };
    });

    const restoreOf = (service: string): string | undefined => {
        const role = SERVICE_ROLES.find((r) => containerName(config.namePrefix, r) === service) as ServiceRole | undefined;
        return role ? config.services[role].restoreFrom : undefined;
    };
    const planned = new Map(planVolumes(config).map((v) => [v.name, v]));
    const volumes: VolumeStatus[] = targets.volumes.map((t) => {
        const l: ListedVolume = storage.volumes[t.name] ?? { path: "", exists: false, usedBytes: null, quotaBytes: null, restoredFrom: "", snapshots: [] };
        const declared = planned.get(t.name)?.quotaGiB;
        const quotaBytes = l.quotaBytes ?? (declared !== undefined ? Math.round(declared * 1024 ** 3) : null);
        const quotaSource = l.quotaBytes !== null ? "host" : declared !== undefined ? "config" : "none";
        const usedPercent = quotaBytes && l.usedBytes !== null ? (100 * l.usedBytes) / quotaBytes : null;
        const points = l.snapshots.filter((s) => s.bytes !== null).map((s) => ({ at: Date.parse(s.createdAt), bytes: s.bytes as number }));
        if (l.usedBytes !== null) points.push({ at: opts.now, bytes: l.usedBytes });
        const growth = growthPerDay(points.filter((p) => Number.isFinite(p.at)));
        const daysUntilFull = quotaBytes && l.usedBytes !== null && growth !== null && growth > 0 ? Math.max(0, (quotaBytes - l.usedBytes) / growth) : null;
        const wanted = restoreOf(t.service);
        const pendingRestore = wanted && wanted !== l.restoredFrom && !planned.get(t.name)?.readOnly ? wanted : null;
        if (!l.exists) findings.push({ level: "problem", subject: t.name, message: `volume missing at ${l.path || "its path"}: run \`pulumi up\`` });
        if (usedPercent !== null && usedPercent >= threshold) {
            findings.push({ level: "problem", subject: t.name, message: `${usedPercent.toFixed(1)}% of its quota used (threshold ${threshold}%)` });
        }
        if (pendingRestore) findings.push({ level: "warning", subject: t.name, message: `restoreFrom ${pendingRestore} is configured but not applied yet: run \`pulumi up\`` });
        return {
            name: t.name,
            service: t.service,
            path: l.path,
            exists: l.exists,
            usedBytes: l.usedBytes,
            quotaBytes,
            quotaSource,
            usedPercent,
            snapshotCount: l.snapshots.length,
            latestSnapshot: l.snapshots.at(-1) ?? null,
            oldestSnapshot: l.snapshots[0] ?? null,
            pendingRestore,
            growthBytesPerDay: growth,
            daysUntilFull,
        };
    });
    if (engine.driver !== "overlay2") {
        findings.push({ level: "warning", subject: "docker", message: `storage driver is ${engine.driver}, not overlay2 (the driver the source articles and Docker recommend)` });
    }
    if (storage.backend === "dir") {
        findings.push({ level: "warning", subject: "storage", message: `backend dir (${storage.requested === "auto" ? "auto found no Btrfs or ZFS at " + storage.root : "configured"}): no snapshots before image changes` });
    }
    // Nothing of the stack on this host: one finding says so instead of one per piece.
    if (services.every((s) => s.state === "missing") && volumes.every((v) => !v.exists)) {
        const rest = findings.filter((f) => f.subject === "docker" || f.subject === "storage");
        findings.length = 0;
        findings.push({ level: "problem", subject: "stack", message: `nothing of stack ${opts.stack} is on this host (no container, no volume): deploy it with \`pulumi up\`` }, ...rest);
    }
    return {
        stack: opts.stack,
        backend: storage.backend,
        dockerVersion: engine.dockerVersion,
        storageDriver: engine.driver,
        services,
        volumes,
        findings,
        thresholdPercent: threshold,
        ok: !findings.some((f) => f.level === "problem"),
    };
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number | null): string {
    if (n === null) return "-";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function table(rows: string[][]): string {
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")).join("\n");
}

const shortId = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);

/** The human table. */
export function renderTable(r: StatusReport): string {
    const services = table([
        ["SERVICE", "CONTAINER", "STATE", "HEALTH", "IMAGE", "DIGEST"],
        ...r.services.map((s) => [s.role, s.container, s.state, s.health || "-", s.image || "-", s.imageDigest ? s.imageDigest.split("@")[1].slice(0, 19) : s.imageId ? `id ${shortId(s.imageId)}` : "-"]),
    ]);
    const volumes = table([
        ["VOLUME", "USED", "QUOTA", "USE%", "SNAPSHOTS", "LATEST", "OLDEST", "FULL IN", "RESTORE"],
        ...r.volumes.map((v) => [
            v.name,
            formatBytes(v.usedBytes),
            v.quotaBytes === null ? "-" : `${formatBytes(v.quotaBytes)}${v.quotaSource === "config" ? "*" : ""}`,
            v.usedPercent === null ? "-" : `${v.usedPercent.toFixed(1)}%`,
            String(v.snapshotCount),
            v.latestSnapshot ? `${v.latestSnapshot.name} (${v.latestSnapshot.createdAt.slice(0, 16).replace("T", " ")})` : "-",
            v.oldestSnapshot ? v.oldestSnapshot.createdAt.slice(0, 16).replace("T", " ") : "-",
            v.daysUntilFull === null ? "-" : `${v.daysUntilFull < 10 ? v.daysUntilFull.toFixed(1) : Math.round(v.daysUntilFull)} d`,
            v.pendingRestore ? `pending ${v.pendingRestore}` : "-",
        ]),
    ]);
    const lines = [
        `stack ${r.stack}: docker ${r.dockerVersion}, storage driver ${r.storageDriver}, volumes on ${r.backend}`,
        "",
        services,
        "",
        volumes,
    ];
    if (r.volumes.some((v) => v.quotaSource === "config")) lines.push("  * declared in config; the dir backend does not enforce it");
    lines.push("");
    if (r.findings.length === 0) lines.push("ok: nothing needs attention");
    for (const f of r.findings) lines.push(`${f.level === "problem" ? "PROBLEM" : "warning"} ${f.subject}: ${f.message}`);
    return lines.join("\n") + "\n";
}

function labels(l: Record<string, string>): string {
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    return `{${Object.entries(l)
        .map(([k, v]) => `${k}="${esc(v)}"`)
        .join(",")}}`;
}

/** The node-exporter textfile collector format (one `# HELP`/`# TYPE` per metric). */
export function renderPrometheus(r: StatusReport): string {
    const out: string[] = [];
    const metric = (name: string, help: string, samples: [Record<string, string>, number | null][]) => {
        const present = samples.filter((s): s is [Record<string, string>, number] => s[1] !== null && Number.isFinite(s[1]));
        if (present.length === 0) return;
        out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
        for (const [l, v] of present) out.push(`${name}${labels({ stack: r.stack, ...l })} ${v}`);
    };
    metric("mmagent_container_running", "1 when the container is running.", r.services.map((s) => [{ role: s.role, container: s.container }, s.state === "running" ? 1 : 0]));
    metric("mmagent_container_healthy", "1 when the container's healthcheck reports healthy.", r.services.map((s) => [{ role: s.role, container: s.container }, s.health === "healthy" ? 1 : 0]));
    metric("mmagent_container_image_info", "The image a container runs (always 1).", r.services.filter((s) => s.image).map((s) => [{ container: s.container, image: s.image, digest: s.imageDigest, image_id: s.imageId }, 1]));
    const v = (name: string, help: string, f: (x: VolumeStatus) => number | null) => metric(name, help, r.volumes.map((x) => [{ volume: x.name, service: x.service }, f(x)]));
    v("mmagent_volume_used_bytes", "Bytes used by the volume.", (x) => x.usedBytes);
    v("mmagent_volume_quota_bytes", "The volume's quota in bytes.", (x) => x.quotaBytes);
    v("mmagent_volume_used_ratio", "Used bytes over the quota (0-1).", (x) => (x.usedPercent === null ? null : x.usedPercent / 100));
    v("mmagent_volume_snapshots", "Snapshots of the volume this project made.", (x) => x.snapshotCount);
    v("mmagent_volume_latest_snapshot_timestamp_seconds", "When the latest snapshot was taken.", (x) => (x.latestSnapshot ? Date.parse(x.latestSnapshot.createdAt) / 1000 : null));
    v("mmagent_volume_oldest_snapshot_timestamp_seconds", "When the oldest snapshot was taken.", (x) => (x.oldestSnapshot ? Date.parse(x.oldestSnapshot.createdAt) / 1000 : null));
    v("mmagent_volume_growth_bytes_per_day", "Growth from the sizes recorded with each snapshot.", (x) => x.growthBytesPerDay);
    v("mmagent_volume_days_until_full", "Days until the quota at the current growth.", (x) => x.daysUntilFull);
    v("mmagent_volume_restore_pending", "1 when a configured restoreFrom is not applied yet.", (x) => (x.pendingRestore ? 1 : 0));
    metric("mmagent_docker_storage_driver_info", "The engine's storage driver (always 1).", [[{ driver: r.storageDriver }, 1]]);
    metric("mmagent_status_problems", "Findings that need attention (the exit code is 1 when above 0).", [[{}, r.findings.filter((f) => f.level === "problem").length]]);
    return out.join("\n") + "\n";
}
