/**
 * StorageLayout for every Pulumi language: the TypeScript API's StorageLayout
 * (components/storageLayout.ts) behind inputs the schema inference can express. Volumes and
 * service guards are lists of flat objects (an NFS source is three fields of its volume), the
 * host is the flat `ssh*` inputs, and what other components need from it are outputs: the Docker
 * volume names, the host paths, and `gates` (the storage steps a container must wait for)
 * instead of the `volume()`/`gatesFor()` methods.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import {
    NfsSource,
    ServiceGuard as CoreServiceGuard,
    StorageLayout as CoreStorageLayout,
    StorageLayoutArgs as CoreStorageLayoutArgs,
    StoragePlacement as CoreStoragePlacement,
    VolumeSpec,
} from "../../components/storageLayout";
import { SnapshotInfo as CoreSnapshotInfo, StorageBackend as CoreStorageBackend, VOLUME_PROFILES, VolumeProfile as CoreVolumeProfile } from "../../components/types";
import * as v from "../../components/validators";
import { checkLocalConnection, checkPlainConnection, connectionConfig, CONNECTION_PATHS, HostConnectionArgs, hostAccess, hostDockerProvider, optionDependsOn } from "../hostAccess";
import { PROVIDER_TOKENS } from "../tokens";
import { inputError, InputChecker, joinPath, withoutNulls } from "../validation";
import { checkDockerSshDir } from "./nvidiaHost";

/** Where the volumes live. */
export const StorageBackend = {
    /** The host's storage script decides: ZFS for a dataset name (`tank/mmagent`), Btrfs for a path on Btrfs, plain directories otherwise. */
    Auto: "auto",
    /** ZFS datasets under a parent dataset. */
    Zfs: "zfs",
    /** Btrfs subvolumes under a path on a Btrfs filesystem. */
    Btrfs: "btrfs",
    /** Plain directories: no snapshots (a warning at preview). */
    Dir: "dir",
} as const;
export type StorageBackend = (typeof StorageBackend)[keyof typeof StorageBackend];

/** What a volume holds; decides the filesystem tuning. */
export const VolumeProfile = {
    /** Databases: ZFS recordsize 16K, lz4, logbias latency; Btrfs no-CoW. */
    Db: "db",
    /** Already-compressed media: 1M records, no compression. */
    Media: "media",
    /** Model weights: 1M records, lz4. */
    Models: "models",
    /** Logs: 128K records, zstd. */
    Logs: "logs",
    /** Text: 128K records, zstd. */
    Text: "text",
    /** Caches: 128K records, lz4. */
    Cache: "cache",
} as const;
export type VolumeProfile = (typeof VolumeProfile)[keyof typeof VolumeProfile];

/** One volume: a ZFS dataset, Btrfs subvolume or directory under `root` (or an NFS export), bound into Docker as a named volume. */
export interface Volume {
    /** Volume name (2-32 lowercase letters, digits, '-'): the dataset/subvolume/directory under `root`, and the Docker volume's name after `<dockerNamePrefix>-`. */
    name: string;
    /** Filesystem tuning. */
    profile: VolumeProfile;
    /** Input data: mounted read-only and never snapshotted or restored with its service. Required for an NFS volume. Default: false. */
    readOnly?: boolean;
    /** Quota in GiB (ZFS `quota`, Btrfs qgroup limit; ignored by dir). Default: no quota. */
    quotaGiB?: number;
    /** The container that writes this volume (a `services` entry): its image change triggers the pre-change snapshot. Default: none. */
    service?: string;
    /** Mount this NFS server's export instead of a volume under `root` (read-only input data; dockerd mounts it). Default: none. */
    nfsServer?: string;
    /** The exported path, absolute; required with `nfsServer`. */
    nfsExport?: string;
    /** Extra NFS mount options from the allow-list (rsize=, wsize=, timeo=, retrans=, nconnect=, actimeo=, noresvport). Default: []. */
    nfsOptions?: string[];
}

/** A container whose writable volumes are snapshotted before its image changes. */
export interface ServiceGuard {
    /** Container name (stopped for the snapshot and the restore). */
    container: string;
    /** The image the container is about to run: a change takes a snapshot first. */
    image: string;
    /** Restore the container's writable volumes from this snapshot (a `latestSnapshots` name) before it starts. Default: none. */
    restoreFrom?: string;
    /** Seconds `docker stop` gives the container before SIGKILL when it is stopped for a snapshot or a restore. Default: 10. */
    stopGraceSeconds?: number;
}

/** Where a stack's volumes live, with the backend as resolved on the host (never "auto"). */
export interface StoragePlacement {
    /** zfs, btrfs or dir. */
    backend: string;
    /** The storage root. */
    root: string;
}

/** A pre-change snapshot of a container's writable volumes. */
export interface SnapshotInfo {
    /** Snapshot name, e.g. `mmagent-pre-1a2b3c4d`: the value for `restoreFrom`. */
    snapshot: string;
    /** ISO 8601 time the snapshot was taken. */
    createdAt: string;
    /** Image of the container whose data the snapshot holds ("" when none ran yet). */
    image: string;
    /** The ID (`sha256:…`) of the image the container ran ("" when unknown). */
    imageId: string;
    /** That image's registry digest ("" for an image never pulled). */
    imageDigest: string;
    /** The image the change was about to deploy. */
    nextImage: string;
    /** Volume name → snapshot path or ZFS snapshot name. */
    volumes: { [volume: string]: string };
    /** Volume name → used bytes when the snapshot was taken (volumes whose size is unknown are left out). */
    bytes: { [volume: string]: number };
}

export interface StorageLayoutArgs extends HostConnectionArgs {
    /** zfs, btrfs, dir, or auto (the host's storage script decides). Default: "auto". */
    backend?: StorageBackend;
    /** zfs: parent dataset (`tank/mmagent`); btrfs/dir: an absolute path; auto: either. */
    root: string;
    /** Volumes to create. */
    volumes: Volume[];
    /** Containers whose writable volumes (`Volume.service`) are snapshotted before their image changes. Default: []. */
    services?: ServiceGuard[];
    /** Snapshots to keep per volume (only `mmagent-*` ones are counted or pruned). Default: 10. */
    keepSnapshots?: number;
    /** Prefix of the Docker volume names (`<prefix>-<volume>`). Default: the component name. */
    dockerNamePrefix?: string;
    /**
     * Where the last deployment put the storage (this component's `placement` output, e.g. through
     * a stack reference): a different backend or root is refused before anything runs, since the
     * data stays where it was and a Docker volume cannot move. Default: none.
     */
    previousPlacement?: pulumi.Input<StoragePlacement>;
}

/** Volumes for a stack on the host, tuned per profile, with pre-change snapshots and declarative restores. */
export class StorageLayout extends pulumi.ComponentResource {
    /** Volume name → host path (NFS volumes have none). */
    public readonly paths: pulumi.Output<{ [volume: string]: string }>;
    /** Volume name → Docker volume name: what ReverseProxyNetwork and MultimodalAgentStack mount. */
    public readonly dockerVolumeNames: pulumi.Output<{ [volume: string]: string }>;
    /** Container name → latest pre-change snapshot (none for the dir backend). */
    public readonly latestSnapshots: pulumi.Output<{ [container: string]: SnapshotInfo }>;
    /** Where the volumes are, with the backend as resolved on the host. */
    public readonly placement: pulumi.Output<StoragePlacement>;
    /**
     * Container name → the storage steps it must wait for (its pre-change snapshot and pending
     * restore; the ensure steps for the dir backend), as their URNs separated by spaces. Pass it
     * as `storageGates` to ReverseProxyNetwork and MultimodalAgentStack.
     */
    public readonly gates: pulumi.Output<{ [container: string]: string }>;

    constructor(name: string, args: StorageLayoutArgs, opts?: pulumi.ComponentResourceOptions) {
        const plain = withoutNulls(args ?? ({} as StorageLayoutArgs));
        const real = storageLayoutArgs(name, plain);
        super(PROVIDER_TOKENS.storageLayout, name, {}, opts);
        const dependsOn = optionDependsOn(opts);
        const dockerProvider = hostDockerProvider(name, real.host, plain.dockerSshDir, { parent: this, dependsOn });
        const storage = new CoreStorageLayout(name, { ...real, dependsOn }, { parent: this, providers: [dockerProvider] });
        this.paths = storage.paths;
        this.dockerVolumeNames = pulumi.output(Object.fromEntries(Object.entries(storage.volumes).map(([k, vol]) => [k, vol.dockerVolume.name])));
        this.latestSnapshots = storage.latestSnapshots.apply((all) => Object.fromEntries(Object.entries(all).map(([k, s]) => [k, snapshotInfo(s)])));
        this.placement = storage.placement.apply((p) => ({ backend: p.backend, root: p.root }));
        this.gates = pulumi.output(
            Object.fromEntries(Object.keys(storage.services).map((c) => [c, pulumi.all(storage.gatesFor(c).map((r) => r.urn)).apply((urns) => urns.join(" "))])),
        );
        this.registerOutputs({
            paths: this.paths,
            dockerVolumeNames: this.dockerVolumeNames,
            latestSnapshots: this.latestSnapshots,
            placement: this.placement,
            gates: this.gates,
        });
    }
}

function snapshotInfo(s: CoreSnapshotInfo): SnapshotInfo {
    const bytes = Object.fromEntries(Object.entries(s.bytes ?? {}).filter((e): e is [string, number] => typeof e[1] === "number"));
    return {
        snapshot: s.snapshot,
        createdAt: s.createdAt,
        image: s.image ?? "",
        imageId: s.imageId ?? "",
        imageDigest: s.imageDigest ?? "",
        nextImage: s.nextImage ?? "",
        volumes: s.volumes ?? {},
        bytes,
    };
}

const quotaGiB = z
    .number()
    .positive("a quota is a positive number of GiB")
    .max(v.LIMITS.quotaGiB, `a quota is at most ${v.LIMITS.quotaGiB} GiB (1 PiB): for no limit, remove the entry`);
const stopGraceSeconds = z.number().int("use whole seconds").min(0, "use 0 or more seconds");
const profile = z.enum(VOLUME_PROFILES, { error: `use one of ${VOLUME_PROFILES.join(", ")}` });
const nfsOptions = z.array(v.nfsOption).max(v.NFS_OPTIONS.length, `give at most ${v.NFS_OPTIONS.length} NFS options`);

/** Checks the inputs and maps them to the TypeScript API's StorageLayoutArgs; throws every problem at once. */
export function storageLayoutArgs(name: string, args: StorageLayoutArgs): Omit<CoreStorageLayoutArgs, "dependsOn"> {
    const checker = new InputChecker();
    checkPlainConnection(checker, args);
    for (const key of ["backend", "root", "volumes", "services", "keepSnapshots", "dockerNamePrefix"] as const) checker.plain(key, args[key]);
    checkLocalConnection(checker, args);
    checkDockerSshDir(checker, args.dockerSshDir);
    for (const key of ["root", "volumes"] as const) {
        if (args[key] === undefined) checker.add(key, "is required");
    }
    checker.throwIfAny("StorageLayout", name);

    const config = checker.stackConfig(
        withoutNulls({
            host: { connection: connectionConfig(args) },
            storage: { backend: args.backend, root: args.root, retention: args.keepSnapshots === undefined ? undefined : { keep: args.keepSnapshots } },
        }),
        [
            ...CONNECTION_PATHS,
            { from: "storage.backend", to: "backend" },
            { from: "storage.root", to: "root" },
            { from: "storage.retention.keep", to: "keepSnapshots" },
            { from: "storage.retention", to: "keepSnapshots" },
        ],
        { hasSshPrivateKey: args.sshPrivateKey !== undefined },
    );
    if (config && config.storage.root !== args.root) {
        // The stack resolves a project-relative dev root against its project; a provider has no project directory.
        checker.add("root", "use an absolute path such as \"/srv/mmagent\" (or a ZFS dataset): the provider runs outside your project and cannot resolve a relative path");
    }
    const backend = config?.storage.backend ?? args.backend;

    if (args.dockerNamePrefix !== undefined) checker.check("dockerNamePrefix", v.resourceName, args.dockerNamePrefix);
    const volumes = checkVolumes(checker, args.volumes);
    const services = checkGuards(checker, args.services ?? [], backend);
    checker.throwIfAny("StorageLayout", name);

    const c = config!;
    return {
        host: hostAccess(c.host.connection, args.sshPrivateKey),
        backend: c.storage.backend,
        root: c.storage.root,
        volumes,
        services,
        keepSnapshots: c.storage.retention.keep,
        dockerNamePrefix: args.dockerNamePrefix,
        previousPlacement: args.previousPlacement === undefined ? undefined : pulumi.output(args.previousPlacement).apply((p) => previousPlacement(name, p)),
    };
}

function checkVolumes(checker: InputChecker, volumes: Volume[] | undefined): VolumeSpec[] {
    if (!Array.isArray(volumes)) {
        checker.add("volumes", "give the volumes as a list, e.g. [{ name: \"agent-db\", profile: \"db\" }]");
        return [];
    }
    const seen = new Map<string, number>();
    return volumes.map((vol, i): VolumeSpec => {
        const at = (key: string) => `volumes[${i}].${key}`;
        checker.check(at("name"), v.resourceName, vol.name);
        if (seen.has(vol.name)) checker.add(at("name"), `volume name "${vol.name}" is already used by volumes[${seen.get(vol.name)}]: choose another name`);
        else seen.set(vol.name, i);
        checker.check(at("profile"), profile, vol.profile);
        if (vol.readOnly !== undefined && typeof vol.readOnly !== "boolean") checker.add(at("readOnly"), "use true or false");
        if (vol.quotaGiB !== undefined) checker.check(at("quotaGiB"), quotaGiB, vol.quotaGiB);
        if (vol.service !== undefined) checker.check(at("service"), v.resourceName, vol.service);
        let nfs: NfsSource | undefined;
        if (vol.nfsServer !== undefined || vol.nfsExport !== undefined || vol.nfsOptions !== undefined) {
            if (vol.nfsServer === undefined) checker.add(at("nfsServer"), "an NFS volume needs the server: set nfsServer, or remove the other nfs* inputs");
            else checker.check(at("nfsServer"), v.hostAddress, vol.nfsServer);
            if (vol.nfsExport === undefined) checker.add(at("nfsExport"), "an NFS volume needs the exported path: set nfsExport, e.g. \"/exports/datasets\"");
            else checker.check(at("nfsExport"), v.nfsExport, vol.nfsExport);
            const options = vol.nfsOptions ?? [];
            checker.check(at("nfsOptions"), nfsOptions, options);
            const keys = new Set<string>();
            for (const [j, o] of (Array.isArray(options) ? options : []).entries()) {
                const key = String(o).split("=")[0];
                if (keys.has(key)) checker.add(`${at("nfsOptions")}[${j}]`, `"${key}" is given twice: keep one`);
                keys.add(key);
            }
            // The stack config's rules for NFS volumes (config.ts), with these inputs' names.
            if (vol.readOnly !== true) checker.add(at("readOnly"), "an NFS volume is read-only input data (it is never snapshotted or restored): set readOnly: true");
            if (vol.quotaGiB !== undefined) checker.add(at("quotaGiB"), `"${vol.name}" is an NFS volume: its size is the NFS server's business; remove this quota`);
            nfs = { server: vol.nfsServer!, export: vol.nfsExport!, options };
        }
        return {
            name: vol.name,
            profile: vol.profile as CoreVolumeProfile,
            readOnly: vol.readOnly,
            quotaGiB: vol.quotaGiB,
            service: vol.service,
            ...(nfs ? { nfs } : {}),
        };
    });
}

function checkGuards(checker: InputChecker, guards: ServiceGuard[], backend: string | undefined): Record<string, CoreServiceGuard> {
    if (!Array.isArray(guards)) {
        checker.add("services", "give the services as a list, e.g. [{ container: \"team-agent\", image: \"ghcr.io/open-webui/open-webui:v0.6.34\" }]");
        return {};
    }
    const out: Record<string, CoreServiceGuard> = {};
    const seen = new Map<string, number>();
    guards.forEach((g, i) => {
        const at = (key: string) => joinPath(`services[${i}]`, key);
        checker.check(at("container"), v.resourceName, g.container);
        if (seen.has(g.container)) checker.add(at("container"), `container "${g.container}" is already listed at services[${seen.get(g.container)}]: list it once`);
        else seen.set(g.container, i);
        checker.check(at("image"), v.imageReference, g.image);
        if (g.restoreFrom !== undefined) {
            checker.check(at("restoreFrom"), v.snapshotName, g.restoreFrom);
            if (backend === "dir") checker.add(at("restoreFrom"), "the dir backend takes no snapshots, so there is nothing to restore: use backend zfs, btrfs or auto");
        }
        if (g.stopGraceSeconds !== undefined) checker.check(at("stopGraceSeconds"), stopGraceSeconds, g.stopGraceSeconds);
        out[g.container] = { container: g.container, image: g.image, restoreFrom: g.restoreFrom, stopGraceSeconds: g.stopGraceSeconds };
    });
    return out;
}

/** `previousPlacement` as the TypeScript API takes it; an empty one (never deployed) is none. */
function previousPlacement(name: string, p: StoragePlacement | undefined | null): CoreStoragePlacement | undefined {
    if (p === undefined || p === null || !p.root) return undefined;
    if (!["zfs", "btrfs", "dir"].includes(p.backend)) {
        throw inputError("StorageLayout", name, [{ propertyPath: "previousPlacement.backend", reason: `use "zfs", "btrfs" or "dir" (the \`placement\` output of the last deployment), not ${JSON.stringify(p.backend)}` }]);
    }
    return { backend: p.backend as CoreStorageBackend, root: p.root };
}
