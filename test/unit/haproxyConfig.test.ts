/**
 * The HAProxy config of the `haproxy` proxy engine (components/haproxyConfig.ts), as text: the
 * routing rules in precedence order whatever the config order, one backend per upstream, and the
 * retry rules. Which backend the real HAProxy answers with is in test/real/routePrecedence.test.ts.
 */
import { ProxyRoute } from "../../components/caddyConfig";
import { buildHaproxyConfig, haproxyBackendName } from "../../components/haproxyConfig";

const ROUTES: ProxyRoute[] = [
    { host: "*.example.com", upstream: "wild", port: 80 },
    { host: "Agent.Example.com", upstream: "agent", port: 8080 },
    { host: "agent.example.com", upstream: "inference", port: 11434, path: "/Ollama/*" },
    { host: "agent.example.com", upstream: "agent", port: 8080, path: "/exact" },
];
const build = (routes = ROUTES) => buildHaproxyConfig({ routes, httpPort: 8080, tls: "off", httpsPort: 8443, certDir: "/etc/caddy/mmagent/certs", healthPort: 2020, holdPort: 2021 });
const useBackendLines = (cfg: string) => cfg.split("\n").filter((l) => l.trimStart().startsWith("use_backend"));

describe("buildHaproxyConfig", () => {
    it("routes in precedence order: the longer path first, then the shorter one and host-only, the wildcard last; hosts and paths lower-case", () => {
        expect(useBackendLines(build())).toEqual([
            "  use_backend be_inference_11434 if { var(txn.mm_host) -m str agent.example.com } { var(txn.mm_path) -m beg /ollama/ }",
            "  use_backend be_agent_8080 if { var(txn.mm_host) -m str agent.example.com } { var(txn.mm_path) -m str /exact }",
            "  use_backend be_agent_8080 if { var(txn.mm_host) -m str agent.example.com }",
            "  use_backend be_wild_80 if { var(txn.mm_host) -m reg ^[^.]+\\.example\\.com$ }",
        ]);
    });

    it("does not depend on the order routes are listed in", () => {
        expect(build([...ROUTES].reverse())).toBe(build());
    });

    it("matches on the Host without its port and the decoded path, both lower-case; an unrouted request gets 404", () => {
        const cfg = build();
        expect(cfg).toContain("http-request set-var(txn.mm_host) req.hdr(host),field(1,:),lower");
        expect(cfg).toContain("http-request set-var(txn.mm_path) path,url_dec,lower");
        expect(cfg).toContain("default_backend be_no_route");
        expect(cfg).toMatch(/backend be_no_route\n {2}http-request return status 404 /);
    });

    it("one backend per upstream and port, following Docker's DNS, with the hold backup", () => {
        const cfg = build();
        const backends = cfg.split("\n").filter((l) => l.startsWith("backend "));
        expect(backends).toEqual(["backend be_no_route", "backend be_agent_8080", "backend be_inference_11434", "backend be_wild_80"]);
        expect(cfg).toContain("  server s1 inference:11434 resolvers docker init-addr last,libc,none");
        expect(cfg.match(/server hold 127\.0\.0\.1:2021 backup/g)).toHaveLength(3);
        expect(cfg).toContain("nameserver dns 127.0.0.11:53");
    });

    it("replays only what is safe: a failed connection always, an empty response only for GET, HEAD and OPTIONS", () => {
        const cfg = build();
        expect(cfg).toContain("retry-on conn-failure empty-response");
        expect(cfg).toContain("http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS");
    });

    it("listens on the HTTP port; health and hold only on the container's loopback", () => {
        const binds = build()
            .split("\n")
            .filter((l) => l.trimStart().startsWith("bind "));
        expect(binds).toEqual(["  bind :8080", "  bind 127.0.0.1:2020", "  bind 127.0.0.1:2021"]);
    });

    it("with tls internal: HTTPS with the certificate directory and HTTP/2, HTTP redirected (308) to the same host and URI on the HTTPS port", () => {
        const tlsBuild = (httpsPort: number) =>
            buildHaproxyConfig({ routes: ROUTES, httpPort: 8080, tls: "internal", httpsPort, certDir: "/etc/caddy/mmagent/certs", healthPort: 2020, holdPort: 2021 });
        const lines = tlsBuild(8443).split("\n");
        expect(lines.filter((l) => l.trimStart().startsWith("bind "))).toEqual([
            "  bind :8443 ssl crt /etc/caddy/mmagent/certs/ alpn h2,http/1.1",
            "  bind :8080",
            "  bind 127.0.0.1:2020",
            "  bind 127.0.0.1:2021",
        ]);
        expect(lines).toContain("  http-request redirect location https://%[req.hdr(host),field(1,:)]:8443%[pathq] code 308");
        expect(tlsBuild(443)).toContain("  http-request redirect location https://%[req.hdr(host),field(1,:)]%[pathq] code 308");
        // The routes themselves are the same as over plain HTTP.
        expect(useBackendLines(tlsBuild(8443))).toEqual(useBackendLines(build()));
    });

    it("with tls internal and no routes: no HTTPS listener (HAProxy refuses one without a certificate)", () => {
        const cfg = buildHaproxyConfig({ routes: [], httpPort: 8080, tls: "internal", httpsPort: 8443, certDir: "/c", healthPort: 2020, holdPort: 2021 });
        expect(cfg.split("\n").filter((l) => l.trimStart().startsWith("bind "))).toEqual(["  bind :8080", "  bind 127.0.0.1:2020", "  bind 127.0.0.1:2021"]);
    });

    it("backend names keep the container name readable", () => {
        expect(haproxyBackendName("mm-agent", 8080)).toBe("be_mm-agent_8080");
    });
});
