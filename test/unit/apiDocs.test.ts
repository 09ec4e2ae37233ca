/**
 * API docs (issue 12, part 2): the TSDoc of the package's arguments, checked on what TypeDoc
 * itself reads, and `npm run docs` (typedoc.json) held to zero warnings.
 *
 * What is checked: every property of every exported interface or type alias whose name ends in
 * `Args` in components/*.ts (plus {@link EXTRA_ROOTS}), and, recursively, of every interface,
 * type alias or inline object type of this package that such a property's type refers to
 * (HostAccess → HostConnection, VolumeSpec → NfsSource, ServiceGuard, ...), through unions,
 * arrays, `pulumi.Input<…>`, `Record<…>` and `Pick<…>`. Types from other packages are not
 * descended into. The zod-inferred `services` type that MultimodalAgentStackArgs takes reaches
 * TypeDoc as a plain object type, so the comments on the schema's fields in config.ts are checked
 * there too.
 *
 * The convention, for each such property:
 * - it has a doc comment (a non-empty summary);
 * - an OPTIONAL property has a `@default` tag saying what leaving it out means, as a value
 *   (`@default 10`, `@default "rerun"`, `@default []`) or in words (`@default the component name`);
 * - when leaving it out means "nothing" rather than a value, the tag is `@default none (…)`
 *   with the consequence in parentheses, e.g. `@default none (no quota)`: a bare `@default none`
 *   or `@default undefined` says nothing and is reported.
 * A required property needs no `@default`; it may carry one where the type is the output of the
 * config schema (`MultimodalAgentStackArgs.services`): there the tag is the config key's default,
 * which parsing has already filled in.
 *
 * TypeDoc reads every components/*.ts for this, not only index.ts: the public index leaves out
 * some types the arguments refer to (NfsSource, StoragePlacement, ServiceStorageLookup; see
 * `intentionallyNotExported` in typedoc.json), and those are arguments all the same.
 *
 * TypeDoc is ESM-only, so it runs as a child process writing its JSON model (`--json`) into a
 * temporary folder under os.tmpdir(); {@link argsDocProblems} reads that model. The last case
 * feeds a small synthetic source with known gaps through the same function, so the check is
 * shown to find them.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");
const TYPEDOC = path.join(ROOT, "node_modules", "typedoc", "bin", "typedoc");

/** Checked like `*Args` though named otherwise: `composeStack`'s second argument. */
const EXTRA_ROOTS = ["StackSecrets"];

// TypeDoc's ReflectionKind values used here (typedoc/dist/lib/models/kind.js).
const KIND = { Module: 2, Interface: 256, Property: 1024, TypeLiteral: 65536, TypeAlias: 2097152 } as const;

/** The parts of TypeDoc's JSON model (JSONOutput) this test reads. */
interface DocComment {
    summary: { kind: string; text: string }[];
    blockTags?: { tag: string; content: { kind: string; text: string }[] }[];
}
interface DocType {
    type: string;
    target?: number | object | DocType;
    typeArguments?: DocType[];
    types?: DocType[];
    elementType?: DocType;
    elements?: DocType[];
    declaration?: DocReflection;
}
interface DocReflection {
    id: number;
    name: string;
    kind: number;
    flags?: { isOptional?: boolean };
    comment?: DocComment;
    children?: DocReflection[];
    type?: DocType;
}

/** Text of comment parts, with the code fences TypeDoc puts around some tag contents removed. */
function partsText(parts: { text: string }[]): string {
    return parts
        .map((p) => p.text)
        .join("")
        .replace(/^```\w*\n?|\n?```$/g, "")
        .trim();
}

/** What is wrong with one property's doc comment under the convention in the header; [] when nothing. */
function propertyProblems(prop: DocReflection, label: string): string[] {
    const problems: string[] = [];
    const summary = partsText(prop.comment?.summary ?? []);
    const defaults = (prop.comment?.blockTags ?? []).filter((t) => t.tag === "@default" || t.tag === "@defaultValue");
    const optional = !!prop.flags?.isOptional;
    if (!summary) problems.push(`${label}: no doc comment`);
    if (optional && defaults.length === 0) problems.push(`${label}: optional, but no @default`);
    for (const tag of defaults) {
        const text = partsText(tag.content);
        if (!text) problems.push(`${label}: empty @default`);
        else if (/^(none|undefined)\b/i.test(text) && !/^(none|undefined)\s*\(.+\)/is.test(text)) {
            problems.push(`${label}: "@default ${text}" without what leaving it out means, e.g. "@default none (no quota)"`);
        }
    }
    return problems;
}

/**
 * Every documentation problem of the `*Args` types (and those they refer to) in a TypeDoc JSON
 * model, one line each, with the names of the types checked. Pure.
 */
function argsDocProblems(project: DocReflection, extraRoots: string[] = []): { problems: string[]; checked: string[]; properties: number } {
    const byId = new Map<number, DocReflection>();
    const roots: DocReflection[] = [];
    const index = (r: DocReflection, depth: number) => {
        byId.set(r.id, r);
        const named = r.kind === KIND.Interface || r.kind === KIND.TypeAlias;
        if (named && depth <= 2 && (/Args$/.test(r.name) || extraRoots.includes(r.name))) roots.push(r);
        for (const c of r.children ?? []) index(c, depth + 1);
    };
    index(project, 0);

    const problems: string[] = [];
    const checked: string[] = [];
    const seen = new Set<DocReflection>();
    let count = 0;
    const properties = (owner: DocReflection, label: string) => {
        for (const p of owner.children ?? []) {
            if (p.kind !== KIND.Property) continue;
            count++;
            problems.push(...propertyProblems(p, `${label}.${p.name}`));
            if (p.type) visitType(p.type, `${label}.${p.name}`);
        }
    };
    const visitDeclaration = (decl: DocReflection) => {
        if (seen.has(decl)) return;
        seen.add(decl);
        checked.push(decl.name);
        if (decl.kind === KIND.Interface) properties(decl, decl.name);
        else if (decl.type) visitType(decl.type, decl.name);
    };
    const visitType = (t: DocType, label: string): void => {
        switch (t.type) {
            case "reference": {
                const target = typeof t.target === "number" ? byId.get(t.target) : undefined;
                if (target && (target.kind === KIND.Interface || target.kind === KIND.TypeAlias)) visitDeclaration(target);
                for (const a of t.typeArguments ?? []) visitType(a, label);
                return;
            }
            case "reflection":
                // An inline object type: its properties are arguments too (e.g. a union member).
                if (t.declaration && t.declaration.kind === KIND.TypeLiteral) properties(t.declaration, label);
                return;
            case "union":
            case "intersection":
                for (const u of t.types ?? []) visitType(u, label);
                return;
            case "array":
            case "optional":
            case "rest":
                if (t.elementType) visitType(t.elementType, label);
                return;
            case "tuple":
                for (const e of t.elements ?? []) visitType(e, label);
                return;
            case "typeOperator":
                if (t.target && typeof t.target === "object" && "type" in t.target) visitType(t.target as DocType, label);
                return;
            default:
                // intrinsic, literal, query, indexedAccess (the zod-inferred config types), ...
                return;
        }
    };
    for (const r of roots) visitDeclaration(r);
    return { problems, checked, properties: count };
}

/** Runs TypeDoc in the repository root and returns its output (colours removed) and exit status. */
function typedoc(args: string[]): { status: number | null; output: string } {
    const r = spawnSync(process.execPath, [TYPEDOC, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    return { status: r.status, output: `${r.stdout ?? ""}${r.stderr ?? ""}`.replace(/\x1b\[[0-9;]*m/g, "") };
}

/** TypeDoc's JSON model of these entry points, written under `dir`. */
function typedocModel(dir: string, entryPoints: string[], tsconfig: string): DocReflection {
    const json = path.join(dir, `model-${Date.now()}.json`);
    const optionsFile = path.join(dir, `typedoc-${Date.now()}.json`);
    const options = {
        entryPoints,
        entryPointStrategy: "resolve",
        tsconfig,
        name: "model",
        readme: "none",
        disableSources: true,
        excludePrivate: true,
        // Only the model is wanted here; the documentation rules are what argsDocProblems checks.
        validation: { notExported: false, notDocumented: false, invalidLink: false },
        treatWarningsAsErrors: false,
        json,
    };
    fs.writeFileSync(optionsFile, JSON.stringify(options, null, 2));
    const r = typedoc(["--options", optionsFile]);
    if (r.status !== 0 || !fs.existsSync(json)) throw new Error(`typedoc exited ${r.status}:\n${r.output}`);
    return JSON.parse(fs.readFileSync(json, "utf8")) as DocReflection;
}

describe("API docs", () => {
    let dir: string;
    beforeAll(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "apidocs-test-"));
    });
    afterAll(() => {
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("every property of every *Args type (and the types they refer to) has a doc comment, and every optional one its @default", () => {
        const sources = fs
            .readdirSync(path.join(ROOT, "components"))
            .filter((f) => f.endsWith(".ts"))
            .map((f) => path.join(ROOT, "components", f));
        const { problems, checked, properties } = argsDocProblems(typedocModel(dir, sources, path.join(ROOT, "tsconfig.build.json")), EXTRA_ROOTS);
        // The walk really reached the components' arguments and what they refer to.
        expect(checked).toEqual(
            expect.arrayContaining([
                "NvidiaHostArgs",
                "StorageLayoutArgs",
                "ReverseProxyNetworkArgs",
                "MultimodalAgentStackArgs",
                "HostScriptArgs",
                "CaddyConfigArgs",
                "StackSecrets",
                "HostAccess",
                "HostConnection",
                "VolumeSpec",
                "NfsSource",
                "ServiceGuard",
                "StoragePlacement",
                "ProxyRoute",
                "ServiceStorageLookup",
            ]),
        );
        // 174 today: the four components' arguments, the types they refer to, and the services
        // section MultimodalAgentStackArgs takes (the config schema's comments, as TypeDoc sees them).
        expect(properties).toBeGreaterThan(100);
        expect(problems).toEqual([]);
    }, 60_000);

    it("`npm run docs` (typedoc.json: warnings are errors, every export documented) passes", () => {
        const r = typedoc(["--options", path.join(ROOT, "typedoc.json"), "--emit", "none"]);
        expect(r.output).not.toMatch(/\[(warning|error)\]/);
        expect(r.status).toBe(0);
    }, 60_000);

    it("the check reports an undocumented optional argument (synthetic source)", () => {
        const src = path.join(dir, "synthetic");
        fs.mkdirSync(src);
        fs.writeFileSync(
            path.join(src, "index.ts"),
            [
                "/** Inputs of a widget. */",
                "export interface WidgetArgs {",
                "    /** Documented and required. */",
                "    name: string;",
                "    /** Documented, with its default. @default 3 */",
                "    size?: number;",
                "    /** Documented, but no default. */",
                "    color?: string;",
                "    /** A bare none says nothing. @default none */",
                "    owner?: string;",
                "    /** Nested arguments. @default {} */",
                "    nested?: Inner;",
                "    retries?: number;",
                "}",
                "/** Referenced by WidgetArgs. */",
                "export interface Inner {",
                "    depth?: number;",
                "    /** Documented, with its reason. @default none (no limit) */",
                "    limit?: number;",
                "}",
                "",
            ].join("\n"),
        );
        fs.writeFileSync(
            path.join(src, "tsconfig.json"),
            JSON.stringify({ compilerOptions: { strict: true, target: "es2022", module: "commonjs", skipLibCheck: true, types: [] }, include: ["index.ts"] }),
        );
        const { problems, checked } = argsDocProblems(typedocModel(dir, [path.join(src, "index.ts")], path.join(src, "tsconfig.json")));
        expect(checked).toEqual(["WidgetArgs", "Inner"]);
        expect(problems.sort()).toEqual(
            [
                "WidgetArgs.color: optional, but no @default",
                'WidgetArgs.owner: "@default none" without what leaving it out means, e.g. "@default none (no quota)"',
                "WidgetArgs.retries: no doc comment",
                "WidgetArgs.retries: optional, but no @default",
                "Inner.depth: no doc comment",
                "Inner.depth: optional, but no @default",
            ].sort(),
        );
    }, 60_000);
});
