/**
 * Route precedence in the generated Caddy config (components/caddyConfig.ts `routePrecedence`):
 * whatever the order in config, an exact host beats a wildcard that covers it, a deeper wildcard
 * beats a shallower one, a path route beats host-only, and host names are compared without case.
 * Which backend the real Caddy answers with is in test/real/routePrecedence.test.ts.
 */
import { buildCaddyConfig, ProxyRoute } from "../../components/caddyConfig";

const config = (routes: ProxyRoute[]) =>
    buildCaddyConfig({ routes, httpPort: 8080, httpsPort: 8443, tls: "internal", adminApi: "off", healthPort: 2020, adminPort: 2019, storageRoot: "/data" }) as any;
const order = (routes: ProxyRoute[]) => config(routes).apps.http.servers.routes.routes.map((r: any) => `${r.match[0].host[0]}${r.match[0].path ? " " + r.match[0].path[0] : ""}`);

const ROUTES: ProxyRoute[] = [
    { host: "*.localhost", upstream: "inference", port: 11434 },
    { host: "agent.localhost", upstream: "agent", port: 8080 },
    { host: "*.api.localhost", upstream: "inference", port: 11434 },
    { host: "agent.localhost", upstream: "inference", port: 11434, path: "/ollama/*" },
    { host: "*.localhost", upstream: "agent", port: 8080, path: "/docs/*" },
];

test("exact hosts first (paths before host-only), then wildcards deepest first; the same for every order of the config", () => {
    const expected = ["agent.localhost /ollama/*", "agent.localhost", "*.api.localhost", "*.localhost /docs/*", "*.localhost"];
    expect(order(ROUTES)).toEqual(expected);
    expect(order([...ROUTES].reverse())).toEqual(expected);
    expect(order([ROUTES[2], ROUTES[4], ROUTES[0], ROUTES[3], ROUTES[1]])).toEqual(expected);
});

test("host names reach Caddy lower-case, in the routes and in the certificate subjects", () => {
    const c = config([{ host: "Agent.Example.COM", upstream: "agent", port: 8080 }]);
    expect(c.apps.http.servers.routes.routes[0].match[0].host).toEqual(["agent.example.com"]);
    expect(c.apps.tls.automation.policies[0].subjects).toEqual(["agent.example.com"]);
});
