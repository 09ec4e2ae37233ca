/**
 * Every component's type token, in one place: the architecture as one list.
 * Format `<package>:<module>:<Type>`.
 */
export const TOKENS = {
    nvidiaHost: "mmagent:host:NvidiaHost",
    storageLayout: "mmagent:storage:StorageLayout",
    reverseProxyNetwork: "mmagent:network:ReverseProxyNetwork",
    multimodalAgentStack: "mmagent:agent:MultimodalAgentStack",
} as const;
