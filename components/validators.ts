/**
 * Primitive validators shared by the config schema and the components.
 *
 * Every string that can reach a host (a script parameter, a path, a dataset name, a container
 * name) goes through one of these first. They are allow-lists: a value is accepted only when it
 * matches a shape that cannot carry shell syntax, options (`--foo`) or control characters.
 */
import * as ipaddr from "ipaddr.js";
import { z } from "zod";

/**
 * Length limits of the config strings that reach a host script as a parameter (components/
 * hostScript.ts: each becomes an exported `MMAGENT_*` variable). The kernel passes at most
 * 131072 bytes per variable to a command (MAX_ARG_STRLEN; the renderer and the script's preamble
 * refuse more, naming the parameter), but every limit here is what the value can sensibly be, far
 * below that, so a mistake is refused at its `mmagent:` key path before anything runs. Lists that
 * are joined into one parameter have a count limit too. README's config reference lists them.
 */
export const LIMITS = {
    /**
     * `namePrefix`: the storage script takes container names of at most 32 characters (`NAME_RE`,
     * as {@link resourceName}), and the longest container name is `<prefix>-inference` (or
     * `-vector-db`), 10 more.
     */
    namePrefix: 22,
    /**
     * Entries of a GPU list (`host.gpus`, `services.<role>.gpus`), joined with "," into
     * MMAGENT_GPUS / MMAGENT_SMOKE_GPUS: indices go to 63, and 16 GPUs with 7 MIG instances each
     * are 112 UUIDs. 128 UUIDs of 40 characters are 5 KiB; the smoke test's union of the two
     * GPU-capable roles' lists at most 10 KiB.
     */
    gpus: 128,
    /** `host.toolkitVersion` (MMAGENT_TOOLKIT_VERSION): NVIDIA's are like "1.18.0-1"; room for any Debian version. */
    toolkitVersion: 128,
    /** A `host.sysctls` key: the longest real ones, `net.ipv6.conf.<interface>.<setting>`, are under 80. */
    sysctlKey: 128,
    /** A `host.sysctls` value: numbers and short word lists such as "4096 87380 6291456". */
    sysctlValue: 256,
    /**
     * Entries of `host.sysctls`, joined as `key=value` lines into MMAGENT_SYSCTLS: at most
     * 64 × (128 + 1 + 256) + 63 = 24 703 bytes.
     */
    sysctls: 64,
    /**
     * An image reference (`*.image`, `host.gpuSmokeTestImage`: MMAGENT_NEXT_IMAGE,
     * MMAGENT_EXPECT_IMAGE, MMAGENT_SMOKE_IMAGE): the longest Docker takes is a 255-character
     * name, a 128-character tag and a sha256 digest (455); the scripts take 512.
     */
    imageReference: 512,
    /**
     * `storage.root` as a path (btrfs, dir; MMAGENT_ROOT): the scripts add at most
     * `/.snapshots/<volume>/<snapshot>.json.tmp` (111 characters), far inside PATH_MAX (4096).
     */
    storageRootPath: 1024,
    /**
     * `storage.root` as a ZFS dataset (MMAGENT_ROOT): ZFS names, snapshots included, have at most
     * 255 characters, and a restore renames a volume to
     * `<root>/mmagent-replaced/<volume>-<stamp>@<snapshot>`, up to 129 more.
     */
    zfsDataset: 126,
    /**
     * `services.<role>.extraVolumes` entries: a service's writable volume names are joined with
     * " " into MMAGENT_VOLUMES, at most (5 + 32) × 33 bytes.
     */
    extraVolumes: 32,
    /**
     * A `storage.quotasGiB` value (MMAGENT_QUOTA_GIB), 1 PiB: any number prints in at most 24
     * characters, but from 1e21 up as "1e+21", which the storage script refuses as not a number.
     */
    quotaGiB: 1_048_576,
    /**
     * `proxy.routes` entries. The config step takes the whole proxy config as one parameter
     * (MMAGENT_CONFIG, at most 128 KiB): 64 routes and 4 service hosts, each with a 253-character
     * host and a 200-character path, are about 110 KB of Caddy JSON and a third of that for
     * HAProxy (test/unit/validation.test.ts). With engine "haproxy" each host's certificate and
     * key are a parameter of their own (MMAGENT_CERT_<n>).
     */
    routes: 64,
} as const;

/** A lowercase name usable as a volume, dataset component, Docker name and DNS label. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
export const resourceName = z
    .string()
    .regex(NAME_PATTERN, "use 2-32 characters: lowercase letters, digits and '-', starting with a letter (e.g. \"agent-db\")");

/** A DNS host name (RFC 1123), optionally a leading `*.` wildcard label. */
const DNS_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOSTNAME_PATTERN = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);
export const dnsName = z
    .string()
    .max(253, "a host name has at most 253 characters")
    .regex(HOSTNAME_PATTERN, "use a DNS name such as \"agent.example.com\" or \"agent.localhost\"");

/** A host to SSH to: a DNS name or an IP address. */
export const hostAddress = z.string().refine((s) => ipaddr.isValid(s) || (HOSTNAME_PATTERN.test(s) && !s.startsWith("*")), {
    message: "use a DNS name or an IP address, e.g. \"gpu1.example.com\" or \"10.0.0.5\"",
});

export const ipAddress = z.string().refine((s) => ipaddr.isValid(s), { message: "use an IP address such as \"127.0.0.1\" or \"::1\"" });

export const port = z
    .number({ error: "use a whole number between 1 and 65535" })
    .int("use a whole number between 1 and 65535")
    .min(1, "use a port between 1 and 65535")
    .max(65535, "use a port between 1 and 65535");

export const unixUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "use a Unix user name such as \"deploy\"");

/** An OpenSSH public host key line: `<type> <base64>`, as `ssh-keyscan` prints it without the host. */
const HOST_KEY_HINT = "paste the key as `ssh-keyscan -t ed25519 -p <port> <host>` prints it, without the host name: \"ssh-ed25519 AAAA...\"";

/**
 * What `ssh.ParseAuthorizedKey` (pulumi-command) and a known_hosts line both need: `<type> <base64>`
 * where the base64 holds an SSH wire-format key of that same type (and, for ed25519, exactly the
 * 32-byte key). Returns why not, or undefined.
 */
export function sshHostKeyProblem(line: string): string | undefined {
    const m = /^(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!m) return HOST_KEY_HINT;
    const blob = Buffer.from(m[2], "base64");
    if (blob.toString("base64") !== m[2]) return `the base64 part is not valid base64: ${HOST_KEY_HINT}`;
    const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    const inner = typeLength >= 0 && 4 + typeLength <= blob.length ? blob.subarray(4, 4 + typeLength).toString("latin1") : "";
    if (inner !== m[1]) return `the key inside says ${JSON.stringify(inner || "nothing")}, not ${m[1]}: copy the whole line from the host's ssh_host_*_key.pub or ssh-keyscan`;
    if (m[1] === "ssh-ed25519" && blob.length !== 4 + 11 + 4 + 32) return `an ssh-ed25519 key holds exactly 32 bytes: copy the whole line from ssh-keyscan`;
    return undefined;
}

export const sshHostKey = z.string().superRefine((s, ctx) => {
    const problem = sshHostKeyProblem(s);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** A Debian package version such as `1.18.0-1`. */
export const debianVersion = z
    .string()
    .max(LIMITS.toolkitVersion, `a package version has at most ${LIMITS.toolkitVersion} characters`)
    .regex(/^[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$/, "use a Debian package version such as \"1.18.0-1\"");

/** A GPU chosen by index (`0`) or by UUID (`GPU-…`, `MIG-…`) as `nvidia-smi -L` prints it. */
export const gpuId = z.union([
    z.number().int().min(0).max(63),
    z.string().regex(/^(GPU|MIG)-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/, "use a GPU index (0, 1, …) or a UUID from `nvidia-smi -L`"),
]);

export const sysctlKey = z
    .string()
    .max(LIMITS.sysctlKey, `a sysctl key has at most ${LIMITS.sysctlKey} characters`)
    .regex(/^[a-z0-9_]+(\.[a-z0-9_-]+)+$/, "use a sysctl key such as \"fs.inotify.max_user_watches\"");
export const sysctlValue = z
    .string()
    .max(LIMITS.sysctlValue, `a sysctl value has at most ${LIMITS.sysctlValue} characters`)
    .regex(/^[A-Za-z0-9._:-]+( [A-Za-z0-9._:-]+)*$/, "use a plain value such as \"524288\" or \"4096 87380 6291456\"");
/** Kernel settings: at most {@link LIMITS.sysctls} of them (they travel as one parameter). */
export const sysctls = z
    .record(sysctlKey, sysctlValue)
    .refine((r) => Object.keys(r).length <= LIMITS.sysctls, `set at most ${LIMITS.sysctls} sysctls here; put the rest in a file of your own under /etc/sysctl.d`);

/**
 * A Docker image reference pinned by tag or digest: `[registry[:port]/]path[:tag][@sha256:<64 hex>]`.
 * Follows the grammar of distribution/reference; a reference without tag and digest is refused,
 * because "whatever is newest" is not a reviewable change.
 */
const IMAGE_DOMAIN = "(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?";
const IMAGE_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const IMAGE_PATTERN = new RegExp(
    `^(?:(${IMAGE_DOMAIN})/)?(${IMAGE_COMPONENT}(?:/${IMAGE_COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`,
);
export interface ParsedImage {
    repository: string;
    tag?: string;
    digest?: string;
}
export function parseImageReference(ref: string): ParsedImage | undefined {
    if (ref.length > LIMITS.imageReference) return undefined;
    const m = IMAGE_PATTERN.exec(ref);
    if (!m) return undefined;
    const repository = m[1] ? `${m[1]}/${m[2]}` : m[2];
    return { repository, tag: m[3], digest: m[4] };
}
export const imageReference = z.string().superRefine((ref, ctx) => {
    const parsed = parseImageReference(ref);
    if (ref.length > LIMITS.imageReference) {
        ctx.addIssue({ code: "custom", message: `an image reference has at most ${LIMITS.imageReference} characters (this one has ${ref.length})` });
    } else if (!parsed) {
        ctx.addIssue({ code: "custom", message: "use an image reference such as \"redis:7.4.6-alpine\" or \"ghcr.io/org/app:1.2@sha256:<64 hex>\"" });
    } else if (!parsed.tag && !parsed.digest) {
        ctx.addIssue({ code: "custom", message: `pin the image: add a tag or a digest, e.g. "${ref}:1.2.3"` });
    }
});

/**
 * An absolute host path made of plain segments. No `..`, no `//`, no trailing slash, no spaces
 * or shell metacharacters. `/` itself is refused: a storage root must be a directory of its own.
 */
const PATH_SEGMENT = "[A-Za-z0-9._@+][A-Za-z0-9._@+-]*";
export const ABSOLUTE_PATH_PATTERN = new RegExp(`^(?:/${PATH_SEGMENT})+$`);
export const RELATIVE_PATH_PATTERN = new RegExp(`^${PATH_SEGMENT}(?:/${PATH_SEGMENT})*$`);
function hasDotDot(p: string): boolean {
    return p.split("/").some((s) => s === ".." || s === ".");
}
export const absolutePath = z.string().superRefine((p, ctx) => {
    if (hasDotDot(p)) ctx.addIssue({ code: "custom", message: "remove '.' and '..' segments: give the path as it is, e.g. \"/srv/mmagent\"" });
    else if (!ABSOLUTE_PATH_PATTERN.test(p))
        ctx.addIssue({ code: "custom", message: "use an absolute path of letters, digits and . _ @ + - such as \"/srv/mmagent\" (no spaces, no trailing '/')" });
});
/** An NFS export path: `/` (the NFSv4 pseudo-root) or an absolute path of plain segments. */
export const nfsExport = z.string().superRefine((p, ctx) => {
    if (p === "/") return;
    if (hasDotDot(p)) ctx.addIssue({ code: "custom", message: "remove '.' and '..' segments: give the export as the server lists it, e.g. \"/exports/datasets\"" });
    else if (!ABSOLUTE_PATH_PATTERN.test(p))
        ctx.addIssue({ code: "custom", message: "use the exported path, absolute, of letters, digits and . _ @ + - such as \"/exports/datasets\" (no spaces, no trailing '/')" });
});

/**
 * NFS mount options a volume may add to the program's own `addr=<server>,nfsvers=4.2,hard,ro`
 * (storageLayout.ts `nfsVolumeArgs`): transfer sizes, timeouts, connections. Nothing that changes
 * the version, makes the mount writable or `soft` (silent data loss on timeouts), or security.
 */
export const NFS_OPTIONS: readonly { name: string; pattern: RegExp; example: string }[] = [
    { name: "rsize", pattern: /^rsize=[1-9][0-9]{3,7}$/, example: "rsize=1048576" },
    { name: "wsize", pattern: /^wsize=[1-9][0-9]{3,7}$/, example: "wsize=1048576" },
    { name: "timeo", pattern: /^timeo=[1-9][0-9]{0,5}$/, example: "timeo=600" },
    { name: "retrans", pattern: /^retrans=[0-9]{1,2}$/, example: "retrans=2" },
    { name: "nconnect", pattern: /^nconnect=([1-9]|1[0-6])$/, example: "nconnect=4" },
    { name: "actimeo", pattern: /^actimeo=[0-9]{1,5}$/, example: "actimeo=60" },
    { name: "noresvport", pattern: /^noresvport$/, example: "noresvport" },
];
/** Options the program sets itself: named in the refusal so the reader knows why. */
const NFS_FIXED: Record<string, string> = {
    addr: "the program sets addr= from nfs.server",
    nfsvers: "the program mounts NFSv4.2",
    vers: "the program mounts NFSv4.2",
    hard: "the program always mounts hard",
    soft: "soft mounts return I/O errors on timeouts, which applications take for corrupt data; the program mounts hard",
    ro: "the program always mounts read-only",
    rw: "NFS volumes are read-only input data",
};
export const nfsOption = z.string().superRefine((o, ctx) => {
    if (NFS_OPTIONS.some((opt) => opt.pattern.test(o))) return;
    const key = o.split("=")[0];
    const known = NFS_OPTIONS.find((opt) => opt.name === key);
    const allowed = NFS_OPTIONS.map((opt) => opt.example).join(", ");
    if (known) ctx.addIssue({ code: "custom", message: `"${o.slice(0, 40)}" is not a valid ${key} value: use e.g. "${known.example}"` });
    else if (NFS_FIXED[key]) ctx.addIssue({ code: "custom", message: `"${key}" is refused: ${NFS_FIXED[key]}. Allowed options: ${allowed}` });
    else ctx.addIssue({ code: "custom", message: `"${o.slice(0, 40)}" is not an allowed NFS option; use only: ${allowed}` });
});

/** A container path (mount target): absolute, plain segments. */
export const containerPath = absolutePath;

/** A ZFS dataset name: `pool[/child…]`, no spaces, no `@`/`#` (those name snapshots and bookmarks). */
export const zfsDataset = z
    .string()
    .max(
        LIMITS.zfsDataset,
        `a dataset name has at most ${LIMITS.zfsDataset} characters here: ZFS names have at most 255, and a restore renames a volume to <root>/mmagent-replaced/<volume>-<stamp>@<snapshot>, up to 129 more`,
    )
    .regex(/^[A-Za-z][A-Za-z0-9_.:-]*(\/[A-Za-z0-9][A-Za-z0-9_.:-]*)*$/, "use a dataset name such as \"tank/mmagent\" (letters, digits, _ . : -, no spaces)");

/** A cpuset such as `0-3,5`: ascending, non-overlapping indices and ranges. */
export const cpuSet = z.string().superRefine((s, ctx) => {
    const shape = /^\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*$/;
    if (!shape.test(s)) {
        ctx.addIssue({ code: "custom", message: "use CPU indices and ranges such as \"0-3,5\"" });
        return;
    }
    let last = -1;
    for (const part of s.split(",")) {
        const [lo, hi = lo] = part.split("-").map(Number);
        if (lo > hi || lo <= last) {
            ctx.addIssue({ code: "custom", message: `list CPUs in ascending, non-overlapping order (problem at "${part}"), e.g. "0-3,5"` });
            return;
        }
        last = hi;
    }
});

/** A CIDR whose host bits are zero, within the given prefix bounds. */
function cidr(kind: "ipv4" | "ipv6", minPrefix: number, maxPrefix: number, example: string) {
    return z.string().superRefine((s, ctx) => {
        let addr: ipaddr.IPv4 | ipaddr.IPv6;
        let prefix: number;
        try {
            // ipaddr.js also accepts legacy forms such as "10.0.0/24"; Docker does not.
            if (kind === "ipv4" && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(s)) throw new Error("not dotted-quad");
            [addr, prefix] = ipaddr.parseCIDR(s);
        } catch {
            ctx.addIssue({ code: "custom", message: `use an ${kind === "ipv4" ? "IPv4" : "IPv6"} CIDR such as "${example}"` });
            return;
        }
        if (addr.kind() !== kind) {
            ctx.addIssue({ code: "custom", message: `this is an ${addr.kind()} subnet; use an ${kind} CIDR such as "${example}"` });
        } else if (prefix < minPrefix || prefix > maxPrefix) {
            const tooSmall = prefix > maxPrefix;
            ctx.addIssue({
                code: "custom",
                message: `/${prefix} is too ${tooSmall ? "small" : "large"} for a container network: use a prefix between /${minPrefix} and /${maxPrefix}, e.g. "${example}"`,
            });
        } else {
            const network = kind === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(s) : ipaddr.IPv6.networkAddressFromCIDR(s);
            if (network.toString() !== addr.toString()) {
                ctx.addIssue({ code: "custom", message: `the host bits must be zero: use "${network.toString()}/${prefix}"` });
            } else {
                const problem = unusableSubnetProblem(s);
                if (problem) ctx.addIssue({ code: "custom", message: problem });
            }
        }
    });
}
export const ipv4Subnet = cidr("ipv4", 8, 28, "172.16.10.0/24");
export const ipv6Subnet = cidr("ipv6", 48, 120, "fd6d:6d61:6765::/64");

/** Any CIDR, IPv4 or IPv6, in canonical network form (an entry of daemon.json `default-address-pools`). */
export const anyCidr = z.string().refine((s) => {
    try {
        const [addr] = ipaddr.parseCIDR(s);
        return addr.kind() === "ipv6" || /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(s);
    } catch {
        return false;
    }
}, { message: "use a CIDR such as \"172.17.0.0/16\" or \"fd00::/48\"" });

/**
 * Address ranges a container network must not overlap, with what goes wrong on the engine when
 * it does (each observed on Docker 20.10 in test/real/subnetRules.test.ts).
 */
export const UNUSABLE_SUBNETS: readonly { cidr: string; what: string; effect: string }[] = [
    { cidr: "0.0.0.0/8", what: "the unspecified \"this network\" range", effect: "Docker creates the network but no container on it starts (no route to the gateway)" },
    { cidr: "127.0.0.0/8", what: "loopback", effect: "containers send each other's traffic to their own loopback: nothing on the network reaches anything else" },
    { cidr: "169.254.0.0/16", what: "IPv4 link-local", effect: "the bridge takes the host's link-local routes (cloud metadata at 169.254.169.254 among them)" },
    { cidr: "224.0.0.0/4", what: "IPv4 multicast", effect: "Docker creates the network but no container on it starts" },
    { cidr: "255.255.255.255/32", what: "the broadcast address", effect: "the kernel will not assign it" },
    { cidr: "::/127", what: "the IPv6 unspecified and loopback addresses", effect: "Docker fails to create the network (\"cannot assign requested address\")" },
    { cidr: "::ffff:0:0/96", what: "IPv4-mapped IPv6", effect: "Docker fails to create the network (it overlaps the IPv4 space)" },
    { cidr: "fe80::/10", what: "IPv6 link-local", effect: "containers' names resolve to addresses that need an interface scope, so IPv6 clients cannot connect" },
    { cidr: "ff00::/8", what: "IPv6 multicast", effect: "Docker fails to create the network (\"cannot assign requested address\")" },
];

/**
 * Docker's built-in local address pools (moby `daemon/libnetwork/ipamutils/utils.go`
 * `localScopeDefaultNetworks`): `docker network create` without a subnet, Compose and the
 * default bridge (172.17.0.0/16) take /16s (/20s in 192.168/16) from them. A fixed subnet inside
 * one fails with "Pool overlaps with other one on this address space" whenever another network
 * on the host already holds that pool (defaultipam `allocateSubnetL`).
 */
export const DOCKER_DEFAULT_ADDRESS_POOLS: readonly string[] = [
    "172.17.0.0/16",
    "172.18.0.0/16",
    "172.19.0.0/16",
    "172.20.0.0/14",
    "172.24.0.0/14",
    "172.28.0.0/14",
    "192.168.0.0/16",
];

/** Whether two CIDRs share any address (both of one family; false across families). */
export function cidrsOverlap(a: string, b: string): boolean {
    const [aAddr, aBits] = ipaddr.parseCIDR(a);
    const [bAddr, bBits] = ipaddr.parseCIDR(b);
    if (aAddr.kind() !== bAddr.kind()) return false;
    // The shorter prefix contains the other's network address exactly when they overlap.
    return aBits <= bBits ? bAddr.match(aAddr, aBits) : aAddr.match(bAddr, bBits);
}

/** Why a container network cannot use this subnet (one of UNUSABLE_SUBNETS), or undefined. */
export function unusableSubnetProblem(subnet: string): string | undefined {
    const hit = UNUSABLE_SUBNETS.find((r) => cidrsOverlap(subnet, r.cidr));
    return hit ? `${subnet} overlaps ${hit.cidr} (${hit.what}): ${hit.effect}. Use a private range such as "172.16.10.0/24" or a ULA such as "fd6d:6d61:6765::/64"` : undefined;
}

export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "use an environment variable name such as \"LOG_LEVEL\"");
/** An env value: any printable text, no control characters, at most 4 KiB. */
export const envValue = z
    .string()
    .max(4096, "an environment value has at most 4096 characters")
    .regex(/^[^\u0000-\u0008\u000a-\u001f\u007f]*$/u, "remove control characters (newlines, NUL, escape codes) from the value");

/** A snapshot this project made, as the stack output `snapshots` lists it. */
export const SNAPSHOT_NAME_PATTERN = /^mmagent-(pre|replaced)-[0-9a-z-]{4,40}$/;
export const snapshotName = z
    .string()
    .regex(SNAPSHOT_NAME_PATTERN, "use a snapshot name from `pulumi stack output snapshots`, e.g. \"mmagent-pre-1a2b3c4d\"");

/** Linux capabilities Docker knows (capabilities(7)), without the `CAP_` prefix. */
export const LINUX_CAPABILITIES = [
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE",
    "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN",
    "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID",
    "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE",
    "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
] as const;

/**
 * Capabilities that amount to host root or let a container see or change other processes, the
 * kernel or the network stack: never added back, whatever the config says. `ALL` is here too.
 */
export const DANGEROUS_CAPABILITIES: Readonly<Record<string, string>> = {
    ALL: "every capability: as good as --privileged",
    SYS_ADMIN: "mounts, namespaces, BPF and more: the usual container escape",
    SYS_MODULE: "loads kernel modules",
    SYS_PTRACE: "reads and alters other processes' memory",
    SYS_RAWIO: "raw I/O ports and /dev/mem",
    SYS_BOOT: "reboots the host",
    SYS_TIME: "sets the host clock",
    NET_ADMIN: "reconfigures interfaces, routes and firewall rules",
    DAC_READ_SEARCH: "opens any file by handle (the shocker escape)",
    MAC_ADMIN: "changes the AppArmor/SELinux policy",
    MAC_OVERRIDE: "bypasses the AppArmor/SELinux policy",
    BPF: "loads BPF programs into the kernel",
    PERFMON: "reads kernel and other processes' performance data",
    SYSLOG: "reads kernel addresses from the kernel log",
    LINUX_IMMUTABLE: "changes immutable files",
    AUDIT_CONTROL: "turns kernel auditing off",
};

/** A capability to add back after `drop ALL`: a real one, and not one of the dangerous ones. */
export const capability = z
    .string()
    .transform((s) => s.toUpperCase().replace(/^CAP_/, ""))
    .superRefine((cap, ctx) => {
        if (DANGEROUS_CAPABILITIES[cap]) {
            ctx.addIssue({ code: "custom", message: `${cap} is refused (${DANGEROUS_CAPABILITIES[cap]}); use an image that does not need it` });
        } else if (!(LINUX_CAPABILITIES as readonly string[]).includes(cap)) {
            ctx.addIssue({ code: "custom", message: "use a Linux capability name such as \"CHOWN\" (see capabilities(7))" });
        }
    });
