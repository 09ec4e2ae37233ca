/**
 * StorageLayout: one ZFS dataset, Btrfs subvolume or directory per volume, tuned by profile,
 * bound into Docker as a named volume; a pre-change snapshot of a service's writable volumes
 * before its image changes; and a declarative restore.
 *
 * How the pre-change snapshot lands before the container is replaced: the snapshot command's
 * triggers hold the consuming service's image, so an image change replaces (re-runs) it, and the
 * service's container depends on it, so Pulumi creates the new container only after the
 * snapshot exists. The script stops the running container for a consistent snapshot and starts
 * it again; Pulumi then replaces it.
 */
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { configError } from "./config";
import { DEFAULT_STOP_GRACE_SECONDS } from "./container";
import { hostScriptCommand, parseScriptOutput } from "./hostScript";
import { LABELS, TOKENS } from "./tokens";
import { HostAccess, PROFILE_TUNING, SnapshotInfo, StorageBackend, StorageBackendChoice, VolumeProfile } from "./types";

/** One volume of a {@link StorageLayout}: what it holds, who writes it, and where its data comes from. */
export interface VolumeSpec {
    /** Volume name: the dataset/subvolume/directory under `root`, and part of the Docker volume name. */
    name: string;
    /** Filesystem tuning. */
    profile: VolumeProfile;
    /** Input data: mounted read-only and never snapshotted or restored with its service. @default false */
    readOnly?: boolean;
    /** Quota in GiB (ZFS `quota`, Btrfs qgroup limit; ignored by dir). @default none (no quota) */
    quotaGiB?: number;
    /**
     * The container that writes this volume: its image change triggers the pre-change snapshot.
     * @default none (the volume belongs to no service: no pre-change snapshot, no restore)
     */
    service?: string;
    /**
     * Mount this NFS export instead of a volume under `root` (read-only input data): no ensure
     * step, never snapshotted or restored.
     * @default none (a dataset, subvolume or directory under `root`)
     */
    nfs?: NfsSource;
}

/** An NFS export (config `services.<role>.extraVolumes[i].nfs`, validated there). */
export interface NfsSource {
    /** DNS name or IP address. */
    server: string;
    /** Absolute exported path. */
    export: string;
    /** Extra mount options from validators.ts `NFS_OPTIONS`. @default [] */
    options?: string[];
}

/** A service whose writable volumes are snapshotted before its image changes. */
export interface ServiceGuard {
    /** Container name (stopped for the snapshot and the restore). */
    container: string;
    /** The image the service is about to run. */
    image: string;
    /**
     * Restore the service's writable volumes from this snapshot (a {@link SnapshotInfo} `snapshot`
     * name) before it starts; a new value runs the restore again.
     * @default none (no restore)
     */
    restoreFrom?: string;
    /**
     * Seconds `docker stop` gives the service before SIGKILL when it is stopped for a snapshot or a
     * restore (its container's own grace).
     * @default 10 (container.ts `DEFAULT_STOP_GRACE_SECONDS`)
     */
    stopGraceSeconds?: number;
}

/** Inputs of {@link StorageLayout}. */
export interface StorageLayoutArgs {
    /** The host the storage lives on. */
    host: HostAccess;
    /**
     * zfs, btrfs, dir (plain directories: no snapshots, a warning at preview), or auto: a detect
     * step asks the host's storage script which of the three the root is (see storage.sh
     * `resolve_backend`); the placement check, the dir warning and the `placement` output use
     * that answer.
     */
    backend: StorageBackendChoice;
    /** zfs: parent dataset (`tank/mmagent`); btrfs: a path on a Btrfs filesystem; dir: any absolute path. */
    root: string;
    /** Volumes to create. */
    volumes: VolumeSpec[];
    /** Services keyed by container name, as referenced from `VolumeSpec.service`. @default {} (no snapshots, no restores) */
    services?: Record<string, ServiceGuard>;
    /** Snapshots to keep per volume (only `mmagent-*` ones are counted or pruned). @default 10 */
    keepSnapshots?: number;
    /** Prefix for the Docker volume names (`<prefix>-<volume name>`). @default the component name */
    dockerNamePrefix?: string;
    /** Resources the host steps wait for (e.g. the host preparation). @default [] (only the Pulumi resource options' own dependencies) */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
    /**
     * Where the last deployment put the storage (the stack's `storage` output). A different
     * backend or root is refused before anything runs: the volumes' data stays where it was and a
     * Docker volume cannot move. @default none (nothing to compare with)
     */
    previousPlacement?: pulumi.Input<StoragePlacement | undefined>;
}

/** Where a stack's volumes live: the backend as resolved on the host (never "auto"). */
export interface StoragePlacement {
    /** zfs, btrfs or dir: `StorageLayoutArgs.backend`, or what the detect step found for auto. */
    backend: StorageBackend;
    /** `StorageLayoutArgs.root`. */
    root: string;
}

/**
 * Refuses a storage move: a changed path replaces each Docker volume (create-before-delete of the
 * same name), Docker answers the create with the old volume, and the delete fails while
 * containers use it — on every `up` (docs/provider-behaviour.md, "Volumes").
 */
export function assertSamePlacement(previous: StoragePlacement | undefined, next: StoragePlacement): void {
    if (!previous?.root || (previous.root === next.root && previous.backend === next.backend)) return;
    const key = previous.backend === next.backend ? "storage.root" : "storage.backend";
    throw configError([
        {
            propertyPath: key,
            reason:
                `the last \`pulumi up\` put the volumes at ${previous.backend}:${previous.root}, this config says ${next.backend}:${next.root}. ` +
                `The data is still at ${previous.root} and Docker volumes cannot move. Set ${key} back; to move the data, run \`pulumi destroy\` ` +
                `(containers and Docker volumes go, the data stays on the host), move it to ${next.root}, then \`pulumi up\``,
        },
    ]);
}

/** One volume as {@link buildStorageLayout} created it. */
export interface StorageVolume {
    /** The volume as requested. */
    spec: VolumeSpec;
    /** Host path the volume binds (known after the ensure step); none for an NFS volume. */
    path?: pulumi.Output<string>;
    /** The Docker named volume containers mount: a bind of `path`, or the NFS export. */
    dockerVolume: docker.Volume;
    /** The host step that creates and tunes it; none for an NFS volume. */
    ensure?: command.local.Command | command.remote.Command;
}

/** The storage steps of one guarded service (one `StorageLayoutArgs.services` entry). */
export interface ServiceStorage {
    /** Stable id of the current change; names the pre-change snapshot. */
    changeId?: random.RandomId;
    /** The pre-change snapshot step; none for the dir backend or a service without writable volumes. */
    snapshot?: command.local.Command | command.remote.Command;
    /** The one-shot restore step, when `ServiceGuard.restoreFrom` is set. */
    restore?: command.local.Command | command.remote.Command;
    /** What a container must depend on: its pre-change snapshot and pending restore. */
    gates: pulumi.Resource[];
    /** The latest pre-change snapshot of the service's volumes; null when `auto` resolved to dir. */
    latestSnapshot?: pulumi.Output<SnapshotInfo | null>;
}

/** What {@link buildStorageLayout} created. */
export interface StorageLayoutParts {
    /** Volume name → its volume. */
    volumes: Record<string, StorageVolume>;
    /** Container name → its storage steps. */
    services: Record<string, ServiceStorage>;
    /** The backend the host uses: `args.backend`, or what the detect step found for auto. */
    backend: pulumi.Output<StorageBackend>;
    /** The detect step (backend auto only). */
    detect?: command.local.Command | command.remote.Command;
}

/** Name prefix of the pre-change snapshots (`mmagent-pre-<8 hex digits>`, the value for `restoreFrom`). */
export const SNAPSHOT_PREFIX = "mmagent-pre-";

/** Parameters of the detect step (backend auto). Exported for the host-side tests. */
export function detectParams(args: Pick<StorageLayoutArgs, "backend" | "root">): Record<string, string> {
    return { MMAGENT_ACTION: "detect", MMAGENT_BACKEND: args.backend, MMAGENT_ROOT: args.root };
}

/** Parameters of the ensure step for one volume. Exported for the host-side tests. */
export function ensureParams(args: Pick<StorageLayoutArgs, "backend" | "root">, vol: VolumeSpec): Record<string, string> {
    const tuning = PROFILE_TUNING[vol.profile];
    return {
        MMAGENT_ACTION: "ensure",
        MMAGENT_BACKEND: args.backend,
        MMAGENT_ROOT: args.root,
        MMAGENT_VOLUME: vol.name,
        MMAGENT_ZFS_PROPERTIES: Object.entries(tuning.zfs)
            .map(([k, val]) => `${k}=${val}`)
            .join(" "),
        MMAGENT_BTRFS_NOCOW: tuning.btrfsNoCow ? "1" : "0",
        MMAGENT_BTRFS_COMPRESSION: tuning.btrfsCompression,
        MMAGENT_QUOTA_GIB: vol.quotaGiB === undefined ? "" : String(vol.quotaGiB),
    };
}

/** Parameters of a service's pre-change snapshot step. Exported for the host-side tests. */
export function snapshotParams(
    args: Pick<StorageLayoutArgs, "backend" | "root" | "keepSnapshots">,
    volumes: string[],
    guard: ServiceGuard,
    snapshot: string,
): Record<string, string> {
    return {
        MMAGENT_ACTION: "snapshot",
        MMAGENT_BACKEND: args.backend,
        MMAGENT_ROOT: args.root,
        MMAGENT_VOLUMES: volumes.join(" "),
        MMAGENT_SNAPSHOT: snapshot,
        MMAGENT_KEEP: String(args.keepSnapshots ?? 10),
        MMAGENT_CONTAINER: guard.container,
        MMAGENT_STOP_TIMEOUT: String(guard.stopGraceSeconds ?? DEFAULT_STOP_GRACE_SECONDS),
        MMAGENT_NEXT_IMAGE: guard.image,
        MMAGENT_PROTECT: guard.restoreFrom ?? "",
    };
}

/** Parameters of a service's restore step. Exported for the host-side tests. */
export function restoreParams(args: Pick<StorageLayoutArgs, "backend" | "root">, volumes: string[], guard: ServiceGuard): Record<string, string> {
    return {
        MMAGENT_ACTION: "restore",
        MMAGENT_BACKEND: args.backend,
        MMAGENT_ROOT: args.root,
        MMAGENT_VOLUMES: volumes.join(" "),
        MMAGENT_SNAPSHOT: guard.restoreFrom ?? "",
        MMAGENT_CONTAINER: guard.container,
        MMAGENT_STOP_TIMEOUT: String(guard.stopGraceSeconds ?? DEFAULT_STOP_GRACE_SECONDS),
        MMAGENT_EXPECT_IMAGE: guard.image,
    };
}

/**
 * Mount options of an NFS volume: the safe defaults first, then the validated extras. `addr=` is
 * needed because moby mounts with mount(2), not mount.nfs, and the kernel takes an address, not a
 * name; dockerd resolves a non-IPv4 `addr=` value itself at mount time (moby
 * `volume/local/local_unix.go` `getMountOptions`, commit 00408909c50a).
 */
export function nfsMountOptions(nfs: NfsSource): string {
    return [`addr=${nfs.server}`, "nfsvers=4.2", "hard", "ro", ...(nfs.options ?? [])].join(",");
}

/**
 * The Docker volume of an NFS export: the `local` driver with `type`/`o`/`device`, the options
 * moby's local driver accepts (`validOpts`; `o` needs `type` and `device`, `mandatoryOpts`), and
 * `device` in the kernel's `:<export>` form (the server comes from `addr=`). Pure; the real test
 * creates exactly this on the engine (test/real/nfsVolume.test.ts).
 */
export function nfsVolumeArgs(dockerPrefix: string, vol: VolumeSpec & { nfs: NfsSource }) {
    return {
        name: `${dockerPrefix}-${vol.name}`,
        driver: "local",
        driverOpts: { type: "nfs", o: nfsMountOptions(vol.nfs), device: `:${vol.nfs.export}` },
        labels: [
            { label: "mmagent.volume", value: vol.name },
            { label: "mmagent.profile", value: vol.profile },
            { label: "mmagent.source", value: "nfs" },
            // Input data: the policy pack checks every mount of this volume is read-only.
            { label: LABELS.volumeAccess, value: "read-only" },
        ],
    };
}

const DIR_WARNING = (name: string, why: string) =>
    `${name}: storage backend ${why} takes no snapshots: an image upgrade that migrates a database cannot be rolled back. Use zfs or btrfs for data you keep.`;

/** Creates the resources of a {@link StorageLayout} under `parent`; the class is this plus its outputs. */
export function buildStorageLayout(name: string, args: StorageLayoutArgs, parent: pulumi.Resource): StorageLayoutParts {
    const hostOpts: pulumi.CustomResourceOptions = { parent, dependsOn: args.dependsOn };
    const dockerPrefix = args.dockerNamePrefix ?? name;

    if (args.backend === "dir") pulumi.log.warn(DIR_WARNING(name, `"dir"`), parent);

    // auto: the host's storage script decides, once; the answer is kept in the detect step's
    // state (re-asked only when backend or root change), so later runs compare against it.
    let detect: StorageLayoutParts["detect"];
    let backend: pulumi.Output<StorageBackend>;
    if (args.backend === "auto") {
        detect = hostScriptCommand(`${name}-detect`, args.host, { script: "storage", params: detectParams(args) }, hostOpts);
        backend = detect.stdout.apply((out) => {
            const found = parseScriptOutput<{ backend: StorageBackend }>(`${name}: detect`, out).backend;
            if (found === "dir") pulumi.log.warn(DIR_WARNING(name, `"auto" found no Btrfs or ZFS at ${args.root} and uses plain directories, which`), parent);
            return found;
        });
    } else {
        backend = pulumi.output(args.backend);
    }

    const volumes: Record<string, StorageVolume> = {};
    const placement = backend.apply((b): StoragePlacement => ({ backend: b, root: args.root }));
    // Checked where the previous outputs are known, also at preview: the parameters of each ensure step.
    const checked = pulumi.all([args.previousPlacement, placement]).apply(([previous, next]) => assertSamePlacement(previous, next));
    const ensureOpts: pulumi.CustomResourceOptions = detect ? { ...hostOpts, dependsOn: [...((args.dependsOn ?? []) as pulumi.Resource[]), detect] } : hostOpts;
    for (const vol of args.volumes) {
        if (vol.nfs) {
            // Nothing on the host to create, tune, snapshot or restore: dockerd mounts the export.
            const dockerVolume = new docker.Volume(`${name}-${vol.name}`, nfsVolumeArgs(dockerPrefix, vol as VolumeSpec & { nfs: NfsSource }), { parent });
            volumes[vol.name] = { spec: vol, dockerVolume };
            continue;
        }
        const params = checked.apply(() => ensureParams(args, vol));
        const ensure = hostScriptCommand(`${name}-${vol.name}-ensure`, args.host, { script: "storage", params }, ensureOpts);
        const path = pulumi.all([ensure.stdout, backend]).apply(([out, expected]) => {
            const r = parseScriptOutput<{ path: string; backend?: StorageBackend }>(`${name}: ensure ${vol.name}`, out);
            // The ensure step resolves auto again; a host that answers differently now is stopped here.
            if (r.backend && r.backend !== expected) {
                throw new Error(`${name}: ensure ${vol.name} used the ${r.backend} backend, but the storage was placed on ${expected}: check what is mounted at ${args.root}`);
            }
            return r.path;
        });
        const dockerVolume = new docker.Volume(
            `${name}-${vol.name}`,
            {
                name: `${dockerPrefix}-${vol.name}`,
                driver: "local",
                driverOpts: { type: "none", o: "bind", device: path },
                labels: [
                    { label: "mmagent.volume", value: vol.name },
                    { label: "mmagent.profile", value: vol.profile },
                    // Input data: the policy pack checks every mount of this volume is read-only.
                    { label: LABELS.volumeAccess, value: vol.readOnly ? "read-only" : "read-write" },
                ],
            },
            { parent },
        );
        volumes[vol.name] = { spec: vol, path, dockerVolume, ensure };
    }

    const services: Record<string, ServiceStorage> = {};
    for (const [container, guard] of Object.entries(args.services ?? {})) {
        const writable = args.volumes.filter((v) => v.service === container && !v.readOnly && !v.nfs);
        const ensured = writable.map((v) => volumes[v.name].ensure!);
        if (args.backend === "dir" || writable.length === 0) {
            services[container] = { gates: ensured };
            continue;
        }
        const names = writable.map((v) => v.name);
        // A new id whenever the image changes: it names the snapshot taken before that change.
        const changeId = new random.RandomId(`${name}-${container}-change`, { byteLength: 4, keepers: { image: guard.image } }, { parent });
        const snapshotName = pulumi.interpolate`${SNAPSHOT_PREFIX}${changeId.hex}`;
        const snapshot = hostScriptCommand(
            `${name}-${container}-pre-change`,
            args.host,
            {
                script: "storage",
                params: snapshotName.apply((snap) => snapshotParams(args, names, guard, snap)),
                triggers: [guard.image, changeId.hex],
            },
            { parent, dependsOn: ensured },
        );
        // {"snapshot": null} when auto resolved to dir: the step ran, nothing was taken.
        const latestSnapshot = snapshot.stdout.apply((out) => {
            const info = parseScriptOutput<SnapshotInfo | { snapshot: null }>(`${name}: snapshot ${container}`, out);
            return info.snapshot === null ? null : (info as SnapshotInfo);
        });
        const gates: pulumi.Resource[] = [snapshot];
        let restore: ServiceStorage["restore"];
        if (guard.restoreFrom) {
            restore = hostScriptCommand(
                `${name}-${container}-restore`,
                args.host,
                // One-shot: only a new restoreFrom runs it again.
                { script: "storage", params: restoreParams(args, names, guard), triggers: [guard.restoreFrom], onUpdate: "nothing" },
                { parent, dependsOn: [snapshot] },
            );
            gates.push(restore);
        }
        services[container] = { changeId, snapshot, restore, gates, latestSnapshot };
    }
    return { volumes, services, backend, detect };
}

/** The component; see the module comment and {@link StorageLayoutArgs}. */
export class StorageLayout extends pulumi.ComponentResource {
    /** Volume name → its volume. */
    public readonly volumes: Record<string, StorageVolume>;
    /** Container name → its storage steps. */
    public readonly services: Record<string, ServiceStorage>;
    /** Volume name → host path (NFS volumes have none). */
    public readonly paths: pulumi.Output<Record<string, string>>;
    /** Container name → latest pre-change snapshot (empty for the dir backend, also when auto resolved to dir). */
    public readonly latestSnapshots: pulumi.Output<Record<string, SnapshotInfo>>;
    /** Where the volumes are, with the backend as resolved on the host: the stack's `storage` output. */
    public readonly placement: pulumi.Output<StoragePlacement>;

    constructor(name: string, args: StorageLayoutArgs, opts?: pulumi.ComponentResourceOptions) {
        super(TOKENS.storageLayout, name, {}, opts);
        const parts = buildStorageLayout(name, args, this);
        this.volumes = parts.volumes;
        this.services = parts.services;
        this.paths = pulumi.output(
            Object.fromEntries(
                Object.entries(parts.volumes)
                    .filter(([, vol]) => vol.path)
                    .map(([k, vol]) => [k, vol.path!]),
            ),
        );
        const snapshots: Record<string, pulumi.Output<SnapshotInfo | null>> = Object.fromEntries(
            Object.entries(parts.services)
                .filter(([, s]) => s.latestSnapshot)
                .map(([k, s]) => [k, s.latestSnapshot!]),
        );
        this.latestSnapshots = pulumi
            .output(snapshots)
            .apply((all) => Object.fromEntries(Object.entries(all).filter((e): e is [string, SnapshotInfo] => e[1] !== null)));
        this.placement = parts.backend.apply((backend) => ({ backend, root: args.root }));
        this.registerOutputs({ paths: this.paths, latestSnapshots: this.latestSnapshots, placement: this.placement });
    }

    /** Resources a container must wait for before (re)starting with new data or a new image. */
    gatesFor(container: string): pulumi.Resource[] {
        return this.services[container]?.gates ?? [];
    }

    /** A volume by name; throws naming the known volumes when there is none. */
    volume(name: string): StorageVolume {
        const vol = this.volumes[name];
        if (!vol) throw new Error(`no storage volume "${name}"; known: ${Object.keys(this.volumes).join(", ")}`);
        return vol;
    }

    /** Host path of a volume under the storage root (not an NFS one). */
    hostPath(name: string): pulumi.Output<string> {
        const vol = this.volume(name);
        if (!vol.path) throw new Error(`storage volume "${name}" is an NFS export: it has no host path`);
        return vol.path;
    }
}
