/**
 * NvidiaHost: makes a host ready for the stack and hands out a Docker provider for it.
 *
 * One idempotent script (scripts/prepare-host.sh) checks Docker, writes the sysctls and, when
 * GPUs are wanted, checks the driver, installs the NVIDIA container toolkit at a pinned version,
 * configures Docker's runtime (restarting Docker only if daemon.json changed), installs the
 * dev-char rule and smoke-tests a GPU container whose `nvidia-smi` output becomes `gpus`.
 */
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_IMAGES, DEFAULT_TOOLKIT_VERSION } from "./config";
import { defaultDockerSshDir, dockerSshOpts, writeDockerSshFiles } from "./dockerSsh";
import { ServiceGpus } from "./gpus";
import { hostScriptCommand, parseScriptOutput } from "./hostScript";
import { TOKENS } from "./tokens";
import { GpuInfo, GpuSelection, HostAccess, HostConnection } from "./types";

/** Inputs of {@link NvidiaHost}. */
export interface NvidiaHostArgs {
    /** How to reach the host. @default { kind: "local" } */
    connection?: HostConnection;
    /** SSH private key, as a secret. Required when `connection.kind` is "ssh". @default none (enough for a local host) */
    privateKey?: pulumi.Input<string>;
    /** GPUs to prepare and smoke-test: "none" skips everything NVIDIA. @default "none" */
    gpus?: GpuSelection;
    /** NVIDIA container toolkit version for all four packages. @default "1.18.0-1" */
    toolkitVersion?: string;
    /** Generate the CDI spec and enable CDI in Docker. @default false */
    cdi?: boolean;
    /** Kernel settings written to /etc/sysctl.d/90-mmagent.conf. @default { "fs.inotify.max_user_watches": "524288" } */
    sysctls?: Record<string, string>;
    /** Image for the GPU smoke test. @default "nvidia/cuda:12.6.3-base-ubuntu24.04" */
    gpuSmokeTestImage?: string;
    /**
     * GPUs the smoke-test container asks for: the ones the stack's containers will get, so the
     * test proves exactly what they need (see gpus.ts `unionGpus`). @default `gpus`
     */
    smokeTestGpus?: ServiceGpus;
    /**
     * ssh only: the private directory (`~/…` or absolute) where the program writes the private key
     * and the pinned host key for the `ssh` client the Docker provider runs (see dockerSsh.ts).
     * @default `~/.mmagent/ssh/<project>.<stack>.<name>`
     */
    dockerSshDir?: string;
}

/** What the prepare script reports. */
export interface HostReport {
    /** Docker server version. */
    docker: string;
    /** GPUs the smoke-test container saw (empty without GPUs). */
    gpus: GpuInfo[];
    /** The NVIDIA container toolkit version installed ("" without GPUs). */
    toolkitVersion: string;
    /** Whether this run restarted Docker (only when daemon.json changed). */
    dockerRestarted: boolean;
    /** What this run changed on the host, one entry per change. */
    changed: string[];
}

/** What {@link buildNvidiaHost} created. */
export interface NvidiaHostParts {
    /** How other components run scripts on this host. */
    access: HostAccess;
    /** The prepare-host step. */
    prepare: command.local.Command | command.remote.Command;
    /** Docker provider for this host, created after the prepare step. */
    dockerProvider: docker.Provider;
    /** The prepare step's report. */
    report: pulumi.Output<HostReport>;
}

/** The script's parameters, as the component passes them. Exported for the host-side tests. */
export function prepareHostParams(args: NvidiaHostArgs): Record<string, string> {
    const gpus = args.gpus ?? "none";
    const sysctls = args.sysctls ?? { "fs.inotify.max_user_watches": "524288" };
    const smoke = args.smokeTestGpus ?? gpus;
    return {
        MMAGENT_GPUS: Array.isArray(gpus) ? gpus.join(",") : gpus,
        MMAGENT_SMOKE_GPUS: Array.isArray(smoke) ? smoke.join(",") : smoke,
        MMAGENT_TOOLKIT_VERSION: args.toolkitVersion ?? DEFAULT_TOOLKIT_VERSION,
        MMAGENT_CDI: args.cdi ? "1" : "0",
        MMAGENT_SYSCTLS: Object.entries(sysctls)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, val]) => `${k}=${val}`)
            .join("\n"),
        MMAGENT_SMOKE_IMAGE: args.gpuSmokeTestImage ?? DEFAULT_IMAGES.gpuSmokeTest,
    };
}

/** `host` for the Docker provider: the local socket, or Docker over SSH (`docker system dial-stdio`). */
export function dockerHostUrl(connection: HostConnection): string {
    if (connection.kind === "local") return "unix:///var/run/docker.sock";
    // An IPv6 address needs brackets in a URL (docker/cli parses it with url.Parse).
    const host = connection.host.includes(":") ? `[${connection.host}]` : connection.host;
    return `ssh://${connection.user}@${host}:${connection.port}`;
}

/**
 * The Docker provider's `sshOpts` for an ssh host, resolved only once the key and known_hosts
 * files are written, so the provider never runs `ssh` before they exist. The value is the same
 * on every run (and not secret: it holds paths only).
 */
function dockerProviderSshOpts(name: string, args: NvidiaHostArgs, connection: Extract<HostConnection, { kind: "ssh" }>): pulumi.Output<string[]> {
    const dir = args.dockerSshDir ?? defaultDockerSshDir(pulumi.getProject(), pulumi.getStack(), name);
    const opts = dockerSshOpts(dir);
    if (args.privateKey === undefined) throw new Error(`${name}: an ssh connection needs privateKey (the sshPrivateKey secret)`);
    return pulumi.unsecret(
        pulumi.output(args.privateKey).apply((privateKey) => {
            writeDockerSshFiles({ dir, privateKey, connection });
            return opts;
        }),
    );
}

/** Creates the resources of a {@link NvidiaHost} under `parent`; the class is this plus its outputs. */
export function buildNvidiaHost(name: string, args: NvidiaHostArgs, parent: pulumi.Resource): NvidiaHostParts {
    const connection = args.connection ?? { kind: "local" };
    const access: HostAccess = { connection, privateKey: args.privateKey };
    const prepare = hostScriptCommand(name + "-prepare", access, { script: "prepare-host", params: prepareHostParams(args) }, { parent });
    const report = prepare.stdout.apply((out) => parseScriptOutput<HostReport>(`${name}: prepare-host`, out));
    const dockerProvider = new docker.Provider(
        name + "-docker",
        {
            host: dockerHostUrl(connection),
            // The system ssh gets the stack's key and pinned host key, nothing from ~/.ssh (README: "Remote hosts").
            sshOpts: connection.kind === "ssh" ? dockerProviderSshOpts(name, args, connection) : undefined,
        },
        { parent, dependsOn: [prepare] },
    );
    return { access, prepare, dockerProvider, report };
}

/** The component; see the module comment and {@link NvidiaHostArgs}. */
export class NvidiaHost extends pulumi.ComponentResource {
    /** Docker provider for this host; pass it to the other components through `providers`. */
    public readonly dockerProvider: docker.Provider;
    /** The prepare step; resources that need a prepared host depend on it. */
    public readonly ready: pulumi.Resource;
    /** How other components run scripts on this host. */
    public readonly access: HostAccess;
    /** Whether GPUs were requested (known before deployment). */
    public readonly hasGpus: boolean;
    /** GPUs as a container sees them (empty without GPUs). */
    public readonly gpus: pulumi.Output<GpuInfo[]>;
    /** Docker server version on the host. */
    public readonly dockerVersion: pulumi.Output<string>;

    constructor(name: string, args: NvidiaHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super(TOKENS.nvidiaHost, name, {}, opts);
        const parts = buildNvidiaHost(name, args, this);
        this.dockerProvider = parts.dockerProvider;
        this.ready = parts.prepare;
        this.access = parts.access;
        this.hasGpus = (args.gpus ?? "none") !== "none";
        this.gpus = parts.report.gpus;
        this.dockerVersion = parts.report.docker;
        this.registerOutputs({ gpus: this.gpus, dockerVersion: this.dockerVersion });
    }
}
