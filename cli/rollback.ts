/**
 * `mmagent rollback <role> [<snapshot>]`: writes the reviewed change that rolls a service's data
 * and image back together, then shows it.
 *
 * The snapshot comes from the host itself (storage.sh `list`), so retention and earlier restores
 * are taken into account; the image is the one whose data the snapshot holds, by its registry
 * digest when the snapshot recorded one. The change is two `pulumi config set --path` calls
 * (`services.<role>.image` and `services.<role>.restoreFrom`), validated with the program's own
 * parser before anything is written; then `pulumi preview --diff`, or `pulumi up --yes` with
 * `--yes`. The restore step itself checks the image against the snapshot again (storage.sh).
 */
import { SERVICE_ROLES, ServiceRole, StackConfig, parseStackConfig } from "../components/config";
import { containerName } from "../components/roles";
import { planVolumes } from "../components/stack";
import { SNAPSHOT_PREFIX } from "../components/storageLayout";
import { CliError } from "./stackFiles";
import { ListedSnapshot, StorageListing } from "./status";

/** What storage.sh accepts as a snapshot name (SNAP_RE): this project's, pre-change or set aside by a restore. */
export const PROJECT_SNAPSHOT = /^mmagent-(pre|replaced)-[0-9a-z-]{4,40}$/;

export interface RollbackPlan {
    role: ServiceRole;
    snapshot: ListedSnapshot;
    /** The image to configure: the recorded registry digest, else the recorded reference. */
    image: string;
    /** `pulumi config set --path` pairs, in order. */
    configSets: { key: string; value: string }[];
    notes: string[];
}

/** The role's writable volumes on the host: the ones its snapshots cover. */
export function rollbackVolumes(config: StackConfig, role: ServiceRole): string[] {
    const service = containerName(config.namePrefix, role);
    return planVolumes(config)
        .filter((v) => v.service === service && !v.readOnly && !v.nfs)
        .map((v) => v.name);
}

/**
 * The refusals that need no host: the role, whether it runs, whether this stack's storage can
 * snapshot at all, the snapshot name. Returns the role and the volumes its snapshots cover. Pure.
 */
export function rollbackTarget(config: StackConfig, roleArg: string, snapshotArg?: string): { role: ServiceRole; volumes: string[] } {
    if (!(SERVICE_ROLES as readonly string[]).includes(roleArg)) throw new CliError(`unknown role "${roleArg}": one of ${SERVICE_ROLES.join(", ")}`);
    const role = roleArg as ServiceRole;
    if (!config.services[role].enabled) throw new CliError(`services.${role} is disabled in this stack: there is nothing to roll back`);
    if (config.storage.backend === "dir") throw new CliError(NO_SNAPSHOTS("storage.backend is dir"));
    if (snapshotArg !== undefined && !PROJECT_SNAPSHOT.test(snapshotArg)) {
        throw new CliError(`"${snapshotArg}" is not a snapshot of this project: its snapshots are named ${SNAPSHOT_PREFIX}<id> (or mmagent-replaced-<time> for the state a restore set aside)`);
    }
    const volumes = rollbackVolumes(config, role);
    if (volumes.length === 0) throw new CliError(`services.${role} has no writable volume: there is no data to roll back, only its image`);
    return { role, volumes };
}

const NO_SNAPSHOTS = (why: string) => `${why}: this host takes no snapshots, so there is nothing to roll back to`;

/** The plan from the host's listing, or a CliError saying why not. Pure. */
export function planRollback(config: StackConfig, roleArg: string, listing: StorageListing, snapshotArg?: string): RollbackPlan {
    const { role, volumes } = rollbackTarget(config, roleArg, snapshotArg);
    if (listing.backend === "dir") throw new CliError(NO_SNAPSHOTS(`storage.backend auto found neither Btrfs nor ZFS at ${listing.root}`));
    // A snapshot is usable only when every volume of the service has it.
    const perVolume = volumes.map((v) => new Map((listing.volumes[v]?.snapshots ?? []).map((s) => [s.name, s])));
    const common = [...perVolume[0].values()].filter((s) => perVolume.every((m) => m.has(s.name)));
    let chosen: ListedSnapshot | undefined;
    if (snapshotArg !== undefined) {
        chosen = common.find((s) => s.name === snapshotArg);
        if (!chosen) {
            const missing = volumes.filter((_, i) => !perVolume[i].has(snapshotArg));
            throw new CliError(
                `snapshot ${snapshotArg} is not on ${missing.join(", ")} (pruned by retention, or another service's); snapshots of ${role}: ${common.map((s) => s.name).join(", ") || "none"}`,
            );
        }
    } else {
        const pre = common.filter((s) => s.name.startsWith(SNAPSHOT_PREFIX)).sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
        chosen = pre.at(-1);
        if (!chosen) throw new CliError(`${role} has no pre-change snapshot on ${volumes.join(", ")} yet: one is taken before each image change`);
    }
    if (!chosen.image && !chosen.imageDigest) {
        throw new CliError(`snapshot ${chosen.name} records no image (no container ran before it was taken): set restoreFrom by hand if you mean to restore it`);
    }
    const notes: string[] = [];
    const image = chosen.imageDigest || chosen.image;
    if (!chosen.imageDigest) {
        notes.push(
            chosen.imageId
                ? `${chosen.image} has no registry digest (built on the host): pinned by reference; the restore checks that it is still image ${chosen.imageId}`
                : `snapshot ${chosen.name} predates recorded digests: pinned by reference ${chosen.image}`,
        );
    }
    const configSets = [
        { key: `mmagent:services.${role}.image`, value: image },
        { key: `mmagent:services.${role}.restoreFrom`, value: chosen.name },
    ];
    return { role, snapshot: chosen, image, configSets, notes };
}

/** The config with the plan applied, validated by the program's parser (throws its config error). */
export function configAfter(raw: Record<string, unknown>, plan: RollbackPlan, ctx: Parameters<typeof parseStackConfig>[1]): StackConfig {
    const services = structuredClone((raw.services ?? {}) as Record<string, Record<string, unknown>>);
    services[plan.role] = { ...(services[plan.role] ?? {}), image: plan.image, restoreFrom: plan.snapshot.name };
    return parseStackConfig({ ...raw, services }, ctx);
}
