/**
 * The files and options that hand the stack's SSH key and pinned host key to the system `ssh`
 * the Docker provider runs (components/dockerSsh.ts). The real ssh reading them is in
 * test/real/dockerOverSsh.test.ts.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { defaultDockerSshDir, dockerSshOpts, expandHome, knownHostsLine, writeDockerSshFiles } from "../../components/dockerSsh";
import { dockerHostUrl } from "../../components/nvidiaHost";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ";
let home: string;

beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-sshfiles-"))));
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

test("known_hosts: the bare host on port 22, [host]:port otherwise, lower-cased as ssh looks it up", () => {
    expect(knownHostsLine({ host: "GPU1.example.com", port: 22, hostKey: KEY })).toBe(`gpu1.example.com ${KEY}\n`);
    expect(knownHostsLine({ host: "10.0.0.5", port: 2222, hostKey: KEY })).toBe(`[10.0.0.5]:2222 ${KEY}\n`);
    expect(knownHostsLine({ host: "fd00::5", port: 2222, hostKey: KEY })).toBe(`[fd00::5]:2222 ${KEY}\n`);
});

test("the Docker host URL brackets an IPv6 address (docker/cli parses it with url.Parse)", () => {
    expect(dockerHostUrl({ kind: "ssh", host: "fd00::5", port: 22, user: "deploy", hostKey: KEY })).toBe("ssh://deploy@[fd00::5]:22");
    expect(dockerHostUrl({ kind: "ssh", host: "gpu1", port: 2222, user: "deploy", hostKey: KEY })).toBe("ssh://deploy@gpu1:2222");
});

test("the directory name keeps only characters ssh takes literally", () => {
    expect(defaultDockerSshDir("my proj", "org/prod%1", "prod-host")).toBe("~/.mmagent/ssh/my_proj.org_prod_1.prod-host");
    expect(() => dockerSshOpts("~/a b")).toThrow(/whitespace/);
    expect(() => dockerSshOpts("~/a%d")).toThrow(/%/);
});

test("~ is the passwd home (what ssh expands), never a relative path", () => {
    expect(expandHome("~/.mmagent/ssh/x", "/home/ci")).toBe("/home/ci/.mmagent/ssh/x");
    expect(expandHome("/srv/keys", "/home/ci")).toBe("/srv/keys");
    expect(() => expandHome("keys", "/home/ci")).toThrow(/must start with ~\/ or \//);
});

test("writes a 0700 directory with the key and known_hosts 0600, idempotently, and replaces a rotated key", () => {
    const files = { dir: "~/.mmagent/ssh/p.s.h", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\r\nabc\r\n-----END OPENSSH PRIVATE KEY-----", connection: { host: "h", port: 2222, hostKey: KEY }, home };
    const dir = writeDockerSshFiles(files);
    expect(dir).toBe(path.join(home, ".mmagent/ssh/p.s.h"));
    const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
    expect([".mmagent", ".mmagent/ssh", ".mmagent/ssh/p.s.h"].map((d) => mode(path.join(home, d)))).toEqual(["700", "700", "700"]);
    // CRLF from a Windows clipboard becomes LF, and the final newline OpenSSH needs is there.
    expect(fs.readFileSync(path.join(dir, "id_key"), "utf8")).toBe("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n");
    expect([mode(path.join(dir, "id_key")), mode(path.join(dir, "known_hosts"))]).toEqual(["600", "600"]);
    const before = fs.statSync(path.join(dir, "id_key")).ino;
    writeDockerSshFiles(files);
    expect(fs.statSync(path.join(dir, "id_key")).ino).toBe(before);
    writeDockerSshFiles({ ...files, privateKey: "rotated" });
    expect(fs.readFileSync(path.join(dir, "id_key"), "utf8")).toBe("rotated\n");
    expect(fs.readdirSync(dir).sort()).toEqual(["id_key", "known_hosts"]);
});

test("a directory opened to others is closed; a symlink in its place is refused", () => {
    const dir = path.join(home, "keys");
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    writeDockerSshFiles({ dir, privateKey: "k", connection: { host: "h", port: 22, hostKey: KEY }, home });
    expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe("700");
    const elsewhere = path.join(home, "elsewhere");
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(home, "link"));
    expect(() => writeDockerSshFiles({ dir: path.join(home, "link"), privateKey: "k", connection: { host: "h", port: 22, hostKey: KEY }, home })).toThrow(/is not a directory/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
});

// chown needs root (CI runs as root); as another user this shows as skipped.
(process.getuid?.() === 0 ? test : test.skip)("a directory owned by another user is refused before the key is written", () => {
    const dir = path.join(home, "theirs");
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, 65534, 65534);
    expect(() => writeDockerSshFiles({ dir, privateKey: "k", connection: { host: "h", port: 22, hostKey: KEY }, home })).toThrow(/belongs to uid 65534/);
    expect(fs.readdirSync(dir)).toEqual([]);
});
