/**
 * Calls the policy pack's policies directly, the way the Pulumi engine would, on examples and on
 * the resources a mock run of the program recorded.
 */
import { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { RESOURCE_POLICIES, STACK_POLICIES } from "../../policy/policies";
import { MockRun } from "./mockProgram";
import { reveal } from "./secrets";

export type Props = Record<string, any>;

export function resourceArgs(type: string, props: Props, config: object = {}, name = "example"): ResourceValidationArgs {
    return {
        type,
        props,
        name,
        urn: `urn:pulumi:test::mmagent::${type}::${name}`,
        opts: {} as any,
        stackTags: new Map(),
        isType: () => false,
        asType: () => undefined,
        getConfig: <T extends object>() => config as T,
        notApplicable: (reason?: string): never => {
            throw new Error(`not applicable: ${reason}`);
        },
    } as ResourceValidationArgs;
}

export function runResourcePolicy(policy: ResourceValidationPolicy, type: string, props: Props, config: object = {}): string[] {
    const violations: string[] = [];
    const validate = policy.validateResource as (a: ResourceValidationArgs, r: (m: string) => void) => void;
    validate(resourceArgs(type, props, config), (m) => violations.push(m));
    return violations;
}

export function runStackPolicy(policy: StackValidationPolicy, resources: { type: string; props: Props; name?: string }[]): string[] {
    const violations: string[] = [];
    const args = {
        resources: resources.map((r, i) => ({ type: r.type, props: r.props, name: r.name ?? `r${i}`, urn: `urn:${i}`, opts: {} as any }) as PolicyResource),
        stackTags: new Map(),
        getConfig: <T extends object>() => ({}) as T,
        notApplicable: (): never => {
            throw new Error("n/a");
        },
    } as StackValidationArgs;
    (policy.validateStack as (a: StackValidationArgs, r: (m: string) => void) => void)(args, (m) => violations.push(m));
    return violations;
}

/** Every violation of the pack (default config: prod rules) by the resources of a mock run; policy packs see secrets as plain values. */
export function policyViolations(run: MockRun): string[] {
    const resources = run.resources.filter((r) => !r.type.startsWith("mmagent:")).map((r) => ({ type: r.type, name: r.name, props: { ...r.inputs, ...reveal(r.state) } }));
    const violations: string[] = [];
    for (const policy of RESOURCE_POLICIES) {
        for (const r of resources) violations.push(...runResourcePolicy(policy, r.type, r.props).map((v) => `${policy.name}: ${v}`));
    }
    for (const policy of STACK_POLICIES) violations.push(...runStackPolicy(policy, resources).map((v) => `${policy.name}: ${v}`));
    return violations;
}
