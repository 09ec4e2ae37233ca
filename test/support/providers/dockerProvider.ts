/**
 * Fake of the docker provider instance (`pulumi:providers:docker`): its configuration, and the
 * Docker client every docker resource using it gets (FakeContext.docker).
 *
 * Mirrors kreuzwerker/terraform-provider-docker@v4.5.0:
 * - internal/provider/provider.go `configure`: `host` (default $DOCKER_HOST), `context` (default
 *   $DOCKER_CONTEXT, and when set it REPLACES host), `ssh_opts` (default $DOCKER_SSH_OPTS split on
 *   spaces), `cert_path` and `*_material` (defaults $DOCKER_CERT_PATH, $DOCKER_*_MATERIAL).
 * - internal/provider/config.go `MakeClient`: cert material or cert_path first (TLS), else `ssh://`
 *   through docker/cli's connection helper (test/support/dockerCliSsh.ts: the system `ssh`), else
 *   the host as a socket; then `Ping` and `ServerVersion` (disable_docker_daemon_check unset), so
 *   a host that cannot be reached fails when the provider is configured, before any resource.
 * Environment variables that would override the program's inputs are refused rather than
 * modelled: the program refuses them too (components/dockerSsh.ts).
 */
import Docker from "dockerode";
import { DOCKER_PROVIDER_OVERRIDES } from "../../../components/dockerSsh";
import { dockerOverSsh, SshDockerClient } from "../dockerCliSsh";
import { onlyKnownKeys, Props, ResourceFake } from "./fake";

const TFP = "kreuzwerker/terraform-provider-docker@v4.5.0:internal/provider";
const LOCAL_SOCKET = "unix:///var/run/docker.sock";

/** One client per provider configuration, as the provider caches clients per config. */
const sshClients = new Map<string, SshDockerClient>();

/** The environment the provider (and so its `ssh`) runs with: this process's, without an SSH agent, as in CI. */
export function providerEnvironment(): NodeJS.ProcessEnv {
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    delete env.SSH_AGENT_PID;
    return env;
}

/** The Docker client of a provider's stored config; `local` is the harness's own client for the socket. */
export function dockerClientFor(config: Props, local: Docker): Docker {
    if (config.host === LOCAL_SOCKET) return local;
    const sshOpts = parseSshOpts(config.sshOpts) ?? [];
    const key = JSON.stringify([config.host, sshOpts]);
    let client = sshClients.get(key);
    if (!client) {
        client = dockerOverSsh(config.host, sshOpts, providerEnvironment());
        sshClients.set(key, client);
    }
    return client.docker;
}

/** Ends every `ssh` the provider fakes started (the end of a `pulumi` run). */
export function closeDockerClients(): void {
    for (const c of sshClients.values()) c.close();
    sshClients.clear();
}

/** The `ssh` client of a provider config (for tests that look at its argv and traffic). */
export function sshClientFor(config: Props): SshDockerClient | undefined {
    return sshClients.get(JSON.stringify([config.host, parseSshOpts(config.sshOpts) ?? []]));
}

function parseSshOpts(value: unknown): string[] | undefined {
    // Provider inputs arrive JSON-encoded from the SDK (a list → its JSON text).
    const list = typeof value === "string" ? JSON.parse(value) : value;
    if (list === undefined) return undefined;
    if (!Array.isArray(list) || list.some((x) => typeof x !== "string")) throw new Error(`docker provider sshOpts must be a list of strings, got ${JSON.stringify(value)}`);
    return list;
}

export const dockerProvider: ResourceFake = {
    type: "pulumi:providers:docker",
    mirrors: [`${TFP}/provider.go (configure)`, `${TFP}/config.go (MakeClient)`, "docker/cli@v28.5.2:cli/connhelper (via test/support/dockerCliSsh.ts)"],

    check(i) {
        onlyKnownKeys("docker Provider", i, ["host", "sshOpts", "version"]);
        for (const name of Object.keys(DOCKER_PROVIDER_OVERRIDES)) {
            if (process.env[name]) throw new Error(`${name} is set: the provider would read it instead of the program's inputs (${DOCKER_PROVIDER_OVERRIDES[name]})`);
        }
        const host = String(i.host);
        if (host === LOCAL_SOCKET) {
            if (i.sshOpts !== undefined) throw new Error("real-engine harness: sshOpts with the local socket is not modelled");
        } else if (!host.startsWith("ssh://")) {
            throw new Error(`real-engine harness: docker provider host ${host} not modelled (the local socket or ssh://)`);
        }
    },

    async create(ctx, i) {
        const docker = dockerClientFor(i, ctx.docker);
        try {
            await docker.ping();
            await docker.version();
        } catch (e) {
            throw new Error(`Error pinging Docker server, please make sure that ${i.host} is reachable and has a  '_ping' endpoint. Error: ${(e as Error).message}`);
        }
        return { id: "provider", state: { ...i } };
    },
    read: async (_ctx, _id, state) => state,
    diff: (state, inputs) =>
        ["host", "sshOpts"]
            .filter((k) => JSON.stringify(state[k]) !== JSON.stringify(inputs[k]))
            .map((property) => ({ property, kind: "update" as const, old: state[property], new: inputs[property] })),
    update: async (_ctx, _id, _state, i) => ({ ...i }),
    async delete() {},
};
