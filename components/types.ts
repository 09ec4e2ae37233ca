/**
 * Types and constants shared by more than one component.
 */
import * as pulumi from "@pulumi/pulumi";

/** What a volume holds; decides the filesystem tuning (see PROFILE_TUNING). */
export const VOLUME_PROFILES = ["db", "media", "models", "logs", "text", "cache"] as const;
/** One of {@link VOLUME_PROFILES}. */
export type VolumeProfile = (typeof VOLUME_PROFILES)[number];

/** Where volumes live on the host, as the storage script resolved it. */
export type StorageBackend = "zfs" | "btrfs" | "dir";
/** What `storage.backend` may say: a backend, or "auto" (the host's storage script decides). */
export const STORAGE_BACKEND_CHOICES = ["auto", "zfs", "btrfs", "dir"] as const;
/** One of {@link STORAGE_BACKEND_CHOICES}. */
export type StorageBackendChoice = (typeof STORAGE_BACKEND_CHOICES)[number];

/** Per-profile filesystem tuning. ZFS values follow OpenZFS workload tuning; Btrfs has per-path no-CoW and compression. */
export interface ProfileTuning {
    /** ZFS dataset properties, set at creation and re-asserted on every run. */
    zfs: Record<string, string>;
    /** Btrfs: `chattr +C` (no copy-on-write) on the empty subvolume. For databases doing small random writes. */
    btrfsNoCow: boolean;
    /** Btrfs: `btrfs property set <path> compression <value>`; "" leaves the filesystem default. */
    btrfsCompression: "" | "zstd" | "lzo";
}

/** The tuning each {@link VolumeProfile} gets (the comments in the source say why). */
export const PROFILE_TUNING: Record<VolumeProfile, ProfileTuning> = {
    // SQLite/PostgreSQL pages are 4-16K: a 128K record would amplify every small write.
    db: { zfs: { recordsize: "16K", compression: "lz4", atime: "off", logbias: "latency" }, btrfsNoCow: true, btrfsCompression: "" },
    // Already-compressed images/audio/video: large records, no compression work.
    media: { zfs: { recordsize: "1M", compression: "off", atime: "off" }, btrfsNoCow: false, btrfsCompression: "" },
    // Model weights are read in large sequential chunks; lz4 gives up quickly on incompressible data.
    models: { zfs: { recordsize: "1M", compression: "lz4", atime: "off" }, btrfsNoCow: false, btrfsCompression: "" },
    logs: { zfs: { recordsize: "128K", compression: "zstd", atime: "off" }, btrfsNoCow: false, btrfsCompression: "zstd" },
    text: { zfs: { recordsize: "128K", compression: "zstd", atime: "off" }, btrfsNoCow: false, btrfsCompression: "zstd" },
    cache: { zfs: { recordsize: "128K", compression: "lz4", atime: "off" }, btrfsNoCow: false, btrfsCompression: "" },
};

/** How to reach the host. */
export type HostConnection =
    | {
          /** Run the host scripts on the machine that runs Pulumi, and use its Docker engine. */
          kind: "local";
      }
    | {
          /** Run the host scripts over SSH, and reach the host's Docker engine through `ssh://`. */
          kind: "ssh";
          /** DNS name or IP address. */
          host: string;
          /** SSH port. Required here; the stack config's `host.connection.port` defaults it to 22. */
          port: number;
          /** Login user (root, or a deploy user with the sudoers line). Required here; the stack config's `host.connection.user` defaults it to "root". */
          user: string;
          /** Pinned host public key (`ssh-ed25519 AAAA…`). */
          hostKey: string;
      };

/** Everything a component needs to run a script on the host. */
export interface HostAccess {
    /** Where the host scripts run: this machine (`local`) or a host reached over SSH. */
    connection: HostConnection;
    /**
     * SSH private key (a secret); required for `ssh`, not read for `local`.
     * @default none (must be set for an `ssh` connection)
     */
    privateKey?: pulumi.Input<string>;
}

/** GPUs to expose: none, all, or a list of indices / UUIDs. */
export type GpuSelection = "none" | "all" | (number | string)[];

/** One GPU as `nvidia-smi --query-gpu` reports it inside the smoke-test container. */
export interface GpuInfo {
    /** nvidia-smi `index`, as numbered inside the smoke-test container. */
    index: number;
    /** nvidia-smi `uuid` (`GPU-…`). */
    uuid: string;
    /** nvidia-smi `name`: the product name. */
    name: string;
    /** nvidia-smi `memory.total`, in MiB. */
    memoryMiB: number;
    /** nvidia-smi `driver_version`. */
    driverVersion: string;
}

/** What the pre-change snapshot command reports for a service. */
export interface SnapshotInfo {
    /** Snapshot name, e.g. `mmagent-pre-1a2b3c4d`: the value for `restoreFrom`. */
    snapshot: string;
    /** ISO 8601 time the snapshot was taken. */
    createdAt: string;
    /** Image of the container whose data the snapshot holds ("" when none ran yet). */
    image: string;
    /** The ID (`sha256:…`) of the image the container ran ("" when none ran, or the snapshot predates the field). */
    imageId: string;
    /** That image's registry digest (`repo@sha256:…`); "" for an image built on the host, never pulled. */
    imageDigest: string;
    /** The image the change was about to deploy. */
    nextImage: string;
    /** Volume name → snapshot path or ZFS snapshot name. */
    volumes: Record<string, string>;
    /** Volume name → its used bytes when the snapshot was taken (null when unknown); `mmagent status` estimates growth from them. */
    bytes: Record<string, number | null>;
}
