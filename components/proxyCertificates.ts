/**
 * The certificates of engine "haproxy" with `tls: internal`: a CA of the stack's own and one
 * certificate per routed host, signed by it, declared with the Pulumi TLS provider. What Caddy's
 * internal issuer does inside its container is here a set of resources a preview shows: a
 * certificate due for renewal appears as a replacement (the provider's plan-time check of
 * `early_renewal_hours`), and the new one reaches HAProxy through the config step, which reloads
 * it without dropping a request.
 *
 * The private keys are Pulumi secrets (the provider marks them sensitive): encrypted in the
 * stack's state, and on the host only in the proxy's config volume, readable by the proxy's user
 * alone (components/scripts/proxy-config.sh). Users trust the CA certificate, a stack output.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

/** The CA's lifetime: 10 years, renewed (a new CA users must trust again) in its last year. */
export const INTERNAL_CA_VALIDITY_HOURS = 10 * 365 * 24;
/** @see INTERNAL_CA_VALIDITY_HOURS */
export const INTERNAL_CA_EARLY_RENEWAL_HOURS = 365 * 24;
/**
 * A host certificate's lifetime: 397 days, the longest every browser takes (Apple's limit for
 * certificates of public CAs; its limit for private ones is 825 days).
 */
export const HOST_CERT_VALIDITY_HOURS = 397 * 24;
/** A host certificate is renewed by the first `pulumi up` within its last 30 days. */
export const HOST_CERT_EARLY_RENEWAL_HOURS = 30 * 24;

/** One routed host's certificate and key, as HAProxy loads it (certificate, then key, in one PEM file). */
export interface HostCertificate {
    /** The host name (lower-case; `*.example.com` for a wildcard). */
    host: string;
    /** Certificate then private key, PEM; a secret. */
    bundlePem: pulumi.Output<string>;
    /** When the certificate's validity began (RFC 3339): shows a renewal in a preview. */
    validFrom: pulumi.Output<string>;
}

/** What {@link buildInternalCertificates} declared. */
export interface InternalCertificates {
    /** The CA certificate (PEM) that clients trust. */
    caCertPem: pulumi.Output<string>;
    /** One per distinct host, sorted by host. */
    hosts: HostCertificate[];
}

/** The routed hosts that need a certificate: distinct, lower-case (hosts match case-insensitively), sorted. */
export function certificateHosts(hosts: string[]): string[] {
    return [...new Set(hosts.map((h) => h.toLowerCase()))].sort();
}

/** A resource name for a host: `*` is kept out of URNs. */
function hostResourceName(host: string): string {
    return host.replace(/^\*\./, "wildcard.");
}

/** Declares the CA and a certificate for each of `hosts` under `parent`. Keys: ECDSA P-256. */
export function buildInternalCertificates(name: string, hosts: string[], parent: pulumi.Resource): InternalCertificates {
    const opts = { parent };
    const caKey = new tls.PrivateKey(`${name}-ca-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, opts);
    const ca = new tls.SelfSignedCert(
        `${name}-ca`,
        {
            privateKeyPem: caKey.privateKeyPem,
            subject: { commonName: `mmagent ${name} internal CA`, organization: "mmagent" },
            isCaCertificate: true,
            validityPeriodHours: INTERNAL_CA_VALIDITY_HOURS,
            earlyRenewalHours: INTERNAL_CA_EARLY_RENEWAL_HOURS,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        },
        opts,
    );
    const certs = certificateHosts(hosts).map((host): HostCertificate => {
        const resourceName = `${name}-cert-${hostResourceName(host)}`;
        const key = new tls.PrivateKey(`${resourceName}-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, opts);
        const request = new tls.CertRequest(`${resourceName}-request`, { privateKeyPem: key.privateKeyPem, subject: { commonName: host }, dnsNames: [host] }, opts);
        const cert = new tls.LocallySignedCert(
            resourceName,
            {
                certRequestPem: request.certRequestPem,
                caPrivateKeyPem: caKey.privateKeyPem,
                caCertPem: ca.certPem,
                validityPeriodHours: HOST_CERT_VALIDITY_HOURS,
                earlyRenewalHours: HOST_CERT_EARLY_RENEWAL_HOURS,
                allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
            },
            opts,
        );
        return {
            host,
            bundlePem: pulumi.secret(pulumi.interpolate`${cert.certPem}${key.privateKeyPem}`),
            validFrom: cert.validityStartTime,
        };
    });
    return { caCertPem: ca.certPem, hosts: certs };
}
