// Go's time.ParseDuration, which the provider applies to healthcheck durations.

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** "1m30s", "500ms", "1.5h", "0" → nanoseconds. Throws on anything Go would reject. */
export function parseGoDuration(text: string): number {
    const match = /^([-+]?)((?:\d*\.?\d+(?:ns|us|µs|μs|ms|s|m|h))+|0)$/.exec(text);
    if (!match) throw new Error(`invalid duration "${text}" (expected a Go duration such as "2s", "500ms", "1m0s")`);
    let total = 0;
    for (const [, value, unit] of match[2].matchAll(/(\d*\.?\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
        total += parseFloat(value) * UNIT_NS[unit];
    }
    return Math.round(match[1] === "-" ? -total : total);
}
