/**
 * The injection corpus: hostile strings, each of which creates a canary file if any shell,
 * command or option parser ever executes it. Shared by the validation and host-script tests.
 */

/** Payloads for a canary path `c`. Strings only; raw-byte payloads are in RAW_PAYLOADS. */
export function payloads(c: string): { name: string; value: string }[] {
    return [
        { name: "semicolon", value: `x; touch ${c}` },
        { name: "command substitution", value: `$(touch ${c})` },
        { name: "backticks", value: `\`touch ${c}\`` },
        { name: "newline", value: `x\ntouch ${c}` },
        { name: "carriage return", value: `x\rtouch ${c}\r` },
        { name: "single quote break-out", value: `x'; touch ${c}; echo '` },
        { name: "double quote break-out", value: `x"; touch ${c}; echo "` },
        { name: "and", value: `x && touch ${c}` },
        { name: "or", value: `false || touch ${c}` },
        { name: "pipe", value: `x | touch ${c}` },
        { name: "background", value: `x & touch ${c} &` },
        { name: "redirect", value: `> ${c}` },
        { name: "append redirect", value: `x >> ${c}` },
        { name: "process substitution", value: `<(touch ${c})` },
        { name: "arithmetic", value: `$(( $(touch ${c}) ))` },
        { name: "IFS trick", value: `$(touch\${IFS}${c})` },
        { name: "brace expansion", value: `{touch,${c}}` },
        { name: "ANSI-C quoting", value: `$'\\x3b'touch ${c}` },
        { name: "comment tail", value: `x;touch ${c} #` },
        { name: "escaped dollar", value: `\\$(touch ${c})` },
        { name: "glob", value: `* ; touch ${c}` },
        { name: "tilde", value: `~root;touch ${c}` },
        { name: "option: --output", value: `--output=${c}` },
        { name: "option: -o", value: `-o${c}` },
        { name: "option: ssh ProxyCommand", value: `-oProxyCommand=touch ${c}` },
        { name: "option: -rf", value: `-rf ${c}` },
        { name: "path traversal", value: `../../../../${c}` },
        { name: "tab separated", value: `x\ttouch ${c}` },
        { name: "printf format", value: `%s%n$(touch ${c})` },
        { name: "unicode bidi override", value: `x\u202e; touch ${c}` },
        { name: "fullwidth semicolon", value: `x\uff1b touch ${c}` },
        { name: "lone surrogate (invalid UTF-16)", value: `x\ud800; touch ${c}` },
        { name: "spreadsheet formula", value: `=cmd|' /C touch ${c}'!A0` },
        { name: "very long", value: `${"a".repeat(100_000)}; touch ${c}` },
        { name: "NUL byte", value: `x\u0000; touch ${c}` },
        { name: "YAML/JSON breaker", value: `x", "evil": "$(touch ${c})` },
    ];
}

/** Payloads that are bytes, not text: invalid UTF-8 and a NUL, as they would arrive on a host. */
export function rawPayloads(c: string): { name: string; bytes: Buffer }[] {
    return [
        { name: "invalid UTF-8", bytes: Buffer.concat([Buffer.from([0x78, 0xff, 0xfe, 0xc0, 0x80]), Buffer.from(`; touch ${c}`)]) },
        { name: "raw NUL byte", bytes: Buffer.concat([Buffer.from("x"), Buffer.from([0]), Buffer.from(`; touch ${c}`)]) },
    ];
}
