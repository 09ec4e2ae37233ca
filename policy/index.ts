/**
 * The mmagent security policy pack. Run it with a preview or an update:
 *
 *   pulumi preview --policy-pack policy                                   # prod rules
 *   pulumi preview --policy-pack policy --policy-pack-config policy/dev.json   # dev: `latest` allowed
 *
 * The policies themselves are in policies.ts (tested directly in test/unit/policy.test.ts).
 */
import { PolicyPack } from "@pulumi/policy";
import { RESOURCE_POLICIES, STACK_POLICIES } from "./policies";

new PolicyPack("mmagent-security", {
    enforcementLevel: "mandatory",
    policies: [...RESOURCE_POLICIES, ...STACK_POLICIES],
});
