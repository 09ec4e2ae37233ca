/**
 * Engine "haproxy" with `tls: internal`: HTTPS with the stack's own CA, as ReverseProxyNetwork
 * declares it. The certificates come from the TLS provider's fakes (test/support/providers/tls.ts:
 * real keys and openssl-signed certificates, as the provider's createCertificate shapes them), and
 * reach the proxy through the real config step (components/scripts/proxy-config.sh), which checks
 * them with the image's own `haproxy -c` together with the config. The proxy image is the test
 * image plus Debian's HAProxy 2.6, run as its unprivileged user like the official image.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { proxyHaproxyConfig } from "../../components/reverseProxyNetwork";
import { HOST_CERT_EARLY_RENEWAL_HOURS, HOST_CERT_VALIDITY_HOURS, INTERNAL_CA_VALIDITY_HOURS } from "../../components/proxyCertificates";
import { untilTrue } from "../support/e2eHelpers";
import { HAPROXY_TEST_IMAGE, requirePrerequisites, sh, TEST_IMAGE } from "../support/host";
import { createWithFake } from "../support/providers";
import { applyProxyConfig, applyProxyConfigAsync, proxyConfigDir, ProxyTestArgs, removeProxyContainer, startProxyContainer } from "../support/proxyContainer";
import { containerIdentity } from "../support/routeChanges";

const NET = "mmtest_tls_h";
const HTTP_PORT = 18111;
const HTTPS_PORT = 18112;
const PROXY = "mmtest-tls-haproxy";
const DATA = "mmtest-tls-haproxy-data";
const BACKENDS = { "mmtest-tls-h-a": "a", "mmtest-tls-h-b": "b" };
const ROUTES = [
    { host: "agent.localhost", upstream: "mmtest-tls-h-a", port: 4000 },
    { host: "*.apps.localhost", upstream: "mmtest-tls-h-b", port: 4000 },
];
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-tls-test-"));
const CA_FILE = path.join(WORK, "ca.pem");

/** What ReverseProxyNetwork declares through the TLS provider, created by the harness's fakes. */
const create = createWithFake;
const newKey = () => create("tls:index/privateKey:PrivateKey", { algorithm: "ECDSA", ecdsaCurve: "P256" });
let ca: { key: string; cert: string };

async function hostBundle(host: string, key?: string): Promise<{ bundle: string; cert: string; key: string }> {
    const k = key ?? (await newKey()).privateKeyPem;
    const csr = await create("tls:index/certRequest:CertRequest", { privateKeyPem: k, subject: { commonName: host }, dnsNames: [host] });
    const cert = await create("tls:index/locallySignedCert:LocallySignedCert", {
        certRequestPem: csr.certRequestPem,
        caPrivateKeyPem: ca.key,
        caCertPem: ca.cert,
        validityPeriodHours: HOST_CERT_VALIDITY_HOURS,
        earlyRenewalHours: HOST_CERT_EARLY_RENEWAL_HOURS,
        allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
    });
    return { bundle: `${cert.certPem}${k}`, cert: cert.certPem, key: k };
}

let base: ProxyTestArgs;
const configDir = () => proxyConfigDir(PROXY);

function cleanup() {
    removeProxyContainer(PROXY);
    spawnSync("docker", ["rm", "-f", ...Object.keys(BACKENDS)]);
    spawnSync("docker", ["network", "rm", NET]);
    spawnSync("docker", ["volume", "rm", DATA]);
}

/** curl over HTTPS to 127.0.0.1 for `host`, trusting only the CA: body, HTTP version and exit code. */
function curlHttps(host: string, urlPath = "/"): { body: string; httpVersion: string; code: number | null } {
    const r = spawnSync("curl", ["-s", "--max-time", "5", "--cacert", CA_FILE, "--resolve", `${host}:${HTTPS_PORT}:127.0.0.1`, "-w", "\n%{http_version}", `https://${host}:${HTTPS_PORT}${urlPath}`], { encoding: "utf8" });
    const lines = r.stdout.split("\n");
    const httpVersion = lines.pop() ?? "";
    return { body: lines.join("\n").trim(), httpVersion, code: r.status };
}

/** The serial of the certificate the proxy presents for `host`. */
function servedSerial(host: string): string {
    const r = spawnSync("sh", ["-c", `openssl s_client -connect 127.0.0.1:${HTTPS_PORT} -servername "$1" </dev/null 2>/dev/null | openssl x509 -noout -serial`, "sh", host], { encoding: "utf8" });
    return r.stdout.trim();
}

/** One HTTPS request on a new connection, verified against the CA, through Node's TLS client. */
function httpsGet(host: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const req = https.get(
            { host: "127.0.0.1", port: HTTPS_PORT, servername: host, headers: { Host: host }, ca: fs.readFileSync(CA_FILE), agent: false, timeout: 5000, path: "/" },
            (res) => {
                let body = "";
                res.on("data", (d) => (body += d));
                res.on("end", () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`status ${res.statusCode}`))));
            },
        );
        req.on("error", reject);
    });
}

const listing = () =>
    sh("sh", ["-c", 'cd "$1" && stat -c "%n %u %a" certs certs/* && sha256sum certs/*', "sh", configDir()])
        .trim()
        .split("\n");

beforeAll(async () => {
    requirePrerequisites({ commands: ["curl", "openssl"], docker: true, image: true });
    cleanup();
    const caKey = await newKey();
    const caCert = await create("tls:index/selfSignedCert:SelfSignedCert", {
        privateKeyPem: caKey.privateKeyPem,
        subject: { commonName: "mmagent test internal CA", organization: "mmagent" },
        isCaCertificate: true,
        validityPeriodHours: INTERNAL_CA_VALIDITY_HOURS,
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
    });
    ca = { key: caKey.privateKeyPem, cert: caCert.certPem };
    fs.writeFileSync(CA_FILE, ca.cert);
    const bundles = [(await hostBundle("*.apps.localhost")).bundle, (await hostBundle("agent.localhost")).bundle];
    base = { engine: "haproxy", networkName: NET, containerName: PROXY, httpPort: HTTP_PORT, httpsPort: HTTPS_PORT, tls: "internal", routes: ROUTES, dataVolumeName: DATA, certBundles: bundles };
    sh("docker", ["network", "create", "--ipv6", "--subnet", "fd6d:6d61:6765:91::/64", "--subnet", "172.16.91.0/24", NET]);
    sh("docker", ["volume", "create", DATA]);
    for (const [name, body] of Object.entries(BACKENDS)) {
        sh("docker", ["run", "-d", "--init", "--name", name, "--network", NET, "-e", "XDG_DATA_HOME=/tmp", "-e", "XDG_CONFIG_HOME=/tmp", TEST_IMAGE, "caddy", "respond", "--listen", ":4000", body]);
    }
    startProxyContainer(base);
    await untilTrue("the proxy answers for agent.localhost over HTTPS", 30, () => curlHttps("agent.localhost").body === "a");
}, 90_000);

afterAll(() => {
    cleanup();
    fs.rmSync(WORK, { recursive: true, force: true });
});

test("the step writes one file per certificate, for the proxy image's user alone (directory 0700, files 0600), beside haproxy.cfg", () => {
    const uid = sh("docker", ["run", "--rm", "--entrypoint", "id", HAPROXY_TEST_IMAGE, "-u"]).trim();
    expect(uid).not.toBe("0");
    expect(fs.readdirSync(configDir()).sort()).toEqual(["certs", "haproxy.cfg"]);
    expect(fs.readFileSync(path.join(configDir(), "haproxy.cfg"), "utf8")).toBe(proxyHaproxyConfig(base));
    expect(listing().slice(0, 3)).toEqual([`certs ${uid} 700`, `certs/1.pem ${uid} 600`, `certs/2.pem ${uid} 600`]);
});

test("each routed host answers over HTTPS with a certificate that verifies against the stack's CA, over HTTP/2; the wildcard for one label", () => {
    expect(curlHttps("agent.localhost")).toEqual({ body: "a", httpVersion: "2", code: 0 });
    expect(curlHttps("files.apps.localhost")).toEqual({ body: "b", httpVersion: "2", code: 0 });
    // No certificate names other.localhost: verification fails (curl 60), whatever the routes.
    expect(curlHttps("other.localhost").code).toBe(60);
});

test("plain HTTP is redirected (308) to the same host, path and query on the HTTPS port", () => {
    const r = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: agent.localhost:18111", `http://127.0.0.1:${HTTP_PORT}/a/b?c=1`], { encoding: "utf8" });
    expect(r.stdout).toBe(`308 https://agent.localhost:${HTTPS_PORT}/a/b?c=1`);
});

test("a renewed certificate loads in place: same container, the new serial served, not one failed HTTPS request meanwhile", async () => {
    const before = { proxy: containerIdentity(PROXY), serial: servedSerial("agent.localhost") };
    expect(before.serial).toMatch(/^serial=[0-9A-F]+$/);
    const renewed = await hostBundle("agent.localhost");
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const load = (async () => {
        while (!stop) {
            try {
                const body = await httpsGet("agent.localhost");
                if (body === "a") ok++;
                else failures.push(`answered ${JSON.stringify(body)}`);
            } catch (e) {
                failures.push(String(e));
            }
        }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const applied = await applyProxyConfigAsync({ ...base, certBundles: [base.certBundles![0], renewed.bundle] });
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await load;
    console.log(`certificate renewal under HTTPS load (a new connection per request): ${ok} requests, failed: ${failures.length ? failures.join("; ") : "none"}`);
    expect(applied.applied).toBe("reloaded");
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect(containerIdentity(PROXY)).toEqual(before.proxy);
    const after = servedSerial("agent.localhost");
    expect(after).not.toBe(before.serial);
    expect(after).toBe(sh("openssl", ["x509", "-noout", "-serial"], { input: renewed.cert }).trim());
    base = { ...base, certBundles: [base.certBundles![0], renewed.bundle] };
});

test("a certificate with another certificate's key is refused by haproxy -c: nothing changes, the error names the proxy", async () => {
    const before = { listing: listing(), config: fs.readFileSync(path.join(configDir(), "haproxy.cfg"), "utf8") };
    const a = await hostBundle("agent.localhost");
    const other = (await newKey()).privateKeyPem;
    expect(() => applyProxyConfig({ ...base, certBundles: [base.certBundles![0], `${a.cert}${other}`] })).toThrow(
        /the new config of mmtest-tls-haproxy is not valid for .*; the proxy keeps its current routes\. haproxy -c said: .*(inconsistencies between private key and certificate|key values mismatch)/s,
    );
    expect(listing()).toEqual(before.listing);
    expect(fs.readFileSync(path.join(configDir(), "haproxy.cfg"), "utf8")).toBe(before.config);
    expect(curlHttps("agent.localhost").body).toBe("a");
});

test("a parameter that is not a PEM certificate and key is refused before anything is written, naming the parameter", () => {
    const before = listing();
    expect(() => applyProxyConfig({ ...base, certBundles: [base.certBundles![0], "-----BEGIN CERTIFICATE-----\n$(id)\n-----END CERTIFICATE-----\n"] })).toThrow(/MMAGENT_CERT_2 is not PEM text/);
    expect(() => applyProxyConfig({ ...base, certBundles: [ca.cert] })).toThrow(/MMAGENT_CERT_1 must hold one certificate and one private key/);
    expect(listing()).toEqual(before);
});

test("tls off afterwards: the proxy serves plain HTTP and no private key stays on the host", async () => {
    applyProxyConfig({ ...base, tls: "off", certBundles: undefined });
    expect(fs.readdirSync(configDir())).toEqual(["haproxy.cfg"]);
    const r = spawnSync("curl", ["-s", "-H", "Host: agent.localhost", `http://127.0.0.1:${HTTP_PORT}/`], { encoding: "utf8" });
    expect(r.stdout.trim()).toBe("a");
});
