/**
 * Config validation: every bad config is refused before anything is registered, with the
 * `mmagent:` key path and a reason that says how to fix it; all problems at once.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigContext, DEFAULT_IMAGES, parseStackConfig, proxyImage, RawStackConfig, StackConfig } from "../../components/config";
import { MAX_ENV_STRING_BYTES, maxParamBytes, renderScriptStdin } from "../../components/hostScript";
import { prepareHostParams } from "../../components/nvidiaHost";
import { proxyCaddyConfig, proxyConfigParams, proxyHaproxyConfig } from "../../components/reverseProxyNetwork";
import { planGuards, planSmokeTestGpus, planVolumes } from "../../components/stack";
import { ensureParams, restoreParams, snapshotParams } from "../../components/storageLayout";
import { LIMITS } from "../../components/validators";

const ctx: ConfigContext = { stackName: "test", projectDir: "/proj", hasSshPrivateKey: true };

/** A small valid config; each case below breaks one thing. */
function base(): Record<string, any> {
    return {
        host: { connection: { kind: "local" }, gpus: [0, 1] },
        storage: { backend: "btrfs", root: "/srv/mmagent" },
        network: { ipv6Subnet: "fd00:1::/64" },
        proxy: { bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: "internal" },
        services: { agent: { host: "agent.localhost" }, vectorDb: { enabled: true } },
    };
}

function errorsOf(raw: RawStackConfig, context = ctx): { propertyPath: string; reason: string }[] {
    try {
        parseStackConfig(raw, context);
    } catch (e) {
        if (!pulumi.InputPropertiesError.isInstance(e)) throw e;
        return e.errors;
    }
    return [];
}

function withChange(change: (c: Record<string, any>) => void): Record<string, any> {
    const c = base();
    change(c);
    return c;
}

test("the base config is valid and gets defaults", () => {
    const c: StackConfig = parseStackConfig(base(), ctx);
    expect(c.namePrefix).toBe("test");
    expect(c.host.toolkitVersion).toBe("1.18.0-1");
    expect(c.network.name).toBe("reverse_proxy");
    expect(c.storage.retention.keep).toBe(10);
    expect(c.services.cache.maxMemoryMiB).toBe(256);
    expect(c.host.sysctls).toEqual({ "fs.inotify.max_user_watches": "524288" });
});

/** A GPU UUID, distinct per `i`. */
const uuid = (i: number) => `GPU-${i.toString(16).padStart(8, "0")}-1111-2222-3333-444444444444`;
/** An image reference of exactly `n` characters (n >= 3). */
const imageOf = (n: number) => `${"a".repeat(n - 2)}:1`;
/** `n` sysctls, each key and value of the given lengths. */
const sysctlsOf = (n: number, keyLength = 20, valueLength = 1) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(3, "0")}.${"x".repeat(keyLength - 5)}`, "9".repeat(valueLength)]));

// [description, change, expected key path, reason fragment]
const BAD: [string, (c: Record<string, any>) => void, string, RegExp][] = [
    ["unknown top-level key", (c) => (c.hots = {}), "mmagent:hots", /unknown key/],
    ["unknown nested key", (c) => (c.proxy.tsl = "off"), "mmagent:proxy.tsl", /check its spelling/],
    ["IPv6 subnet not a CIDR", (c) => (c.network.ipv6Subnet = "fd00::"), "mmagent:network.ipv6Subnet", /IPv6 CIDR/],
    ["IPv6 subnet too small", (c) => (c.network.ipv6Subnet = "fd00::/124"), "mmagent:network.ipv6Subnet", /too small/],
    ["IPv6 subnet too large", (c) => (c.network.ipv6Subnet = "fd00::/32"), "mmagent:network.ipv6Subnet", /too large/],
    ["IPv6 subnet with host bits", (c) => (c.network.ipv6Subnet = "fd00::1/64"), "mmagent:network.ipv6Subnet", /host bits must be zero: use "fd00::\/64"/],
    ["IPv4 given as IPv6 subnet", (c) => (c.network.ipv6Subnet = "10.0.0.0/24"), "mmagent:network.ipv6Subnet", /ipv4 subnet/],
    ["IPv4 subnet malformed", (c) => (c.network.ipv4Subnet = "10.0.0/24"), "mmagent:network.ipv4Subnet", /IPv4 CIDR/],
    ["IPv4 subnet too small", (c) => (c.network.ipv4Subnet = "10.0.0.0/30"), "mmagent:network.ipv4Subnet", /too small/],
    ["IPv4 subnet in the default bridge's pool", (c) => (c.network.ipv4Subnet = "172.17.5.0/24"), "mmagent:network.ipv4Subnet", /Docker's address pool 172\.17\.0\.0\/16.*Pool overlaps/],
    ["IPv4 subnet in a Compose pool", (c) => (c.network.ipv4Subnet = "172.30.0.0/24"), "mmagent:network.ipv4Subnet", /address pool 172\.28\.0\.0\/14/],
    ["IPv4 subnet holding a whole pool", (c) => (c.network.ipv4Subnet = "192.0.0.0/8"), "mmagent:network.ipv4Subnet", /address pool 192\.168\.0\.0\/16/],
    ["derived IPv4 subnet in a custom daemon pool", (c) => (c.network.dockerAddressPools = ["172.16.0.0/12"]), "mmagent:network.ipv4Subnet", /the default 172\.16\.\d+\.0\/24 \(derived from the network name\)/],
    ["IPv6 subnet in a custom daemon pool", (c) => (c.network.dockerAddressPools = ["fd00::/8"]), "mmagent:network.ipv6Subnet", /fd00:1::\/64 overlaps Docker's address pool fd00::\/8/],
    ["daemon pool not a CIDR", (c) => (c.network.dockerAddressPools = ["10.0.0.0"]), "mmagent:network.dockerAddressPools[0]", /use a CIDR/],
    ["IPv4 loopback subnet", (c) => (c.network.ipv4Subnet = "127.0.0.0/24"), "mmagent:network.ipv4Subnet", /127\.0\.0\.0\/8 \(loopback\)/],
    ["IPv4 subnet covering loopback", (c) => (c.network.ipv4Subnet = "127.0.0.0/8"), "mmagent:network.ipv4Subnet", /loopback/],
    ["IPv4 link-local subnet", (c) => (c.network.ipv4Subnet = "169.254.0.0/24"), "mmagent:network.ipv4Subnet", /link-local.*169\.254\.169\.254/],
    ["IPv4 multicast subnet", (c) => (c.network.ipv4Subnet = "224.0.0.0/24"), "mmagent:network.ipv4Subnet", /multicast/],
    ["IPv4 unspecified subnet", (c) => (c.network.ipv4Subnet = "0.0.0.0/24"), "mmagent:network.ipv4Subnet", /unspecified/],
    ["IPv6 loopback and unspecified", (c) => (c.network.ipv6Subnet = "::/120"), "mmagent:network.ipv6Subnet", /unspecified and loopback/],
    ["IPv6 link-local subnet", (c) => (c.network.ipv6Subnet = "fe80::/64"), "mmagent:network.ipv6Subnet", /IPv6 link-local/],
    ["IPv6 multicast subnet", (c) => (c.network.ipv6Subnet = "ff00::/64"), "mmagent:network.ipv6Subnet", /IPv6 multicast/],
    ["IPv4-mapped IPv6 subnet", (c) => (c.network.ipv6Subnet = "::ffff:172.16.10.0/120"), "mmagent:network.ipv6Subnet", /IPv4-mapped/],
    ["network name with spaces", (c) => (c.network.name = "my net"), "mmagent:network.name", /lowercase letters/],
    ["unknown storage backend", (c) => (c.storage.backend = "lvm"), "mmagent:storage.backend", /"zfs", "btrfs" or "dir"/],
    ["relative btrfs root", (c) => (c.storage.root = "srv/mmagent"), "mmagent:storage.root", /absolute path/],
    ["root with ..", (c) => (c.storage.root = "/srv/../etc"), "mmagent:storage.root", /'\.\.'/],
    ["root with a space", (c) => (c.storage.root = "/srv/my data"), "mmagent:storage.root", /no spaces/],
    ["root with $()", (c) => (c.storage.root = "/srv/$(reboot)"), "mmagent:storage.root", /absolute path of letters/],
    ["root is /", (c) => (c.storage.root = "/"), "mmagent:storage.root", /absolute path of letters/],
    ["zfs dataset with a space", (c) => Object.assign(c.storage, { backend: "zfs", root: "tank/my data" }), "mmagent:storage.root", /dataset name/],
    ["zfs dataset with ;", (c) => Object.assign(c.storage, { backend: "zfs", root: "tank;rm -rf /" }), "mmagent:storage.root", /dataset name/],
    ["zfs dataset naming a snapshot", (c) => Object.assign(c.storage, { backend: "zfs", root: "tank/x@snap" }), "mmagent:storage.root", /dataset name/],
    ["retention keep 0", (c) => (c.storage.retention = { keep: 0 }), "mmagent:storage.retention.keep", /at least 1/],
    ["quota for an unknown volume", (c) => (c.storage.quotasGiB = { "agent-dbb": 5 }), "mmagent:storage.quotasGiB.agent-dbb", /no volume is named/],
    ["negative quota", (c) => (c.storage.quotasGiB = { "agent-db": -1 }), "mmagent:storage.quotasGiB.agent-db", /positive/],
    ["duplicate volume name (extra vs role)", (c) => (c.services.agent.extraVolumes = [{ name: "agent-db", profile: "db", target: "/x" }]), "mmagent:services.agent.extraVolumes[0].name", /already used/],
    ["extra volume on a used mount target", (c) => (c.services.agent.extraVolumes = [{ name: "more-input", profile: "media", target: "/input", readOnly: true }]), "mmagent:services.agent.extraVolumes[0].target", /already mounted/],
    ["extra volume with unknown profile", (c) => (c.services.agent.extraVolumes = [{ name: "x-vol", profile: "ssd", target: "/x" }]), "mmagent:services.agent.extraVolumes[0].profile", /one of db, media/],
    ["extra volume named like an option", (c) => (c.services.agent.extraVolumes = [{ name: "--force", profile: "db", target: "/x" }]), "mmagent:services.agent.extraVolumes[0].name", /starting with a letter/],
    ["route to a service that does not exist", (c) => (c.proxy.routes = [{ host: "x.localhost", service: "search", port: 80 }]), "mmagent:proxy.routes[0].service", /no service "search"/],
    ["route to a disabled service", (c) => ((c.services.vectorDb.enabled = false), (c.proxy.routes = [{ host: "db.localhost", service: "vectorDb", port: 5432 }])), "mmagent:proxy.routes[0].service", /disabled/],
    ["duplicate route host", (c) => (c.proxy.routes = [{ host: "agent.localhost", service: "agent", port: 8080 }]), "mmagent:proxy.routes[0].host", /already defined/],
    ["route host not a DNS name", (c) => (c.proxy.routes = [{ host: "bad host", service: "agent", port: 8080 }]), "mmagent:proxy.routes[0].host", /DNS name/],
    ["route port out of range", (c) => (c.proxy.routes = [{ host: "x.localhost", service: "agent", port: 70000 }]), "mmagent:proxy.routes[0].port", /1 and 65535/],
    ["http and https on one port", (c) => (c.proxy.httpsPort = 8080), "mmagent:proxy.httpsPort", /different ports/],
    ["proxy port colliding with the health endpoint", (c) => (c.proxy.httpPort = 2020), "mmagent:proxy.httpPort", /health\/admin/],
    ["proxy on 0.0.0.0 without opting in", (c) => (c.proxy.bindAddress = "0.0.0.0"), "mmagent:proxy.bindAddress", /allowPublicBind/],
    ["proxy on :: without opting in", (c) => (c.proxy.bindAddress = "::"), "mmagent:proxy.bindAddress", /allowPublicBind/],
    ["bind address not an IP", (c) => (c.proxy.bindAddress = "localhost"), "mmagent:proxy.bindAddress", /IP address/],
    ["admin API published", (c) => (c.proxy.adminApi = "0.0.0.0:2019"), "mmagent:proxy.adminApi", /never published/],
    ["ACME without an e-mail", (c) => (c.proxy.tls = "acme"), "mmagent:proxy.acmeEmail", /needs an e-mail/],
    ["ACME for a .localhost name", (c) => Object.assign(c.proxy, { tls: "acme", acmeEmail: "a@b.co" }), "mmagent:services.agent.host", /ACME cannot issue/],
    ["bad ACME e-mail", (c) => Object.assign(c.proxy, { tls: "acme", acmeEmail: "ops" }), "mmagent:proxy.acmeEmail", /e-mail/],
    ["unknown TLS mode", (c) => (c.proxy.tls = "self-signed"), "mmagent:proxy.tls", /"acme", "internal" or "off"/],
    ["HAProxy with ACME", (c) => Object.assign(c.proxy, { engine: "haproxy", tls: "acme", acmeEmail: "ops@example.com" }), "mmagent:proxy.engine", /does not obtain ACME certificates: use engine "caddy"/],
    ["a Caddy image for the default engine (haproxy with tls internal)", (c) => (c.proxy.image = "caddy:2.10.2-alpine"), "mmagent:proxy.image", /is a Caddy image, but the proxy engine is "haproxy".*set proxy\.engine to "caddy"/],
    ["an HAProxy image for engine caddy", (c) => Object.assign(c.proxy, { engine: "caddy", image: "registry.example.com/lb/haproxy:2.6.31@sha256:" + "a".repeat(64) }), "mmagent:proxy.image", /is a HAProxy image, but the proxy engine is "caddy"/],
    ["more routes than the config step takes", (c) => (c.proxy.routes = Array.from({ length: 65 }, (_, i) => ({ host: `r${i}.localhost`, service: "agent", port: 8080 }))), "mmagent:proxy.routes", /at most 64 routes/],
    ["HAProxy on its own hold port", (c) => Object.assign(c.proxy, { engine: "haproxy", tls: "off", httpPort: 2021 }), "mmagent:proxy.httpPort", /hold listener/],
    ["unknown proxy engine", (c) => (c.proxy.engine = "nginx"), "mmagent:proxy.engine", /"caddy" or "haproxy"/],
    ["cpuSet with letters", (c) => (c.services.agent.cpuSet = "0-3,a"), "mmagent:services.agent.cpuSet", /"0-3,5"/],
    ["cpuSet descending range", (c) => (c.services.agent.cpuSet = "3-1"), "mmagent:services.agent.cpuSet", /ascending/],
    ["cpuSet overlapping", (c) => (c.services.agent.cpuSet = "0-3,2"), "mmagent:services.agent.cpuSet", /non-overlapping/],
    ["cpuSet with spaces", (c) => (c.services.agent.cpuSet = "0, 1"), "mmagent:services.agent.cpuSet", /"0-3,5"/],
    ["GPU indices on a host without GPUs", (c) => ((c.host.gpus = "none"), (c.services.inference = { gpus: [0] })), "mmagent:services.inference.gpus", /host.gpus is "none"/],
    ["GPU not among the host's", (c) => (c.services = { ...c.services, inference: { gpus: [2] } }), "mmagent:services.inference.gpus[0]", /not in host.gpus/],
    ["GPU index negative", (c) => (c.host.gpus = [-1]), "mmagent:host.gpus[0]", /./],
    ["GPU UUID malformed", (c) => (c.host.gpus = ["GPU-123"]), "mmagent:host.gpus[0]", /nvidia-smi -L/],
    ["GPU listed twice", (c) => (c.host.gpus = [0, 0]), "mmagent:host.gpus", /once/],
    ["toolkit version with a shell command", (c) => (c.host.toolkitVersion = "1.18.0-1; curl evil"), "mmagent:host.toolkitVersion", /Debian package version/],
    ["sysctl key with a space", (c) => (c.host.sysctls = { "fs inotify": "1" }), "mmagent:host.sysctls.fs inotify", /sysctl key/],
    ["sysctl value with a newline", (c) => (c.host.sysctls = { "vm.swappiness": "1\nkernel.x=1" }), "mmagent:host.sysctls.vm.swappiness", /plain value/],
    ["ssh without a host key", (c) => (c.host.connection = { kind: "ssh", host: "gpu1" }), "mmagent:host.connection.hostKey", /pins the host.s public key.*ssh-keyscan/],
    ["two routes whose hosts differ only in case", (c) => { c.services.agent.host = "agent.localhost"; c.proxy.routes = [{ host: "Agent.Localhost", service: "inference", port: 11434 }]; }, "mmagent:proxy.routes[0].host", /already defined.*without case/],
    ["host key that is a private key", (c) => (c.host.connection = { kind: "ssh", host: "gpu1", hostKey: "-----BEGIN OPENSSH PRIVATE KEY-----" }), "mmagent:host.connection.hostKey", /ssh-keyscan/],
    ["host key with the host name in front", (c) => (c.host.connection = { kind: "ssh", host: "gpu1", hostKey: "gpu1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" }), "mmagent:host.connection.hostKey", /without the host name/],
    ["host key whose type disagrees with its data", (c) => (c.host.connection = { kind: "ssh", host: "gpu1", hostKey: "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" }), "mmagent:host.connection.hostKey", /says "ssh-ed25519", not ssh-rsa/],
    ["host key cut short", (c) => (c.host.connection = { kind: "ssh", host: "gpu1", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRI" }), "mmagent:host.connection.hostKey", /32 bytes|not valid base64/],
    ["ssh host with a metacharacter", (c) => (c.host.connection = { kind: "ssh", host: "gpu1;id", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" }), "mmagent:host.connection.host", /DNS name or an IP/],
    ["ssh user like an option", (c) => (c.host.connection = { kind: "ssh", host: "gpu1", user: "-oProxyCommand=x", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" }), "mmagent:host.connection.user", /Unix user/],
    ["unknown connection kind", (c) => (c.host.connection = { kind: "winrm" }), "mmagent:host.connection.kind", /"local" or "ssh"/],
    ["image without tag or digest", (c) => (c.services.agent.image = "ghcr.io/open-webui/open-webui"), "mmagent:services.agent.image", /pin the image/],
    ["image that is not a reference", (c) => (c.services.agent.image = "Open WebUI:latest"), "mmagent:services.agent.image", /image reference/],
    ["image with a bad digest", (c) => (c.services.cache = { image: "redis@sha256:1234" }), "mmagent:services.cache.image", /image reference/],
    ["env name with a dash", (c) => (c.services.agent.env = { "MY-VAR": "1" }), "mmagent:services.agent.env.MY-VAR", /environment variable name/],
    ["env value with a newline", (c) => (c.services.agent.env = { A: "x\ny" }), "mmagent:services.agent.env.A", /control characters/],
    ["restoreFrom not a snapshot name", (c) => (c.services.agent.restoreFrom = "yesterday"), "mmagent:services.agent.restoreFrom", /pulumi stack output snapshots/],
    ["restoreFrom on the dir backend", (c) => ((c.storage.backend = "dir"), (c.services.agent.restoreFrom = "mmagent-pre-1a2b3c4d")), "mmagent:services.agent.restoreFrom", /dir backend takes no snapshots/],
    ["memory too small", (c) => (c.services.agent.memoryMiB = 1), "mmagent:services.agent.memoryMiB", /16 MiB/],
    ["memory as text", (c) => (c.services.agent.memoryMiB = "2g"), "mmagent:services.agent.memoryMiB", /expected number/],
    ["healthcheck without CMD", (c) => (c.services.agent.healthcheck = ["curl", "-f", "x"]), "mmagent:services.agent.healthcheck", /"CMD"/],
    ["capability that does not exist", (c) => (c.services.agent.capAdd = ["CAP_FLY"]), "mmagent:services.agent.capAdd[0]", /Linux capability name/],
    ["capability SYS_ADMIN", (c) => (c.services.agent.capAdd = ["CHOWN", "SYS_ADMIN"]), "mmagent:services.agent.capAdd[1]", /SYS_ADMIN is refused .*container escape/],
    ["capability cap_sys_admin (any spelling)", (c) => (c.services.cache = { capAdd: ["cap_sys_admin"] }), "mmagent:services.cache.capAdd[0]", /SYS_ADMIN is refused/],
    ["capability NET_ADMIN", (c) => (c.services.inference = { capAdd: ["NET_ADMIN"] }), "mmagent:services.inference.capAdd[0]", /NET_ADMIN is refused/],
    ["capability SYS_PTRACE", (c) => (c.services.agent.capAdd = ["SYS_PTRACE"]), "mmagent:services.agent.capAdd[0]", /SYS_PTRACE is refused/],
    ["capability SYS_MODULE", (c) => (c.services.agent.capAdd = ["SYS_MODULE"]), "mmagent:services.agent.capAdd[0]", /SYS_MODULE is refused/],
    ["capability ALL", (c) => (c.services.vectorDb.capAdd = ["ALL"]), "mmagent:services.vectorDb.capAdd[0]", /ALL is refused .*privileged/],
    ["capability DAC_READ_SEARCH", (c) => (c.services.agent.capAdd = ["DAC_READ_SEARCH"]), "mmagent:services.agent.capAdd[0]", /shocker/],
    ["namePrefix with uppercase", (c) => (c.namePrefix = "Prod"), "mmagent:namePrefix", /lowercase/],
    ["storage missing", (c) => delete c.storage, "mmagent:storage", /required/],
    ["GPU selection of the wrong type", (c) => (c.host.gpus = "0"), "mmagent:host.gpus", /"none", "all" or a list of GPU indices\/UUIDs/],
    // Length limits (validators.ts LIMITS): every string that becomes a host-script parameter.
    ["namePrefix too long for the storage script's container names", (c) => (c.namePrefix = "a".repeat(23)), "mmagent:namePrefix", /at most 22 characters: .*container names of at most 32.*"<prefix>-inference"/],
    ["default namePrefix (the stack name) too long", () => undefined, "mmagent:namePrefix", /set mmagent:namePrefix to a shorter name/],
    ["too many GPUs", (c) => (c.host.gpus = Array.from({ length: 129 }, (_, i) => uuid(i))), "mmagent:host.gpus", /at most 128 GPUs, or use "all"/],
    ["too many GPUs for a service", (c) => ((c.host.gpus = "all"), (c.services.inference = { gpus: Array.from({ length: 129 }, (_, i) => uuid(i)) })), "mmagent:services.inference.gpus", /at most 128 GPUs/],
    ["toolkit version too long", (c) => (c.host.toolkitVersion = `1.${"0".repeat(127)}`), "mmagent:host.toolkitVersion", /at most 128 characters/],
    ["sysctl key too long", (c) => (c.host.sysctls = sysctlsOf(1, 129)), `mmagent:host.sysctls.k000.${"x".repeat(124)}`, /invalid key: a sysctl key has at most 128 characters/],
    ["sysctl value too long", (c) => (c.host.sysctls = { "vm.swappiness": "1".repeat(257) }), "mmagent:host.sysctls.vm.swappiness", /at most 256 characters/],
    ["sysctl value over the kernel's per-variable limit (issue 11)", (c) => (c.host.sysctls = { "vm.swappiness": "1".repeat(200_000) }), "mmagent:host.sysctls.vm.swappiness", /at most 256 characters/],
    ["too many sysctls", (c) => (c.host.sysctls = sysctlsOf(65)), "mmagent:host.sysctls", /at most 64 sysctls.*\/etc\/sysctl\.d/],
    ["smoke-test image too long", (c) => (c.host.gpuSmokeTestImage = imageOf(513)), "mmagent:host.gpuSmokeTestImage", /at most 512 characters \(this one has 513\)/],
    ["service image too long", (c) => (c.services.agent.image = imageOf(513)), "mmagent:services.agent.image", /at most 512 characters/],
    ["proxy image too long", (c) => (c.proxy.image = imageOf(100_000)), "mmagent:proxy.image", /at most 512 characters/],
    ["btrfs root too long", (c) => (c.storage.root = `/srv/${"a".repeat(1020)}`), "mmagent:storage.root", /at most 1024 characters \(this one has 1025\)/],
    ["dir root too long (relative)", (c) => Object.assign(c.storage, { backend: "dir", root: `data/${"a".repeat(1020)}` }), "mmagent:storage.root", /at most 1024 characters/],
    ["zfs dataset too long for a restore's names", (c) => Object.assign(c.storage, { backend: "zfs", root: `tank/${"a".repeat(122)}` }), "mmagent:storage.root", /zfs backend, a dataset name has at most 126 characters here: ZFS names have at most 255/],
    ["too many extra volumes", (c) => (c.services.agent.extraVolumes = Array.from({ length: 33 }, (_, i) => ({ name: `extra-${i}`, profile: "text", target: `/extra/${i}` }))), "mmagent:services.agent.extraVolumes", /at most 32 extra volumes/],
    ["quota too large to print as a plain number", (c) => (c.storage.quotasGiB = { "agent-db": 1e21 }), "mmagent:storage.quotasGiB.agent-db", /at most 1048576 GiB/],
    ["restoreFrom longer than a snapshot name", (c) => (c.services.agent.restoreFrom = `mmagent-pre-${"a".repeat(41)}`), "mmagent:services.agent.restoreFrom", /pulumi stack output snapshots/],
    // storage.backend auto: the root's shape says dataset or path.
    ["auto with a dataset name holding a space", (c) => Object.assign(c.storage, { backend: "auto", root: "tank/my data" }), "mmagent:storage.root", /zfs backend \(auto: a root without a leading '\/' or '\.' names a ZFS dataset\), use a dataset name/],
    ["auto with a dataset name too long", (c) => Object.assign(c.storage, { backend: "auto", root: `tank/${"a".repeat(122)}` }), "mmagent:storage.root", /at most 126 characters/],
    ["auto with a path holding ..", (c) => Object.assign(c.storage, { backend: "auto", root: "/srv/../etc" }), "mmagent:storage.root", /'\.\.'/],
    ["auto with a relative path on an ssh host", (c) => Object.assign(c, { host: { connection: { kind: "ssh", host: "gpu1.example.com", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" } }, storage: { backend: "auto", root: "./data" } }), "mmagent:storage.root", /on an ssh host, give a ZFS dataset such as "tank\/mmagent" or an absolute path/],
    ["auto with a relative path leaving the project", (c) => Object.assign(c.storage, { backend: "auto", root: "../elsewhere" }), "mmagent:storage.root", /under auto, a relative path starts with '\.'/],
    // NFS input volumes.
    ["nfs volume not read-only", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, readOnly: false }]), "mmagent:services.agent.extraVolumes[0].readOnly", /NFS volume is read-only input data.*set readOnly: true/],
    ["nfs volume with readOnly left out", (c) => (c.services.agent.extraVolumes = [{ name: "datasets", profile: "media", target: "/datasets", nfs: { server: "nas.example.com", export: "/exports/datasets" } }]), "mmagent:services.agent.extraVolumes[0].readOnly", /set readOnly: true/],
    ["nfs server with a space", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "nas example", export: "/x" } }]), "mmagent:services.agent.extraVolumes[0].nfs.server", /DNS name or an IP address/],
    ["nfs server like an option", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "-o", export: "/x" } }]), "mmagent:services.agent.extraVolumes[0].nfs.server", /DNS name or an IP address/],
    ["nfs server smuggling an option", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "nas,rw", export: "/x" } }]), "mmagent:services.agent.extraVolumes[0].nfs.server", /DNS name or an IP address/],
    ["nfs export relative", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "exports/x" } }]), "mmagent:services.agent.extraVolumes[0].nfs.export", /absolute/],
    ["nfs export with ..", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/exports/../etc" } }]), "mmagent:services.agent.extraVolumes[0].nfs.export", /'\.\.'/],
    ["nfs export with a comma", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x,rw" } }]), "mmagent:services.agent.extraVolumes[0].nfs.export", /absolute/],
    ["nfs option soft", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", options: ["soft"] } }]), "mmagent:services.agent.extraVolumes[0].nfs.options[0]", /"soft" is refused: soft mounts return I\/O errors/],
    ["nfs option rw", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", options: ["nconnect=4", "rw"] } }]), "mmagent:services.agent.extraVolumes[0].nfs.options[1]", /"rw" is refused/],
    ["nfs option nfsvers", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", options: ["nfsvers=3"] } }]), "mmagent:services.agent.extraVolumes[0].nfs.options[0]", /mounts NFSv4\.2/],
    ["nfs option not on the list", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", options: ["sec=none"] } }]), "mmagent:services.agent.extraVolumes[0].nfs.options[0]", /not an allowed NFS option; use only: rsize=1048576, wsize/],
    ["nfs option smuggling another", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", options: ["rsize=65536,rw"] } }]), "mmagent:services.agent.extraVolumes[0].nfs.options[0]", /not a valid rsize value/],
    ["nfs option nconnect out of range", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", options: ["nconnect=17"] } }]), "mmagent:services.agent.extraVolumes[0].nfs.options[0]", /nconnect=4/],
    ["nfs option twice", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", options: ["timeo=600", "timeo=100"] } }]), "mmagent:services.agent.extraVolumes[0].nfs.options[1]", /given twice/],
    ["nfs with an unknown key", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5", export: "/x", path: "/y" } }]), "mmagent:services.agent.extraVolumes[0].nfs.path", /unknown key/],
    ["nfs without export", (c) => (c.services.agent.extraVolumes = [{ ...{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }, nfs: { server: "10.0.0.5" } }]), "mmagent:services.agent.extraVolumes[0].nfs.export", /required/],
    ["quota on an nfs volume", (c) => ((c.services.agent.extraVolumes = [{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "nas.example.com", export: "/exports/datasets" } }]), (c.storage.quotasGiB = { datasets: 5 })), "mmagent:storage.quotasGiB.datasets", /NFS volume.*remove this quota/],
];

describe.each(BAD)("refuses %s", (title, change, keyPath, reason) => {
    test(`names ${keyPath.length > 80 ? `${keyPath.slice(0, 77)}...` : keyPath}`, () => {
        // One case runs under a stack name too long for the default namePrefix.
        const context = title.startsWith("default namePrefix") ? { ...ctx, stackName: "production-eu-west-gpu1" } : ctx;
        const errors = errorsOf(withChange(change), context);
        const hit = errors.find((e) => e.propertyPath === keyPath);
        expect({ errors, hit: hit !== undefined }).toEqual({ errors, hit: true });
        expect(hit!.reason).toMatch(reason);
    });
});

test(`at least 40 bad configs are covered (${BAD.length})`, () => {
    expect(BAD.length).toBeGreaterThanOrEqual(40);
    console.log(`validation: ${BAD.length} hand-written bad configs, each refused with its key path`);
});

/**
 * The longest config validation accepts: every string that becomes a host-script parameter at
 * its limit, every list at its count. With host.gpus "all" the two GPU-capable roles may list
 * different GPUs, so the smoke test's union is twice as long as with a listed host.
 */
function longestConfig(kind: "zfs" | "btrfs", hostGpus: "list" | "all"): Record<string, any> {
    const prefix = `p${"x".repeat(LIMITS.namePrefix - 1)}`;
    const gpuIds = (from: number) => Array.from({ length: LIMITS.gpus }, (_, i) => uuid(from + i));
    const image = `registry.example.com/${"a".repeat(LIMITS.imageReference - 21 - 1 - 128 - 72)}:${"t".repeat(128)}@sha256:${"0".repeat(64)}`;
    const extraVolumes = (role: string) =>
        Array.from({ length: LIMITS.extraVolumes }, (_, i) => ({ name: `${role}-${String(i).padStart(2, "0")}-${"v".repeat(32 - role.length - 4)}`, profile: "db", target: `/extra/${i}` }));
    const service = (role: string, gpus?: unknown) => ({ enabled: true, image, extraVolumes: extraVolumes(role), restoreFrom: `mmagent-replaced-${"0".repeat(40)}`, ...(gpus ? { gpus } : {}) });
    return {
        namePrefix: prefix,
        host: {
            connection: { kind: "local" },
            gpus: hostGpus === "list" ? gpuIds(0) : "all",
            toolkitVersion: `1.${"0".repeat(LIMITS.toolkitVersion - 2)}`,
            sysctls: sysctlsOf(LIMITS.sysctls, LIMITS.sysctlKey, LIMITS.sysctlValue),
            gpuSmokeTestImage: image,
        },
        storage: {
            backend: kind,
            root: kind === "zfs" ? `tank/${"d".repeat(LIMITS.zfsDataset - 5)}` : `/srv/${"d".repeat(LIMITS.storageRootPath - 5)}`,
            quotasGiB: { "agent-db": LIMITS.quotaGiB, "inference-models": 0.1 + 0.2 },
        },
        proxy: { image },
        services: {
            // Listed host GPUs bound the roles' lists; with "all", the two lists may differ.
            inference: service("inf", gpuIds(0)),
            agent: service("agt", gpuIds(hostGpus === "list" ? 0 : LIMITS.gpus)),
            cache: service("cch"),
            vectorDb: service("vdb"),
        },
    };
}

describe("length limits keep every host-script parameter far below the kernel's 128 KiB per variable", () => {
    test.each([
        ["zfs", "list"],
        ["btrfs", "all"],
    ] as const)("the longest %s config validation accepts (host GPUs: %s)", (kind, hostGpus) => {
        const config = parseStackConfig(longestConfig(kind, hostGpus), ctx);
        const steps: { script: "prepare-host" | "storage"; params: Record<string, string> }[] = [
            { script: "prepare-host", params: prepareHostParams({ ...config.host, smokeTestGpus: planSmokeTestGpus(config) }) },
        ];
        const volumes = planVolumes(config);
        for (const v of volumes) steps.push({ script: "storage", params: ensureParams(config.storage, v) });
        for (const guard of Object.values(planGuards(config))) {
            const names = volumes.filter((v) => v.service === guard.container && !v.readOnly).map((v) => v.name);
            steps.push({ script: "storage", params: snapshotParams({ ...config.storage, keepSnapshots: config.storage.retention.keep }, names, guard, "mmagent-pre-1a2b3c4d") });
            if (guard.restoreFrom) steps.push({ script: "storage", params: restoreParams(config.storage, names, guard) });
        }
        // Each parameter as the kernel counts it: NAME=value and a NUL.
        const sizes = steps.flatMap((s) => Object.entries(s.params).map(([name, value]) => ({ name, bytes: Buffer.byteLength(`${name}=${value}`) + 1 })));
        const largest = sizes.reduce((a, b) => (b.bytes > a.bytes ? b : a));
        console.log(`longest ${kind} config: ${steps.length} host-script steps; largest parameter ${largest.name}, ${largest.bytes} bytes (kernel: ${MAX_ENV_STRING_BYTES})`);
        expect(largest.bytes).toBeLessThanOrEqual(MAX_ENV_STRING_BYTES / 4);
        for (const s of steps) expect(() => renderScriptStdin(s.script, s.params)).not.toThrow();
        // The joined lists are at their counts, so this really is the longest.
        const prepare = steps[0].params;
        expect(prepare.MMAGENT_SYSCTLS.split("\n")).toHaveLength(LIMITS.sysctls);
        expect((hostGpus === "list" ? prepare.MMAGENT_GPUS : prepare.MMAGENT_SMOKE_GPUS).split(",")).toHaveLength(hostGpus === "list" ? LIMITS.gpus : 2 * LIMITS.gpus);
        expect(Math.max(...steps.map((s) => (s.params.MMAGENT_VOLUMES ?? "").split(" ").length))).toBeGreaterThan(LIMITS.extraVolumes);
        expect(config.storage.root).toHaveLength(kind === "zfs" ? LIMITS.zfsDataset : LIMITS.storageRootPath);
    });
});

test("proxy.engine: HAProxy by default (tls internal or off), Caddy for tls acme, each with its image unless one is named", () => {
    const engineAndImage = (change: (c: any) => void) => {
        const c = parseStackConfig(withChange(change), ctx);
        return [c.proxy.engine, proxyImage(c)];
    };
    expect(engineAndImage(() => {})).toEqual(["haproxy", DEFAULT_IMAGES.proxyHaproxy]);
    expect(engineAndImage((c) => (c.proxy.tls = "off"))).toEqual(["haproxy", DEFAULT_IMAGES.proxyHaproxy]);
    expect(engineAndImage((c) => (Object.assign(c.proxy, { tls: "acme", acmeEmail: "ops@example.com" }), (c.services.agent.host = "agent.example.com")))).toEqual(["caddy", DEFAULT_IMAGES.proxy]);
    expect(engineAndImage((c) => (c.proxy.engine = "caddy"))).toEqual(["caddy", DEFAULT_IMAGES.proxy]);
    const named = parseStackConfig(withChange((c) => Object.assign(c.proxy, { engine: "haproxy", tls: "off", image: "registry.example.com/haproxy:2.6.31" })), ctx);
    expect(proxyImage(named)).toBe("registry.example.com/haproxy:2.6.31");
});

test("all problems are reported at once", () => {
    const errors = errorsOf(
        withChange((c) => {
            c.network.ipv6Subnet = "nope";
            c.services.agent.cpuSet = "x";
            c.proxy.tls = "acme";
        }),
    );
    expect(errors.map((e) => e.propertyPath)).toEqual(expect.arrayContaining(["mmagent:network.ipv6Subnet", "mmagent:services.agent.cpuSet"]));
});

test("an ssh host needs the sshPrivateKey secret", () => {
    const raw = withChange((c) => (c.host.connection = { kind: "ssh", host: "gpu1.example.com", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" }));
    expect(errorsOf(raw, { ...ctx, hasSshPrivateKey: false }).map((e) => e.propertyPath)).toEqual(["mmagent:sshPrivateKey"]);
    expect(errorsOf(raw)).toEqual([]);
});

test("Docker environment variables that would override the provider's host are refused, each by name", () => {
    const env = { DOCKER_CONTEXT: "laptop", DOCKER_CERT_PATH: "/certs", DOCKER_HOST: "tcp://x:2376", DOCKER_KEY_MATERIAL: "" };
    const errors = errorsOf(withChange(() => undefined), { ...ctx, environment: env });
    // DOCKER_HOST is only the default of `host`, which the program always sets; an empty variable is unset.
    expect(errors.map((e) => e.propertyPath)).toEqual(["$DOCKER_CONTEXT", "$DOCKER_CERT_PATH"]);
    expect(errors[0].reason).toMatch(/replaces host\.connection.*env -u DOCKER_CONTEXT pulumi up/);
    expect(() => parseStackConfig(withChange(() => undefined), { ...ctx, environment: env })).toThrow(/\$DOCKER_CONTEXT: is set \("laptop"\)/);
});

test("a project-relative dev root is resolved against the project; only for dir on a local host", () => {
    const c = parseStackConfig(withChange((x) => Object.assign(x.storage, { backend: "dir", root: ".mmagent-data/dev" })), ctx);
    expect(c.storage.root).toBe("/proj/.mmagent-data/dev");
    expect(errorsOf(withChange((x) => Object.assign(x.storage, { backend: "dir", root: "../elsewhere" })))[0].propertyPath).toBe("mmagent:storage.root");
});

test("the message lists every problem with its key", () => {
    expect(() => parseStackConfig(withChange((c) => (c.services.agent.cpuSet = "x")), ctx)).toThrow(/mmagent:services\.agent\.cpuSet: use CPU indices/);
});

test("storage.backend defaults to auto: a path root stays a path, a dataset name stays a dataset, a dot-relative root is resolved against the project", () => {
    const parse = (storage: Record<string, unknown>) => parseStackConfig(withChange((x) => (x.storage = storage)), ctx).storage;
    expect(parse({ root: "/srv/mmagent" })).toMatchObject({ backend: "auto", root: "/srv/mmagent" });
    expect(parse({ root: "tank/mmagent" })).toMatchObject({ backend: "auto", root: "tank/mmagent" });
    expect(parse({ root: ".mmagent-data/dev" })).toMatchObject({ backend: "auto", root: "/proj/.mmagent-data/dev" });
    expect(parse({ root: "./data" })).toMatchObject({ backend: "auto", root: "/proj/data" });
    // The dev stack's own file says auto too.
    const YAML = require("yaml");
    const dev = YAML.parse(require("fs").readFileSync(require("path").join(__dirname, "../../Pulumi.dev.yaml"), "utf8"));
    expect(dev.config["mmagent:storage"].backend).toBe("auto");
});

test("storage backend auto: restoreFrom is accepted (the host decides; its script refuses a restore where auto found plain directories)", () => {
    expect(errorsOf(withChange((x) => ((x.storage.backend = "auto"), (x.services.agent.restoreFrom = "mmagent-pre-1a2b3c4d"))))).toEqual([]);
});

test("an NFS input volume is accepted with the allowed options, IPv4, IPv6 or a name, and the pseudo-root export", () => {
    for (const [server, exp] of [["nas.example.com", "/exports/datasets"], ["10.0.0.5", "/"], ["fd00::5", "/srv/nfs4/models"]]) {
        const volume = { name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server, export: exp, options: ["rsize=1048576", "wsize=1048576", "timeo=600", "retrans=2", "noresvport", "nconnect=8", "actimeo=60"] } };
        const c = parseStackConfig(withChange((x) => (x.services.agent.extraVolumes = [volume])), ctx);
        expect(c.services.agent.extraVolumes[0].nfs).toEqual(volume.nfs);
        const planned = planVolumes(c).find((v) => v.name === "datasets");
        expect(planned).toMatchObject({ readOnly: true, nfs: volume.nfs });
    }
    const c = parseStackConfig(withChange((x) => (x.services.agent.extraVolumes = [{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs: { server: "10.0.0.5", export: "/x" } }])), ctx);
    expect(c.services.agent.extraVolumes[0].nfs!.options).toEqual([]);
});

test("the most routes, with the longest hosts and paths, keep each engine's config within the config step's parameter", () => {
    const longHost = (i: number) => `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.r${String(i).padStart(2, "0")}.${"d".repeat(63)}.io`;
    const routes = Array.from({ length: LIMITS.routes + 4 }, (_, i) => ({ host: longHost(i), upstream: `mm-${"x".repeat(20)}-vector-db`, port: 65535, path: `/${"p".repeat(200)}/*` }));
    expect(longHost(0)).toHaveLength(253);
    for (const tls of ["internal", "off"] as const) {
        expect(Buffer.byteLength(proxyHaproxyConfig({ routes, httpPort: 65535, httpsPort: 65534, tls }))).toBeLessThan(maxParamBytes("MMAGENT_CONFIG") / 3);
    }
    for (const tls of ["acme", "internal", "off"] as const) {
        // Caddy's JSON names each host twice (route and certificate policy): about 1.6 KiB a route.
        expect(Buffer.byteLength(proxyConfigParams({ configDir: "/c", containerName: "p", image: "i", adminApi: "loopback", config: proxyCaddyConfig({ routes, httpPort: 65535, httpsPort: 65534, tls, acmeEmail: "ops@example.com" }) }).MMAGENT_CONFIG)).toBeLessThan(maxParamBytes("MMAGENT_CONFIG"));
    }
});
