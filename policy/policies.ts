/**
 * The project's security defaults as policies, so they hold for any program that uses the
 * components (or does not): checked on every `pulumi preview`/`up` with `--policy-pack policy`.
 * Each policy looks at the docker provider's inputs as Pulumi hands them to policy packs
 * (plain values, secrets unwrapped); values unknown during a preview skip the check.
 */
import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import * as ipaddr from "ipaddr.js";
import { LABELS } from "../components/tokens";
import { DANGEROUS_CAPABILITIES } from "../components/validators";

export const CONTAINER = "docker:index/container:Container";
export const VOLUME = "docker:index/volume:Volume";
export const REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
export const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";
export const COMMANDS = ["command:local:Command", "command:remote:Command"];
const CADDY_ADMIN_PORT = 2019;
const RUNTIME_SOCKETS = /(docker|containerd|podman|crio)\.sock/;

type Props = Record<string, any>;
const labelsOf = (props: Props): Record<string, string> => Object.fromEntries(((props.labels ?? []) as { label: string; value: string }[]).map((l) => [l.label, l.value]));

/** A resource policy for containers only. */
function containerPolicy(name: string, description: string, check: (props: Props, report: (msg: string) => void, args: ResourceValidationArgs) => void, extra: Partial<ResourceValidationPolicy> = {}): ResourceValidationPolicy {
    return {
        name,
        description,
        ...extra,
        validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
            if (args.type === CONTAINER) check(args.props, (msg) => report(`${args.name}: ${msg}`), args);
        },
    };
}

function isLoopback(address: string): boolean {
    if (address === "localhost") return true;
    if (!ipaddr.isValid(address)) return false;
    const parsed = ipaddr.process(address);
    return parsed.range() === "loopback";
}

function isEveryInterface(address: string | undefined): boolean {
    return !address || (ipaddr.isValid(address) && ipaddr.process(address).range() === "unspecified");
}

/** Why a Caddy JSON config's admin API is reachable beyond the container's loopback; undefined when it is not (or this is no Caddy config). */
function caddyAdminProblem(config: any): string | undefined {
    if (!config?.apps?.http) return undefined;
    const admin = config.admin;
    if (admin?.disabled === true) return undefined;
    const listen: string = admin?.listen ?? `localhost:${CADDY_ADMIN_PORT}`;
    const host = listen.startsWith("unix/") ? "localhost" : listen.replace(/^tcp\//, "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    return isLoopback(host) ? undefined : `listens on ${listen}: set admin.listen to 127.0.0.1:${CADDY_ADMIN_PORT} or disable it`;
}

/**
 * Why an HAProxy config (as its lines) exposes an admin interface beyond the container's loopback:
 * a `stats socket` on a TCP address that is not loopback (the runtime API), or statistics
 * (`stats enable|uri|admin|…`) served by a section bound beyond loopback. undefined when none
 * (or these are no HAProxy config lines).
 */
function haproxyAdminProblem(lines: unknown): string | undefined {
    if (!Array.isArray(lines) || !lines.every((l) => typeof l === "string")) return undefined;
    const hostOf = (addr: string) => addr.replace(/^(ipv4|ipv6|tcp4?|tcp6)@/, "").replace(/:\d*$/, "").replace(/^\[|\]$/g, "");
    const sections: { header: string; binds: string[]; stats: string[] }[] = [];
    for (const raw of lines as string[]) {
        const line = raw.replace(/#.*$/, "").trim();
        if (!line) continue;
        if (!/^\s/.test(raw)) {
            sections.push({ header: line, binds: [], stats: [] });
            continue;
        }
        const section = sections[sections.length - 1];
        const socket = line.match(/^stats\s+socket\s+(\S+)/);
        if (socket) {
            const addr = socket[1];
            const tcp = !addr.startsWith("/") && !addr.startsWith("unix@") && !addr.startsWith("abns@");
            if (tcp && !isLoopback(hostOf(addr))) return `has "stats socket ${addr}" (the runtime API) beyond loopback: use 127.0.0.1 or a unix socket`;
            continue;
        }
        if (!section) continue;
        if (/^bind\s/.test(line)) section.binds.push(line.split(/\s+/)[1]);
        else if (/^stats\s/.test(line)) section.stats.push(line);
    }
    for (const s of sections) {
        const exposed = s.binds.filter((b) => !isLoopback(hostOf(b)));
        if (s.stats.length > 0 && exposed.length > 0) return `serves statistics ("${s.stats[0]}") in "${s.header}" on ${exposed.join(", ")}: bind that section to 127.0.0.1`;
    }
    return undefined;
}

/** Tag and digest of an image reference (`host:5000/team/app:1.2@sha256:…`). */
export function imageParts(ref: string): { tag?: string; digest?: string } {
    const [nameAndTag, digest] = ref.split("@");
    const lastSlash = nameAndTag.lastIndexOf("/");
    const colon = nameAndTag.indexOf(":", lastSlash + 1);
    return { tag: colon >= 0 ? nameAndTag.slice(colon + 1) : undefined, digest };
}

export const RESOURCE_POLICIES: ResourceValidationPolicy[] = [
    containerPolicy("no-privileged-containers", "Containers never run privileged.", (p, report) => {
        if (p.privileged === true) report("privileged is true: a privileged container is root on the host; add only the capabilities it needs");
    }),
    {
        name: "no-docker-socket",
        description: "No container gets the container runtime's socket, by mount or by volume.",
        validateResource: (args, report) => {
            const p = args.props;
            const paths: string[] = [];
            if (args.type === CONTAINER) {
                for (const m of p.mounts ?? []) paths.push(m.source ?? "", m.target ?? "");
                for (const v of p.volumes ?? []) paths.push(v.hostPath ?? "", v.containerPath ?? "");
                for (const d of p.devices ?? []) paths.push(d.hostPath ?? "");
            } else if (args.type === VOLUME) {
                paths.push(p.driverOpts?.device ?? "");
            } else return;
            const hit = paths.find((x) => RUNTIME_SOCKETS.test(x));
            if (hit) report(`${args.name}: ${hit} gives the container control of every container and the host; use an API with a narrow scope instead`);
        },
    },
    {
        name: "admin-interfaces-on-loopback",
        description: "Caddy's admin API and HAProxy's runtime API and statistics are off or on the container's loopback, and never published.",
        validateResource: (args, report) => {
            const p = args.props;
            const check = (config: unknown, where: string) => {
                const problem = caddyAdminProblem(config);
                if (problem) report(`${args.name}: the Caddy admin API in ${where} ${problem}`);
                const haproxy = haproxyAdminProblem(config);
                if (haproxy) report(`${args.name}: the HAProxy config in ${where} ${haproxy}`);
            };
            if (args.type === CONTAINER) {
                for (const port of p.ports ?? []) {
                    if (port.internal === CADDY_ADMIN_PORT) report(`${args.name}: port ${CADDY_ADMIN_PORT} (the Caddy admin API) is published: remove it; reach the API with docker exec`);
                }
                for (const u of p.uploads ?? []) {
                    if (!String(u.file).endsWith(".json") || typeof u.content !== "string") continue;
                    try {
                        check(JSON.parse(u.content), u.file);
                    } catch {
                        continue;
                    }
                }
            } else if (COMMANDS.includes(args.type)) {
                // ReverseProxyNetwork's config step carries the config it writes and loads as data in its triggers.
                (p.triggers ?? []).forEach((t: unknown, i: number) => check(t, `triggers[${i}]`));
            }
        },
    },
    containerPolicy("no-public-bind-without-consent", "No port is published on every interface unless the stack's config allows it (allowPublicBind).", (p, report) => {
        const allowed = labelsOf(p)[LABELS.allowPublicBind] === "true";
        for (const port of p.ports ?? []) {
            if (isEveryInterface(port.ip) && !allowed) {
                report(`port ${port.external ?? port.internal} is published on every interface (${port.ip || "no ip"}): bind it to 127.0.0.1, or set allowPublicBind: true in the stack's config to mean it`);
            }
        }
    }),
    containerPolicy("capabilities-dropped", "All capabilities are dropped; only harmless ones are added back, by name.", (p, report) => {
        const drops: string[] = p.capabilities?.drops ?? [];
        if (!drops.includes("ALL")) report('capabilities.drops does not include "ALL": drop everything, then add back what the image needs');
        for (const cap of (p.capabilities?.adds ?? []) as string[]) {
            const name = cap.toUpperCase().replace(/^CAP_/, "");
            if (DANGEROUS_CAPABILITIES[name]) report(`capability ${name} is added back: ${DANGEROUS_CAPABILITIES[name]}`);
        }
    }),
    containerPolicy("no-new-privileges", "Processes cannot gain privileges (setuid binaries, file capabilities).", (p, report) => {
        const opts: string[] = p.securityOpts ?? [];
        if (!opts.some((o) => o === "no-new-privileges" || o === "no-new-privileges:true")) report('securityOpts lacks "no-new-privileges:true"');
    }),
    {
        name: "images-pinned",
        description: "Images carry a tag or digest; `latest` only where the pack's config allows it (dev).",
        configSchema: { properties: { allowLatest: { type: "boolean", default: false } } },
        validateResource: (args, report) => {
            const ref = args.type === CONTAINER ? args.props.image : args.type === REMOTE_IMAGE ? args.props.name : undefined;
            if (typeof ref !== "string") return;
            // A container started from an image id (sha256:…) is pinned by definition.
            if (/^sha256:[0-9a-f]{64}$/.test(ref)) return;
            const { tag, digest } = imageParts(ref);
            const { allowLatest } = args.getConfig<{ allowLatest?: boolean }>();
            if (!tag && !digest) report(`${args.name}: image ${ref} has no tag or digest: pin it (e.g. redis:7.4.6-alpine or …@sha256:…)`);
            else if (tag === "latest" && !digest && !allowLatest) report(`${args.name}: image ${ref} floats on "latest": pin a version (allowed only where the pack's config sets allowLatest, i.e. dev)`);
        },
    },
];

/** Env names that hold secrets, and URLs with a password in them. */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|_KEY)$/;
const URL_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/:@]*:([^@/]+)@/i;

export const STACK_POLICIES: StackValidationPolicy[] = [
    {
        name: "input-mounts-read-only",
        description: "A volume labelled as input (mmagent.access=read-only) is mounted read-only by every container.",
        validateStack: (args, report) => {
            const inputs = new Set(
                args.resources.filter((r) => r.type === VOLUME && labelsOf(r.props)[LABELS.volumeAccess] === "read-only").map((r) => r.props.name as string),
            );
            for (const c of args.resources.filter((r) => r.type === CONTAINER)) {
                for (const m of c.props.mounts ?? []) {
                    if (inputs.has(m.source) && m.readOnly !== true) report(`${c.name}: input volume ${m.source} is mounted writable at ${m.target}: set readOnly`, c.urn);
                }
            }
        },
    },
    {
        name: "secrets-not-plain-env",
        description: "Secret-looking env values come from the stack's generated secrets (Pulumi secrets), never from literal text.",
        validateStack: (args, report) => {
            const generated = args.resources.filter((r) => r.type === RANDOM_PASSWORD && typeof r.props.result === "string").map((r) => r.props.result as string);
            for (const c of args.resources.filter((r) => r.type === CONTAINER)) {
                for (const entry of (c.props.envs ?? []) as string[]) {
                    if (typeof entry !== "string") continue;
                    const eq = entry.indexOf("=");
                    const [key, value] = [entry.slice(0, eq), entry.slice(eq + 1)];
                    const secret = URL_PASSWORD.exec(value)?.[1] ?? (SECRET_NAME.test(key) ? value : undefined);
                    if (secret && !generated.includes(secret)) {
                        report(`${c.name}: env ${key} carries a literal secret: it would sit in plain text in the stack's config and state; generate it (RandomPassword) or pass it as a Pulumi secret`, c.urn);
                    }
                }
            }
        },
    },
];
