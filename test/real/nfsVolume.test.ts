/**
 * NFS input volumes on the real engine: the Docker volume StorageLayout declares for
 * `extraVolumes[i].nfs` (storageLayout.ts `nfsVolumeArgs`), created with the same driver, options
 * and labels the provider sends (`docker volume create` takes them one for one), then inspected.
 *
 * This kernel has no NFS client, so no container mounts these volumes here: what is proven is that
 * the engine takes the options as given, stores them unchanged, and resolves nothing at create
 * time (a server name is resolved by dockerd when a container mounts the volume, moby
 * `volume/local/local_unix.go` `getMountOptions`).
 */
import { spawnSync } from "child_process";
import { nfsVolumeArgs, VolumeSpec } from "../../components/storageLayout";
import { requirePrerequisites, sh } from "../support/host";

const PREFIX = "mmtest-nfs";
const CASES: (VolumeSpec & { nfs: NonNullable<VolumeSpec["nfs"]> })[] = [
    { name: "datasets", profile: "media", readOnly: true, nfs: { server: "192.0.2.10", export: "/exports/datasets", options: ["nconnect=4", "rsize=1048576"] } },
    // A name that does not resolve anywhere: the create must not try.
    { name: "models", profile: "models", readOnly: true, nfs: { server: "nas.mmtest.invalid", export: "/" } },
    { name: "v6", profile: "media", readOnly: true, nfs: { server: "2001:db8::10", export: "/srv/nfs4/x", options: ["noresvport"] } },
];
const names = CASES.map((c) => `${PREFIX}-${c.name}`);

function cleanup() {
    spawnSync("docker", ["volume", "rm", "-f", ...names]);
}

beforeAll(() => {
    requirePrerequisites({ docker: true });
    cleanup();
});
afterAll(cleanup);

/** `docker volume create` with exactly the component's args: driver, each driverOpts entry, each label. */
function create(args: ReturnType<typeof nfsVolumeArgs>): void {
    const cli = ["volume", "create", "--driver", args.driver];
    for (const [k, v] of Object.entries(args.driverOpts)) cli.push("--opt", `${k}=${v}`);
    for (const l of args.labels) cli.push("--label", `${l.label}=${l.value}`);
    sh("docker", [...cli, args.name]);
}

test.each(CASES)("NFS volume $name ($nfs.server): created on the real engine with the component's options and labels, stored unchanged (no NFS client in this kernel: not mounted)", (spec) => {
    const args = nfsVolumeArgs(PREFIX, spec);
    create(args);
    const [info] = JSON.parse(sh("docker", ["volume", "inspect", args.name]));
    expect(info.Driver).toBe("local");
    expect(info.Options).toEqual(args.driverOpts);
    expect(info.Options.type).toBe("nfs");
    expect(info.Options.o).toBe(["addr=" + spec.nfs.server, "nfsvers=4.2", "hard", "ro", ...(spec.nfs.options ?? [])].join(","));
    expect(info.Options.device).toBe(`:${spec.nfs.export}`);
    expect(info.Labels).toEqual({ "mmagent.volume": spec.name, "mmagent.profile": spec.profile, "mmagent.source": "nfs", "mmagent.access": "read-only" });
    // Not mounted yet: the local driver mounts at a container's start, not at create.
    expect(sh("sh", ["-c", `grep -c ' ${info.Mountpoint} ' /proc/self/mountinfo || true`]).trim()).toBe("0");
    // A second create with the same options is answered with the same volume (docs/provider-behaviour.md "Volumes").
    create(args);
    expect(JSON.parse(sh("docker", ["volume", "inspect", args.name]))[0].Options).toEqual(args.driverOpts);
});

test("the engine's own check: `o` without `device` is refused (moby local driver mandatoryOpts), so the component always sends all three", () => {
    const r = spawnSync("docker", ["volume", "create", "--driver", "local", "--opt", "type=nfs", "--opt", "o=addr=192.0.2.10,ro", `${PREFIX}-broken`], { encoding: "utf8" });
    spawnSync("docker", ["volume", "rm", "-f", `${PREFIX}-broken`]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/missing required option: "device"/);
});
