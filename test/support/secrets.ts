/**
 * Pulumi's wire form of a secret, as the mock monitor hands inputs over and as state keeps
 * them: `{ [SECRET_KEY]: SECRET_SIG, value }`. One place for the helpers every harness needs.
 */
export const SECRET_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function isSecretWrapper(v: unknown): v is { value: unknown } {
    return v !== null && typeof v === "object" && (v as Record<string, unknown>)[SECRET_KEY] === SECRET_SIG;
}

/** Wraps a value as a secret, in wire form. */
export const asSecret = (value: unknown) => ({ [SECRET_KEY]: SECRET_SIG, value });

/** Whether a value is, or contains, a secret. */
export function containsSecret(v: unknown): boolean {
    if (v === null || typeof v !== "object") return false;
    return isSecretWrapper(v) || Object.values(v as Record<string, unknown>).some(containsSecret);
}

/** The plain value, secrets unwrapped at any depth. */
export function reveal<T = any>(v: unknown): T {
    if (isSecretWrapper(v)) return reveal(v.value);
    if (Array.isArray(v)) return v.map(reveal) as T;
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)])) as T;
    return v as T;
}
