/**
 * Every component's type token, in one place: the architecture as one list.
 * Format `<package>:<module>:<Type>`.
 */
export const TOKENS = {
    /** {@link NvidiaHost}. */
    nvidiaHost: "mmagent:host:NvidiaHost",
    /** {@link StorageLayout}. */
    storageLayout: "mmagent:storage:StorageLayout",
    /** {@link ReverseProxyNetwork}. */
    reverseProxyNetwork: "mmagent:network:ReverseProxyNetwork",
    /** {@link MultimodalAgentStack}. */
    multimodalAgentStack: "mmagent:agent:MultimodalAgentStack",
} as const;

/** Docker labels the components write and the policy pack (policy/) reads. */
export const LABELS = {
    /** Volume: "read-only" for input data, which every container must mount read-only. */
    volumeAccess: "mmagent.access",
    /** Proxy container: "true" when the stack's config allows publishing on every interface. */
    allowPublicBind: "mmagent.allow-public-bind",
} as const;
