/**
 * Docker through SSH as the Docker provider does it, against the remote test host
 * (scripts/remote-test-host.sh): the system `ssh` with docker/cli's argv and the program's
 * `sshOpts` (components/dockerSsh.ts), from an environment with no SSH agent, no ~/.ssh of the
 * deploy key and no known_hosts entry — as CI has. The only key and the only trusted host key are
 * the files the program writes from the stack's config.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { defaultDockerSshDir, dockerSshOpts, writeDockerSshFiles } from "../../components/dockerSsh";
import { dockerHostUrl } from "../../components/nvidiaHost";
import { dockerOverSsh, SshDockerClient } from "../support/dockerCliSsh";
import { removeSshClientDir, requirePrerequisites } from "../support/host";
import { providerEnvironment } from "../support/providers/dockerProvider";
import { REMOTE_HOST_SCRIPT, RemoteHostEnv, remoteHostEnv } from "../support/remoteHost";

// The stack name carries the tests' prefix: a killed run's folder is found (scripts/reap-test-leftovers.sh).
const DIR = defaultDockerSshDir("mmagent", "mmtest-dockerssh", "host");
const ABS_DIR = path.join(os.userInfo().homedir, DIR.slice(2));
let env: RemoteHostEnv;
let url: string;
const clients: SshDockerClient[] = [];

function client(privateKey: string, hostKey: string, opts = dockerSshOpts(DIR)): SshDockerClient {
    writeDockerSshFiles({ dir: DIR, privateKey, connection: { host: env.host, port: env.port, hostKey } });
    const c = dockerOverSsh(url, opts, providerEnvironment());
    clients.push(c);
    return c;
}

beforeAll(() => {
    requirePrerequisites({ commands: ["ip", "ssh", "sshd", "docker"], docker: true, root: true });
    const up = spawnSync("bash", [REMOTE_HOST_SCRIPT, "up"], { encoding: "utf8", timeout: 240_000 });
    if (up.status !== 0) throw new Error(`remote-test-host.sh up failed: ${up.stderr}`);
    env = remoteHostEnv();
    url = dockerHostUrl({ kind: "ssh", host: env.host, port: env.port, user: env.user, hostKey: env.hostKey });
}, 240_000);

afterAll(() => {
    for (const c of clients) c.close();
    removeSshClientDir(ABS_DIR);
    spawnSync("bash", [REMOTE_HOST_SCRIPT, "down"], { encoding: "utf8", timeout: 120_000 });
});

test("docker/cli's argv with the program's sshOpts: -l, -p, the options, one '-o ConnectTimeout=30' element, -T, --, host, one remote command", () => {
    const c = dockerOverSsh(url, dockerSshOpts(DIR), providerEnvironment());
    clients.push(c);
    expect(c.argv).toEqual(["-l", env.user, "-p", String(env.port), ...dockerSshOpts(DIR), "-o ConnectTimeout=30", "-T", "--", env.host, "docker system dial-stdio"]);
});

test("with only the files the program wrote, the deploy user's ssh reaches the engine (no agent, no ~/.ssh)", async () => {
    expect(process.env.SSH_AUTH_SOCK === undefined || providerEnvironment().SSH_AUTH_SOCK === undefined).toBe(true);
    const c = client(fs.readFileSync(env.privateKeyPath, "utf8"), env.hostKey);
    const t0 = Date.now();
    expect(String(await c.docker.ping())).toBe("OK");
    const version = await c.docker.version();
    const ms = Date.now() - t0;
    // The same engine as the local socket: the test host shares it.
    const local = spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" }).stdout.trim();
    expect(version.Version).toBe(local);
    const containers = await c.docker.listContainers({ all: true });
    expect(Array.isArray(containers)).toBe(true);
    console.log(`docker over ssh: ping + version in ${ms} ms (engine ${version.Version}); ~ in sshOpts expanded by ssh to ${ABS_DIR}`);
    // The key file the program wrote is private to this user.
    expect((fs.statSync(path.join(ABS_DIR, "id_key")).mode & 0o777).toString(8)).toBe("600");
    expect((fs.statSync(ABS_DIR).mode & 0o777).toString(8)).toBe("700");
});

test("a host that presents another key than the pinned one is refused by ssh", async () => {
    const c = client(fs.readFileSync(env.privateKeyPath, "utf8"), env.wrongHostKey);
    await expect(c.docker.ping()).rejects.toThrow(/has exited with exit status 255.*Host key verification failed/s);
});

test("a private key the host does not authorize is refused", async () => {
    const c = client(fs.readFileSync(env.wrongPrivateKeyPath, "utf8"), env.hostKey);
    await expect(c.docker.ping()).rejects.toThrow(/exit status 255.*Permission denied \(publickey\)/s);
});

test("the options the program used before (StrictHostKeyChecking, BatchMode only) fail from this environment: the defect this fixes", async () => {
    writeDockerSshFiles({ dir: DIR, privateKey: fs.readFileSync(env.privateKeyPath, "utf8"), connection: { host: env.host, port: env.port, hostKey: env.hostKey } });
    const c = dockerOverSsh(url, ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"], providerEnvironment());
    clients.push(c);
    await expect(c.docker.ping()).rejects.toThrow(/exit status 255.*(Host key verification failed|Permission denied)/s);
});
