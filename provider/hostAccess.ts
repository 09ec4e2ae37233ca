/**
 * How the provider's components reach the host: flat SSH inputs instead of the TypeScript API's
 * `HostConnection` union (a union the schema inference refuses), and a Docker provider for that
 * host made the way NvidiaHost makes its own (components/nvidiaHost.ts): the private key and
 * the pinned host key written for the system `ssh` client, fixed `sshOpts`.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { defaultDockerSshDir, dockerSshOpts, writeDockerSshFiles } from "../components/dockerSsh";
import { dockerHostUrl } from "../components/nvidiaHost";
import { HostAccess, HostConnection } from "../components/types";
import { InputChecker, PathMapping } from "./validation";

/** The host inputs every component of the provider has. */
export interface HostConnectionArgs {
    /**
     * DNS name or IP address of the host to reach over SSH. Leave it unset to use the machine that
     * runs Pulumi (its Docker socket, host scripts run locally); the other `ssh*` inputs are then
     * refused.
     */
    sshHost?: string;
    /** SSH port. Default: 22. */
    sshPort?: number;
    /** Login user: root, or a deploy user with the sudoers line (README "Remote hosts"). Default: "root". */
    sshUser?: string;
    /**
     * The host's public key, pinned (`ssh-ed25519 AAAA…`, as `ssh-keyscan -t ed25519 <host>` prints it
     * without the host name): the connection fails if the host presents another. Required with `sshHost`.
     */
    sshHostKey?: string;
    /** SSH private key (OpenSSH or PEM text); pass it as a secret. Required with `sshHost`. */
    sshPrivateKey?: pulumi.Input<string>;
    /**
     * ssh only: the private directory (`~/…` or absolute) where the provider writes the key and the
     * pinned host key for the `ssh` client the Docker provider runs. Default: `~/.mmagent/ssh/<project>.<stack>.<name>`.
     */
    dockerSshDir?: string;
}

/** The stack config's `host.connection` for these inputs; undefined fields are left to its defaults. */
export function connectionConfig(args: HostConnectionArgs): Record<string, unknown> {
    if (args.sshHost === undefined) return { kind: "local" };
    const c: Record<string, unknown> = { kind: "ssh", host: args.sshHost, hostKey: args.sshHostKey };
    if (args.sshPort !== undefined) c.port = args.sshPort;
    if (args.sshUser !== undefined) c.user = args.sshUser;
    return c;
}

/** Where the stack config reports connection problems, as these inputs. */
export const CONNECTION_PATHS: PathMapping[] = [
    { from: "host.connection.host", to: "sshHost" },
    { from: "host.connection.port", to: "sshPort" },
    { from: "host.connection.user", to: "sshUser" },
    { from: "host.connection.hostKey", to: "sshHostKey" },
    { from: "host.connection", to: "sshHost" },
    { from: "sshPrivateKey", to: "sshPrivateKey" },
];

/** SSH inputs that mean nothing without `sshHost`: refused rather than ignored. */
export function checkLocalConnection(checker: InputChecker, args: HostConnectionArgs): void {
    if (args.sshHost !== undefined) return;
    for (const key of ["sshPort", "sshUser", "sshHostKey", "sshPrivateKey", "dockerSshDir"] as const) {
        if (args[key] !== undefined) checker.add(key, "is set but sshHost is not: set sshHost for an SSH host, or remove this input to use the local machine");
    }
}

/** Checks the plain host inputs (an output cannot be validated or written into `sshOpts`). */
export function checkPlainConnection(checker: InputChecker, args: HostConnectionArgs): void {
    for (const key of ["sshHost", "sshPort", "sshUser", "sshHostKey", "dockerSshDir"] as const) checker.plain(key, args[key]);
}

/** The TypeScript API's host access for a validated connection. */
export function hostAccess(connection: HostConnection, privateKey: pulumi.Input<string> | undefined): HostAccess {
    return { connection, privateKey: privateKey === undefined ? undefined : pulumi.secret(privateKey) };
}

/**
 * A Docker provider for the host, as NvidiaHost makes its own: the local socket, or `ssh://` with
 * the stack's key and pinned host key written to private files before the provider is configured.
 */
export function hostDockerProvider(
    name: string,
    access: HostAccess,
    dockerSshDir: string | undefined,
    opts: pulumi.CustomResourceOptions,
): docker.Provider {
    const connection = access.connection;
    let sshOpts: pulumi.Output<string[]> | undefined;
    if (connection.kind === "ssh") {
        const dir = dockerSshDir ?? defaultDockerSshDir(pulumi.getProject(), pulumi.getStack(), name);
        const options = dockerSshOpts(dir);
        sshOpts = pulumi.unsecret(
            pulumi.output(access.privateKey!).apply((privateKey) => {
                writeDockerSshFiles({ dir, privateKey, connection });
                return options;
            }),
        );
    }
    return new docker.Provider(`${name}-docker`, { host: dockerHostUrl(connection), sshOpts }, opts);
}

/**
 * `dependsOn` for resources that must wait for another component's storage steps: an output the
 * SDK resolves to no resource, but whose own dependencies (the steps behind `gates`) it adds.
 */
export function gateDependency(gates: pulumi.Input<Record<string, string>> | undefined): pulumi.Input<pulumi.Resource> | undefined {
    if (gates === undefined) return undefined;
    return pulumi.output(gates).apply(() => [] as pulumi.Resource[]) as unknown as pulumi.Input<pulumi.Resource>;
}

/** The component's `dependsOn` option as a list, for children that must wait for the same. */
export function optionDependsOn(opts: pulumi.ComponentResourceOptions | undefined): pulumi.Input<pulumi.Resource>[] {
    const d = opts?.dependsOn;
    if (d === undefined) return [];
    return Array.isArray(d) ? d : [d as pulumi.Input<pulumi.Resource>];
}
