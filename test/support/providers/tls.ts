/**
 * Fakes of the TLS provider's resources (@pulumi/tls 5.x bridges hashicorp/terraform-provider-tls):
 * `PrivateKey`, `SelfSignedCert`, `CertRequest`, `LocallySignedCert`. Keys come from Node's crypto
 * (what Go's `ecdsa.GenerateKey` + `x509.MarshalECPrivateKey` give: an "EC PRIVATE KEY" block);
 * certificates from the openssl CLI, with the extensions the provider's `createCertificate` sets
 * through Go's x509 (critical basic constraints always, critical key usage from `allowed_uses`,
 * subject key id on a CA, authority key id from the CA's). Only what the program uses is modelled:
 * ECDSA keys, DNS names, validity in whole days; anything else is refused by `check`.
 *
 * Renewal, as the provider plans it (common_cert.go `modifyPlanIfCertificateReadyForRenewal`, run
 * by ModifyPlan on every plan, no refresh needed): once `validity_end_time - early_renewal_hours`
 * is now or past, `ready_for_renewal` is planned unknown and added to RequiresReplace, so the
 * certificate is replaced. `early_renewal_hours` alone updates in place (`updatedUsingPlan`).
 */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { asSecret } from "../secrets";
import { onlyKnownKeys, Props, PropertyDiff, ResourceFake, Schema, schemaDiff } from "./fake";

const TLS = "hashicorp/terraform-provider-tls@d72d90e1:internal/provider";

/** A PEM argument replaces only when the stored value was PEM (common.go `requireReplaceIfStateContainsPEMString`); ours always is. */
const PEM_ARG = { forceNew: true };

const KEY_SCHEMA: Schema = {
    algorithm: { forceNew: true },
    ecdsaCurve: { forceNew: true, default: "P224" },
    rsaBits: { forceNew: true, default: 2048 },
};

const SUBJECT_KEYS = ["commonName", "organization"];

const CERT_REQUEST_SCHEMA: Schema = {
    privateKeyPem: PEM_ARG,
    subject: { forceNew: true },
    dnsNames: { forceNew: true },
};

const SELF_SIGNED_SCHEMA: Schema = {
    privateKeyPem: PEM_ARG,
    subject: { forceNew: true },
    dnsNames: { forceNew: true },
    isCaCertificate: { forceNew: true, default: false },
    validityPeriodHours: { forceNew: true },
    earlyRenewalHours: { forceNew: false, default: 0 },
    allowedUses: { forceNew: true },
};

const LOCALLY_SIGNED_SCHEMA: Schema = {
    certRequestPem: PEM_ARG,
    caPrivateKeyPem: PEM_ARG,
    caCertPem: PEM_ARG,
    isCaCertificate: { forceNew: true, default: false },
    validityPeriodHours: { forceNew: true },
    earlyRenewalHours: { forceNew: false, default: 0 },
    allowedUses: { forceNew: true },
};

/** `allowed_uses` names → openssl extension values (common_cert.go `keyUsages`, `extendedKeyUsages`). */
const KEY_USAGES: Record<string, string> = { digital_signature: "digitalSignature", key_encipherment: "keyEncipherment", cert_signing: "keyCertSign", crl_signing: "cRLSign" };
const EXT_KEY_USAGES: Record<string, string> = { server_auth: "serverAuth", client_auth: "clientAuth" };

/** Runs openssl in (and on) a private temporary directory holding `files`; returns its stdout. */
export function openssl(files: Record<string, string>, args: (dir: string) => string[]): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-tls-"));
    try {
        for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, { mode: 0o600 });
        return execFileSync("openssl", args(dir), { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function subjectArg(subject: Props | undefined): string {
    const s = subject ?? {};
    onlyKnownKeys("tls subject", s, SUBJECT_KEYS);
    const parts = [s.organization ? `/O=${s.organization}` : "", s.commonName ? `/CN=${s.commonName}` : ""].join("");
    return parts || "/";
}

/** The extensions Go's x509.CreateCertificate writes for the provider's template (common_cert.go `createCertificate`). */
function extensions(i: Props, authorityKeyId: boolean): string {
    const uses: string[] = i.allowedUses ?? [];
    const unknown = uses.filter((u) => !KEY_USAGES[u] && !EXT_KEY_USAGES[u]);
    if (unknown.length) throw new Error(`real-engine harness: allowed_uses ${unknown.join(", ")} not modelled (test/support/providers/tls.ts)`);
    const ku = uses.filter((u) => KEY_USAGES[u]).map((u) => KEY_USAGES[u]);
    const eku = uses.filter((u) => EXT_KEY_USAGES[u]).map((u) => EXT_KEY_USAGES[u]);
    return [
        `basicConstraints=critical,CA:${i.isCaCertificate ? "TRUE" : "FALSE"}`,
        ku.length ? `keyUsage=critical,${ku.join(",")}` : "",
        eku.length ? `extendedKeyUsage=${eku.join(",")}` : "",
        i.isCaCertificate ? "subjectKeyIdentifier=hash" : "subjectKeyIdentifier=none",
        authorityKeyId ? "authorityKeyIdentifier=keyid" : "authorityKeyIdentifier=none",
    ]
        .filter(Boolean)
        .join("\n");
}

/** Validity in days for openssl; the provider takes hours, and the program uses whole days. */
function validityDays(hours: number): number {
    if (!Number.isInteger(hours) || hours <= 0 || hours % 24 !== 0) throw new Error(`real-engine harness: validity_period_hours ${hours} not modelled (whole days only)`);
    return hours / 24;
}

/** `validity_start_time` / `validity_end_time`: Go's `time.Time.MarshalText` (RFC 3339) of the certificate's dates, in UTC. */
function validityTimes(certPem: string): { validityStartTime: string; validityEndTime: string } {
    const out = openssl({ "c.pem": certPem }, (d) => ["x509", "-in", path.join(d, "c.pem"), "-noout", "-startdate", "-enddate"]);
    const date = (key: string) => new Date(out.match(new RegExp(`${key}=(.+)`))![1]).toISOString().replace(/\.000Z$/, "Z");
    return { validityStartTime: date("notBefore"), validityEndTime: date("notAfter") };
}

/** A random 128-bit serial (common_cert.go: `rand.Int(rand.Reader, 2^128)`), as hex for openssl and decimal for the id. */
function serial(): { hex: string; decimal: string } {
    const hex = crypto.randomBytes(16).toString("hex");
    return { hex: `0x${hex}`, decimal: BigInt(`0x${hex}`).toString() };
}

/** The plan-time renewal check: ready once `validity_end_time - early_renewal_hours` is not in the future. */
export function readyForRenewal(state: Props, earlyRenewalHours: number | undefined, now = Date.now()): boolean {
    if (!state.validityEndTime) return false;
    return Date.parse(state.validityEndTime) - (earlyRenewalHours ?? 0) * 3_600_000 - now <= 0;
}

function certDiff(schema: Schema, state: Props, inputs: Props): PropertyDiff[] {
    const diffs = schemaDiff(schema, state, inputs);
    if (readyForRenewal(state, inputs.earlyRenewalHours)) diffs.push({ property: "readyForRenewal", kind: "replace", old: false, new: "(unknown: renewal)" });
    return diffs;
}

/** Read: only ever sets ready_for_renewal to true (common_cert.go `modifyStateIfCertificateReadyForRenewal`). */
async function certRead(_ctx: unknown, _id: string, state: Props): Promise<Props> {
    return readyForRenewal(state, state.earlyRenewalHours) ? { ...state, readyForRenewal: true } : state;
}

/** Update: `updatedUsingPlan`, the plan copied into state (in practice `early_renewal_hours`). */
async function certUpdate(_ctx: unknown, _id: string, state: Props, inputs: Props): Promise<Props> {
    return { ...state, earlyRenewalHours: inputs.earlyRenewalHours };
}

export const tlsPrivateKey: ResourceFake = {
    type: "tls:index/privateKey:PrivateKey",
    mirrors: [`${TLS}/resource_private_key.go (Create; every argument RequiresReplace; Read/Update no-ops)`, `${TLS}/common_key.go (setPublicKeyAttributes)`],
    check(i) {
        onlyKnownKeys("PrivateKey", i, Object.keys(KEY_SCHEMA));
        if (i.algorithm !== "ECDSA") throw new Error(`real-engine harness: PrivateKey algorithm ${i.algorithm} not modelled (ECDSA only)`);
    },
    async create(_ctx, i) {
        const curve = { P224: "P-224", P256: "P-256", P384: "P-384", P521: "P-521" }[(i.ecdsaCurve ?? "P224") as string];
        if (!curve) throw new Error(`real-engine harness: ecdsaCurve ${i.ecdsaCurve} not modelled`);
        const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: curve });
        const privateKeyPem = privateKey.export({ type: "sec1", format: "pem" }) as string;
        const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }) as string;
        const id = crypto.createHash("sha1").update(publicKey.export({ type: "spki", format: "der" })).digest("hex");
        return {
            id,
            state: {
                ...i,
                ecdsaCurve: i.ecdsaCurve ?? "P224",
                rsaBits: i.rsaBits ?? 2048,
                privateKeyPem: asSecret(privateKeyPem),
                privateKeyPemPkcs8: asSecret(privateKey.export({ type: "pkcs8", format: "pem" })),
                publicKeyPem,
            },
        };
    },
    read: async (_ctx, _id, state) => state,
    diff: (state, inputs) => schemaDiff(KEY_SCHEMA, state, inputs),
    async update() {
        throw new Error("PrivateKey has no in-place update");
    },
    async delete() {},
};

export const tlsCertRequest: ResourceFake = {
    type: "tls:index/certRequest:CertRequest",
    mirrors: [`${TLS}/resource_cert_request.go (Create: x509.CreateCertificateRequest with the subject and SANs)`],
    check: (i) => onlyKnownKeys("CertRequest", i, Object.keys(CERT_REQUEST_SCHEMA)),
    async create(_ctx, i) {
        const san = (i.dnsNames ?? []).map((n: string) => `DNS:${n}`).join(",");
        const certRequestPem = openssl({ "k.pem": i.privateKeyPem }, (d) => ["req", "-new", "-key", path.join(d, "k.pem"), "-subj", subjectArg(i.subject), ...(san ? ["-addext", `subjectAltName=${san}`] : [])]);
        return { id: crypto.createHash("sha1").update(certRequestPem).digest("hex"), state: { ...i, keyAlgorithm: "ECDSA", certRequestPem } };
    },
    read: async (_ctx, _id, state) => state,
    diff: (state, inputs) => schemaDiff(CERT_REQUEST_SCHEMA, state, inputs),
    async update(_ctx, _id, state, inputs) {
        return { ...state, ...inputs };
    },
    async delete() {},
};

export const tlsSelfSignedCert: ResourceFake = {
    type: "tls:index/selfSignedCert:SelfSignedCert",
    mirrors: [
        `${TLS}/resource_self_signed_cert.go (Create; ModifyPlan; Read; Update = updatedUsingPlan)`,
        `${TLS}/common_cert.go (createCertificate, modifyPlanIfCertificateReadyForRenewal)`,
    ],
    check(i) {
        onlyKnownKeys("SelfSignedCert", i, Object.keys(SELF_SIGNED_SCHEMA));
        if (i.isCaCertificate && !i.subject?.commonName && !i.subject?.organization) throw new Error("Invalid Certificate Subject: a CA certificate needs a subject");
    },
    async create(_ctx, i) {
        const s = serial();
        const san = (i.dnsNames ?? []).map((n: string) => `DNS:${n}`).join(",");
        const config = ["[req]", "distinguished_name = dn", "x509_extensions = ext", "[dn]", "[ext]", extensions(i, false), san ? `subjectAltName=${san}` : ""].join("\n");
        const certPem = openssl({ "k.pem": i.privateKeyPem, "req.cnf": `${config}\n` }, (d) => [
            "req",
            "-x509",
            "-new",
            "-key",
            path.join(d, "k.pem"),
            "-subj",
            subjectArg(i.subject),
            "-days",
            String(validityDays(i.validityPeriodHours)),
            "-set_serial",
            s.hex,
            "-config",
            path.join(d, "req.cnf"),
        ]);
        return { id: s.decimal, state: { ...i, certPem, keyAlgorithm: "ECDSA", readyForRenewal: false, ...validityTimes(certPem) } };
    },
    read: certRead,
    diff: (state, inputs) => certDiff(SELF_SIGNED_SCHEMA, state, inputs),
    update: certUpdate,
    async delete() {},
};

export const tlsLocallySignedCert: ResourceFake = {
    type: "tls:index/locallySignedCert:LocallySignedCert",
    mirrors: [
        `${TLS}/resource_locally_signed_cert.go (Create: subject and DNS/IP/URI SANs copied from the CSR; ModifyPlan; Read; Update = updatedUsingPlan)`,
        `${TLS}/common_cert.go (createCertificate, modifyPlanIfCertificateReadyForRenewal)`,
    ],
    check: (i) => onlyKnownKeys("LocallySignedCert", i, Object.keys(LOCALLY_SIGNED_SCHEMA)),
    async create(_ctx, i) {
        const s = serial();
        const certPem = openssl({ "csr.pem": i.certRequestPem, "ca.pem": i.caCertPem, "cakey.pem": i.caPrivateKeyPem, "ext.cnf": `${extensions(i, true)}\n` }, (d) => [
            "x509",
            "-req",
            "-in",
            path.join(d, "csr.pem"),
            "-CA",
            path.join(d, "ca.pem"),
            "-CAkey",
            path.join(d, "cakey.pem"),
            "-days",
            String(validityDays(i.validityPeriodHours)),
            "-set_serial",
            s.hex,
            // Only the SANs are requested extensions here, and the provider copies exactly those.
            "-copy_extensions",
            "copy",
            "-extfile",
            path.join(d, "ext.cnf"),
        ]);
        return { id: s.decimal, state: { ...i, certPem, caKeyAlgorithm: "ECDSA", readyForRenewal: false, ...validityTimes(certPem) } };
    },
    read: certRead,
    diff: (state, inputs) => certDiff(LOCALLY_SIGNED_SCHEMA, state, inputs),
    update: certUpdate,
    async delete() {},
};
