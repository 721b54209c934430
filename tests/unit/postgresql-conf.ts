/** Reads a rendered postgresql.conf the way PostgreSQL does for one parameter. */

/** The value NAME gets: from its last line (later lines win), unquoted; undefined when no line sets it. */
export function effectiveSetting(conf: string, name: string): string | undefined {
  let value: string | undefined;
  for (const line of conf.split("\n")) {
    const m = /^([A-Za-z_][\w.]*)\s*=\s*('(?:[^'\\]|''|\\.)*'|[^\s#]+)/.exec(line);
    if (m && m[1].toLowerCase() === name.toLowerCase()) {
      value = m[2].startsWith("'") ? m[2].slice(1, -1).replace(/''/g, "'").replace(/\\(.)/g, "$1") : m[2];
    }
  }
  return value;
}
