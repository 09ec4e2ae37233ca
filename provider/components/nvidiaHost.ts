/**
 * NvidiaHost for every Pulumi language: the TypeScript API's NvidiaHost (components/nvidiaHost.ts)
 * behind inputs the schema inference can express. The connection is flat `ssh*` inputs (local
 * without `sshHost`), GPU selections are strings; everything is checked with the stack config's
 * rules first (provider/validation.ts), then the real component is created as this one's child.
 */
import * as pulumi from "@pulumi/pulumi";
import { NvidiaHost as CoreNvidiaHost, NvidiaHostArgs as CoreNvidiaHostArgs, dockerHostUrl } from "../../components/nvidiaHost";
import { expandHome, dockerSshOpts } from "../../components/dockerSsh";
import { checkLocalConnection, checkPlainConnection, connectionConfig, CONNECTION_PATHS, HostConnectionArgs, hostAccess } from "../hostAccess";
import { PROVIDER_TOKENS } from "../tokens";
import { InputChecker, parseGpuList, withoutNulls } from "../validation";

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

export interface NvidiaHostArgs extends HostConnectionArgs {
    /**
     * GPUs to prepare and smoke-test: "none" (skips everything NVIDIA), "all", or GPU indices /
     * UUIDs separated by commas ("0,1", "GPU-…" as `nvidia-smi -L` prints them). Default: "none".
     */
    gpus?: string;
    /** NVIDIA container toolkit version (a Debian package version) for all four packages. Default: "1.18.0-1". */
    toolkitVersion?: string;
    /** Generate the CDI spec and enable CDI in Docker. Default: false. */
    cdi?: boolean;
    /** Kernel settings written to /etc/sysctl.d/90-mmagent.conf. Default: { "fs.inotify.max_user_watches": "524288" }. */
    sysctls?: { [key: string]: string };
    /** Image for the GPU smoke test, pinned by tag or digest. Default: "nvidia/cuda:12.6.3-base-ubuntu24.04". */
    gpuSmokeTestImage?: string;
    /**
     * GPUs the smoke-test container asks for, in the form of `gpus`: the ones the stack's
     * containers will get, so the test proves exactly what they need. Default: `gpus`.
     */
    smokeTestGpus?: string;
}

/** Makes a Linux host ready for the agent stack (Docker, sysctls, NVIDIA toolkit and a GPU smoke test when GPUs are wanted). */
export class NvidiaHost extends pulumi.ComponentResource {
    /** GPUs as a container sees them (empty without GPUs). */
    public readonly gpus: pulumi.Output<GpuInfo[]>;
    /** Docker server version on the host. */
    public readonly dockerVersion: pulumi.Output<string>;
    /** Whether GPUs were requested. */
    public readonly hasGpus: pulumi.Output<boolean>;
    /** The Docker endpoint the components use for this host (`unix:///var/run/docker.sock` or `ssh://user@host:port`). */
    public readonly dockerHost: pulumi.Output<string>;

    constructor(name: string, args: NvidiaHostArgs, opts?: pulumi.ComponentResourceOptions) {
        const real = nvidiaHostArgs(name, withoutNulls(args ?? {}));
        super(PROVIDER_TOKENS.nvidiaHost, name, {}, opts);
        const host = new CoreNvidiaHost(name, real, { parent: this });
        this.gpus = host.gpus.apply((gpus) =>
            gpus.map((g) => ({ index: g.index, uuid: g.uuid, name: g.name, memoryMiB: g.memoryMiB, driverVersion: g.driverVersion })),
        );
        this.dockerVersion = host.dockerVersion;
        this.hasGpus = pulumi.output(host.hasGpus);
        this.dockerHost = pulumi.output(dockerHostUrl(real.connection!));
        this.registerOutputs({ gpus: this.gpus, dockerVersion: this.dockerVersion, hasGpus: this.hasGpus, dockerHost: this.dockerHost });
    }
}

/** Checks the inputs and maps them to the TypeScript API's NvidiaHostArgs; throws every problem at once. */
export function nvidiaHostArgs(name: string, args: NvidiaHostArgs): CoreNvidiaHostArgs {
    const checker = new InputChecker();
    checkPlainConnection(checker, args);
    for (const key of ["gpus", "toolkitVersion", "cdi", "sysctls", "gpuSmokeTestImage", "smokeTestGpus"] as const) checker.plain(key, args[key]);
    checkLocalConnection(checker, args);
    checkDockerSshDir(checker, args.dockerSshDir);
    if (checker.problems.length > 0) checker.throwIfAny("NvidiaHost", name);

    const config = checker.stackConfig(
        withoutNulls({
            host: {
                connection: connectionConfig(args),
                gpus: parseGpuList(args.gpus),
                toolkitVersion: args.toolkitVersion,
                cdi: args.cdi,
                sysctls: args.sysctls,
                gpuSmokeTestImage: args.gpuSmokeTestImage,
            },
        }),
        [
            ...CONNECTION_PATHS,
            { from: "host.gpus", to: "gpus" },
            { from: "host.toolkitVersion", to: "toolkitVersion" },
            { from: "host.cdi", to: "cdi" },
            { from: "host.sysctls", to: "sysctls", keepRest: true },
            { from: "host.gpuSmokeTestImage", to: "gpuSmokeTestImage" },
        ],
        { hasSshPrivateKey: args.sshPrivateKey !== undefined },
    );
    // The smoke test's selection follows the same rules as `gpus`.
    const smoke =
        args.smokeTestGpus === undefined
            ? undefined
            : checker.stackConfig({ host: { gpus: parseGpuList(args.smokeTestGpus) } }, [{ from: "host.gpus", to: "smokeTestGpus" }], { hasSshPrivateKey: false });
    checker.throwIfAny("NvidiaHost", name);

    const h = config!.host;
    const access = hostAccess(h.connection, args.sshPrivateKey);
    return {
        connection: access.connection,
        privateKey: access.privateKey,
        gpus: h.gpus,
        toolkitVersion: h.toolkitVersion,
        cdi: h.cdi,
        sysctls: h.sysctls,
        gpuSmokeTestImage: h.gpuSmokeTestImage,
        smokeTestGpus: smoke?.host.gpus,
        dockerSshDir: args.dockerSshDir,
    };
}

/** The ssh client directory must be one `ssh` can take as it is (dockerSsh.ts). */
export function checkDockerSshDir(checker: InputChecker, dir: string | undefined): void {
    if (dir === undefined || typeof dir !== "string") return;
    try {
        dockerSshOpts(dir);
        expandHome(dir, "/home");
    } catch (e) {
        checker.add("dockerSshDir", (e as Error).message);
    }
}
