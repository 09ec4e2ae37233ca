/**
 * The GitHub workflows (.github/workflows/*.yml) checked offline:
 *  - each file passes @action-validator/cli (GitHub's workflow schema), and a broken one fails it;
 *  - every command they run exists: `npm test` / `npm run X` name a package.json script (and the
 *    files those scripts run exist), every script, directory and `Pulumi.<stack>.yaml` they name
 *    exists, per matrix combination;
 *  - every action is pinned to a full 40-hex commit SHA, with the release in a comment;
 *  - what the previews and deployments promise: every stack file is previewed on pull requests
 *    (diff, PR comment, the policy pack) and deployed on pushes to main behind an environment;
 *    backend and passphrase come from secrets; the SSH key reaches the stack as a secret config
 *    value and host-key checking is never turned off; permissions are minimal.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { REPO_ROOT } from "../support/mockProgram";

const WORKFLOW_DIR = path.join(REPO_ROOT, ".github", "workflows");
const VALIDATOR = path.join(REPO_ROOT, "node_modules", "@action-validator", "cli", "cli.mjs");
const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };

const workflowFiles = fs
    .readdirSync(WORKFLOW_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(WORKFLOW_DIR, f));
const rel = (p: string) => path.relative(REPO_ROOT, p);

/** Deployable stacks: the stack files next to Pulumi.yaml. */
const STACK_FILES = fs.readdirSync(REPO_ROOT).filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f)).sort();
const STACKS = STACK_FILES.map((f) => f.slice("Pulumi.".length, -".yaml".length));

interface Step {
    name?: string;
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, unknown>;
    if?: string;
}
interface Job {
    "runs-on"?: unknown;
    uses?: string;
    if?: string;
    environment?: unknown;
    permissions?: unknown;
    strategy?: { matrix?: Record<string, unknown> };
    env?: Record<string, unknown>;
    steps?: Step[];
}
interface Workflow {
    on: unknown;
    permissions?: unknown;
    jobs: Record<string, Job>;
}

const parse = (file: string) => YAML.parse(fs.readFileSync(file, "utf8")) as Workflow;

/** Matrix combinations as GitHub expands them (axes, then `include` extends or adds, `exclude` removes). */
function matrixCombos(matrix: Record<string, unknown> | undefined): Record<string, string>[] {
    if (!matrix) return [{}];
    const { include = [], exclude = [], ...axes } = matrix as Record<string, unknown> & { include?: Record<string, unknown>[]; exclude?: Record<string, unknown>[] };
    const str = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]));
    let combos: Record<string, string>[] = Object.keys(axes).length ? [{}] : [];
    for (const [k, values] of Object.entries(axes)) {
        if (!Array.isArray(values)) throw new Error(`matrix.${k}: expected a list`);
        combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: String(v) })));
    }
    combos = combos.filter((c) => !exclude.some((e) => Object.entries(str(e)).every(([k, v]) => c[k] === v)));
    for (const inc of include.map(str)) {
        const matching = combos.filter((c) => Object.entries(inc).every(([k, v]) => !(k in axes) || c[k] === v));
        if (matching.length > 0 && Object.keys(inc).some((k) => k in axes)) matching.forEach((c) => Object.assign(c, inc));
        else combos.push(inc);
    }
    return combos;
}

/** `${{ matrix.x }}` replaced with the combination's value ("" when it has none). */
const substitute = (text: string, combo: Record<string, string>) => text.replace(/\$\{\{\s*matrix\.([\w-]+)\s*\}\}/g, (_, k: string) => combo[k] ?? "");

interface ExpandedStep {
    where: string;
    job: string;
    combo: Record<string, string>;
    step: Step;
}

/** Every step of every job, once per matrix combination, with matrix expressions substituted. */
function expandedSteps(file: string): ExpandedStep[] {
    const wf = parse(file);
    const out: ExpandedStep[] = [];
    for (const [jobId, job] of Object.entries(wf.jobs)) {
        for (const combo of matrixCombos(job.strategy?.matrix)) {
            (job.steps ?? []).forEach((step, i) => {
                const s: Step = JSON.parse(substitute(JSON.stringify(step), combo));
                out.push({ where: `${rel(file)} jobs.${jobId}${Object.keys(combo).length ? ` ${JSON.stringify(combo)}` : ""} steps[${i}]${step.name ? ` (${step.name})` : ""}`, job: jobId, combo, step: s });
            });
        }
    }
    return out;
}

const exists = (p: string) => fs.existsSync(path.join(REPO_ROOT, p));

/**
 * What one shell command needs from the repository, as problems (empty: all there). Understands
 * `sudo`, `env` and `VAR=value` prefixes; `npm test|t|start|run X|install --prefix DIR`;
 * `bash|sh FILE`; and any word that names a path under scripts/, .github/, policy/, bench/ or test/,
 * or a Pulumi.<stack>.yaml.
 */
function commandProblems(command: string): string[] {
    const words = command
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map((w) => w.replace(/^["']|["']$/g, ""));
    const problems: string[] = [];
    let i = 0;
    while (i < words.length && (words[i] === "sudo" || words[i] === "env" || /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]) || (words[i - 1] === "sudo" && words[i].startsWith("-")))) i++;
    const [cmd, ...args] = words.slice(i);
    const script = (name: string) => {
        if (!(name in pkg.scripts)) problems.push(`npm script "${name}" is not in package.json (${Object.keys(pkg.scripts).join(", ")})`);
        else problems.push(...commandProblems(pkg.scripts[name]).map((p) => `npm script "${name}": ${p}`));
    };
    if (cmd === "npm") {
        const sub = args.find((a) => !a.startsWith("-"));
        if (sub === "test" || sub === "t") script("test");
        else if (sub === "start") script("start");
        else if (sub === "run" || sub === "run-script") script(args[args.indexOf(sub) + 1]);
        const prefix = args.indexOf("--prefix");
        if (prefix >= 0 && !exists(path.join(args[prefix + 1], "package.json"))) problems.push(`npm --prefix ${args[prefix + 1]}: no package.json there`);
    }
    if ((cmd === "bash" || cmd === "sh") && args[0] && !args[0].startsWith("-") && !exists(args[0])) problems.push(`${cmd} ${args[0]}: no such file`);
    for (const w of words) {
        const m = /^(?:\.\/)?((?:scripts|\.github|policy|bench|test)\/[\w./-]*|Pulumi\.[\w-]+\.yaml)$/.exec(w);
        if (m && !exists(m[1])) problems.push(`${m[1]}: no such file or directory`);
    }
    return problems;
}

/** The commands of a `run:` block: lines, then `&&`, `||`, `;` and `|`. */
const commandsOf = (run: string) =>
    run
        .split("\n")
        .map((l) => l.replace(/(^|\s)#.*$/, ""))
        .flatMap((l) => l.split(/&&|\|\||;|\|/))
        .map((c) => c.trim())
        .filter(Boolean);

test("there are workflows, and the stack files they must cover", () => {
    expect(workflowFiles.map(rel)).toEqual(expect.arrayContaining([".github/workflows/pull-request.yml", ".github/workflows/deploy.yml"]));
    expect(STACKS).toEqual(expect.arrayContaining(["dev", "prod"]));
});

describe("@action-validator/cli", () => {
    const validate = (file: string) => spawnSync(process.execPath, [VALIDATOR, file], { encoding: "utf8", timeout: 60_000 });

    test.each(workflowFiles.map((f) => [rel(f), f]))("%s is a valid workflow", (_name, file) => {
        const r = validate(file);
        expect({ status: r.status, error: r.error?.message, stderr: r.stderr }).toEqual({ status: 0, error: undefined, stderr: "" });
    });

    test("refuses a broken workflow (the validator really runs)", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-workflow-"));
        try {
            const file = path.join(dir, "broken.yml");
            fs.writeFileSync(file, "on: pull_request\njobs:\n  preview:\n    runs-onn: ubuntu-latest\n    steps:\n      - run: true\n");
            const r = validate(file);
            expect(r.status).toBe(1);
            expect(r.stderr).toContain("Additional property 'runs-onn' is not allowed");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe.each(workflowFiles.map((f) => [rel(f), f]))("%s", (_name, file) => {
    const steps = expandedSteps(file);
    const text = fs.readFileSync(file, "utf8");

    test("every command it runs exists", () => {
        const problems: string[] = [];
        for (const { where, step } of steps) {
            if (step.run === undefined) continue;
            for (const c of commandsOf(step.run)) problems.push(...commandProblems(c).map((p) => `${where}: \`${c}\`: ${p}`));
        }
        expect(problems).toEqual([]);
        expect(steps.some((s) => s.step.run !== undefined)).toBe(true);
    });

    test("every path and stack the Pulumi steps name exists", () => {
        const problems: string[] = [];
        for (const { where, step } of steps.filter((s) => s.step.uses?.startsWith("pulumi/actions@") && s.step.with?.command)) {
            const w = step.with as Record<string, string>;
            const lines = (v: unknown) => (typeof v === "string" ? v.split(/[\n,]/).map((x) => x.trim()).filter(Boolean) : []);
            if (!w["stack-name"] || !exists(`Pulumi.${w["stack-name"]}.yaml`)) problems.push(`${where}: stack-name "${w["stack-name"]}" has no Pulumi.<stack>.yaml`);
            for (const pack of lines(w.policyPacks)) if (!exists(path.join(pack, "PulumiPolicy.yaml"))) problems.push(`${where}: policy pack ${pack}: no PulumiPolicy.yaml`);
            for (const cfg of lines(w.policyPackConfigs)) {
                if (!exists(cfg)) problems.push(`${where}: policy pack config ${cfg}: no such file`);
                else JSON.parse(fs.readFileSync(path.join(REPO_ROOT, cfg), "utf8"));
            }
            if (w["work-dir"] && !exists(path.join(w["work-dir"], "Pulumi.yaml"))) problems.push(`${where}: work-dir ${w["work-dir"]}: no Pulumi.yaml`);
        }
        expect(problems).toEqual([]);
    });

    test("every matrix value it reads is defined by its job's matrix", () => {
        const problems: string[] = [];
        for (const [id, job] of Object.entries(parse(file).jobs)) {
            const keys = new Set(matrixCombos(job.strategy?.matrix).flatMap((c) => Object.keys(c)));
            for (const m of JSON.stringify(job).matchAll(/\bmatrix\.([\w-]+)/g)) if (!keys.has(m[1])) problems.push(`jobs.${id}: matrix.${m[1]} is not in its matrix`);
        }
        expect(problems).toEqual([]);
    });

    test("every action is pinned to a full commit SHA, with its release in a comment", () => {
        const uses = [...Object.values(parse(file).jobs).flatMap((j) => [j.uses, ...(j.steps ?? []).map((s) => s.uses)])].filter((u): u is string => !!u);
        expect(uses.length).toBeGreaterThan(0);
        for (const u of uses) expect(u).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
        const lines = text.split("\n").filter((l) => /^\s*(-\s+)?uses:/.test(l));
        expect(lines.length).toBe(uses.length);
        for (const l of lines) expect(l).toMatch(/uses: [\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}$/);
    });

    test("minimal permissions: none by default, each job only what it needs", () => {
        const wf = parse(file);
        expect(wf.permissions).toEqual({});
        for (const [id, job] of Object.entries(wf.jobs)) {
            const granted = job.permissions as Record<string, string>;
            expect({ id, granted }).toEqual({ id, granted: expect.objectContaining({ contents: "read" }) });
            for (const [scope, level] of Object.entries(granted)) {
                // Write access only for the preview comment.
                if (level !== "read") expect({ id, scope, level }).toEqual({ id, scope: "pull-requests", level: "write" });
            }
        }
    });

    test("secrets reach steps through env, never spliced into a shell line; host keys stay checked", () => {
        for (const { where, step } of steps) {
            if (step.run !== undefined) expect({ where, run: step.run }).toEqual({ where, run: expect.not.stringMatching(/\$\{\{/) });
        }
        expect(text).not.toMatch(/StrictHostKeyChecking|UserKnownHostsFile|known_hosts|ssh-keyscan|pull_request_target/i);
    });
});

describe("what the workflows promise", () => {
    const all = workflowFiles.map((f) => ({ file: f, wf: parse(f), steps: expandedSteps(f) }));
    const triggered = (wf: Workflow, event: string) => (typeof wf.on === "string" ? wf.on === event : Array.isArray(wf.on) ? wf.on.includes(event) : Object.keys(wf.on as object).includes(event));
    const pulumiSteps = (event: string, command: string) =>
        all.filter((w) => triggered(w.wf, event)).flatMap((w) => w.steps.filter((s) => s.step.uses?.startsWith("pulumi/actions@") && s.step.with?.command === command).map((s) => ({ ...s, wf: w.wf })));

    test("pull requests run npm install and npm test as root (scripts/test.sh brings up the test host) on ubuntu-latest", () => {
        const pr = all.filter((w) => triggered(w.wf, "pull_request"));
        const runs = pr.flatMap((w) => w.steps.map((s) => s.step.run ?? "")).join("\n");
        expect(runs).toMatch(/^npm install\b/m);
        expect(runs).toMatch(/^sudo env "PATH=\$PATH" npm test$/m);
        expect(fs.readFileSync(path.join(REPO_ROOT, pkg.scripts.test.replace(/^bash /, "")), "utf8")).toContain("scripts/test-host.sh up");
        const testJob = pr.flatMap((w) => Object.values(w.wf.jobs)).find((j) => (j.steps ?? []).some((s) => /npm test$/.test(s.run ?? "")));
        expect(testJob?.["runs-on"]).toBe("ubuntu-latest");
        const setupNode = pr.flatMap((w) => w.steps).filter((s) => s.step.uses?.startsWith("actions/setup-node@"));
        expect(setupNode.length).toBeGreaterThan(0);
        for (const s of setupNode) expect(String(s.step.with?.["node-version"])).toBe("22");
    });

    test("every stack file is previewed on pull requests: --diff, a PR comment, the policy pack", () => {
        const previews = pulumiSteps("pull_request", "preview");
        expect(previews.map((p) => p.step.with?.["stack-name"]).sort()).toEqual(STACKS);
        for (const p of previews) {
            expect(p.step.with).toMatchObject({ diff: true, "comment-on-pr": true, policyPacks: "policy" });
            expect(p.wf.jobs[p.job].permissions).toMatchObject({ "pull-requests": "write" });
        }
        // Dev allows `latest` (policy/dev.json); prod gets the pack's defaults.
        expect(previews.find((p) => p.step.with?.["stack-name"] === "dev")?.step.with?.policyPackConfigs).toBe("policy/dev.json");
        expect(previews.find((p) => p.step.with?.["stack-name"] === "prod")?.step.with?.policyPackConfigs).toBe("");
    });

    test("every stack file is deployed on pushes to main, behind the environment of its name, one at a time", () => {
        const ups = pulumiSteps("push", "up");
        expect(ups.map((u) => u.step.with?.["stack-name"]).sort()).toEqual(STACKS);
        for (const u of ups) {
            expect((u.wf.on as Record<string, { branches?: string[] }>).push.branches).toEqual(["main"]);
            const job = u.wf.jobs[u.job] as Job & { concurrency?: { group: string; "cancel-in-progress": boolean } };
            expect(substitute(String(job.environment), u.combo)).toBe(u.step.with?.["stack-name"]);
            expect(job.concurrency?.["cancel-in-progress"]).toBe(false);
            expect(u.step.with).toMatchObject({ policyPacks: "policy" });
        }
    });

    test("every Pulumi CLI the workflows install is the project's pin (package.json config.pulumiCliVersion)", () => {
        const pin = (pkg as { config?: { pulumiCliVersion?: string } }).config?.pulumiCliVersion;
        expect(pin).toMatch(/^\d+\.\d+\.\d+$/);
        const pulumi = all.flatMap((w) => w.steps).filter((s) => s.step.uses?.startsWith("pulumi/actions@"));
        expect(pulumi.length).toBeGreaterThan(0);
        for (const s of pulumi) expect({ where: s.where, version: String(s.step.with?.["pulumi-version"]) }).toEqual({ where: s.where, version: pin });
    });

    test("backend URL, passphrase and SSH key come from secrets; the key becomes the secret config sshPrivateKey", () => {
        const jobs = all.flatMap((w) => Object.values(w.wf.jobs)).filter((j) => (j.steps ?? []).some((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command));
        expect(jobs.length).toBeGreaterThan(0);
        for (const j of jobs) {
            expect(j.env).toMatchObject({
                PULUMI_BACKEND_URL: "${{ secrets.PULUMI_BACKEND_URL }}",
                PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
            });
            const select = (j.steps ?? []).find((s) => s.run?.includes(".github/scripts/select-stack.sh"));
            expect(select?.env?.MMAGENT_SSH_PRIVATE_KEY).toMatch(/secrets\.MMAGENT_PROD_SSH_PRIVATE_KEY/);
            // Selected (and the key set) before Pulumi runs.
            const steps = j.steps ?? [];
            expect(steps.indexOf(select!)).toBeLessThan(steps.findIndex((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command));
        }
        const script = fs.readFileSync(path.join(REPO_ROOT, ".github/scripts/select-stack.sh"), "utf8");
        // From stdin into the secret config key the program reads (components/loadConfig.ts), never argv.
        expect(script).toMatch(/printf '%s\\n' "\$MMAGENT_SSH_PRIVATE_KEY" \| pulumi config set --non-interactive --secret --stack "\$stack" sshPrivateKey/);
        const code = script.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
        expect(code).not.toMatch(/StrictHostKeyChecking|known_hosts|ssh-keyscan|ssh-keygen|\.ssh\b/);
        expect(spawnSync("bash", ["-n", path.join(REPO_ROOT, ".github/scripts/select-stack.sh")]).status).toBe(0);
    });
});

test("matrixCombos expands like GitHub", () => {
    expect(matrixCombos({ stack: ["dev", "prod"], include: [{ stack: "dev", "policy-config": "policy/dev.json" }] })).toEqual([
        { stack: "dev", "policy-config": "policy/dev.json" },
        { stack: "prod" },
    ]);
    expect(matrixCombos({ os: ["a", "b"], v: [1, 2], exclude: [{ os: "b", v: 2 }], include: [{ os: "c", v: 3 }] })).toEqual([
        { os: "a", v: "1" },
        { os: "a", v: "2" },
        { os: "b", v: "1" },
        { os: "c", v: "3" },
    ]);
    expect(matrixCombos(undefined)).toEqual([{}]);
});

test("the command checker finds what is missing", () => {
    expect(commandProblems('sudo env "PATH=$PATH" npm test')).toEqual([]);
    expect(commandProblems("npm run no-such-script")).toEqual([expect.stringMatching(/npm script "no-such-script" is not in package.json/)]);
    expect(commandProblems("sudo bash scripts/no-such.sh up")).toEqual(["bash scripts/no-such.sh: no such file", "scripts/no-such.sh: no such file or directory"]);
    expect(commandProblems("npm install --prefix nowhere")).toEqual(["npm --prefix nowhere: no package.json there"]);
    expect(commandProblems("pulumi preview --stack x -c Pulumi.staging.yaml")).toEqual(["Pulumi.staging.yaml: no such file or directory"]);
    expect(commandsOf("a && b | c\n# comment\nd; e")).toEqual(["a", "b", "c", "d", "e"]);
});
