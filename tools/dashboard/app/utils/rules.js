// Reads a rules file (docs/rules.md): `rule NAME` then indented `kind`, `when`,
// `severity`, `hint` lines; a rule's id is its position in the file (0-based). Used for
// the rules built into the engine (examples/rules/default.rules, bundled at build time).
export function parseRules(text) {
  const rules = []
  let cur = null
  for (const raw of String(text).split('\n')) {
    const line = raw.replace(/\s+$/, '')
    if (!line.trim() || line.trim().startsWith('#')) continue
    const m = /^rule\s+(\S+)/.exec(line)
    if (m) {
      cur = { id: rules.length, name: m[1], kind: '', when: [], severity: '', hint: '', threshold: null }
      rules.push(cur)
      continue
    }
    if (!cur) continue
    const t = /^\s+(\w+)\s+(.*)$/.exec(line)
    if (!t) continue
    const [, key, value] = t
    if (key === 'when') {
      cur.when.push(value)
      const num = /(?:>=|<=|>|<|==|!=)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(value)
      if (num && cur.threshold == null) cur.threshold = Number(num[1])
    } else if (key === 'hint') {
      cur.hint = value.replace(/^"|"$/g, '')
    } else if (key in cur) {
      cur[key] = value
    }
  }
  for (const r of rules) r.when = r.when.join(' and ')
  return rules
}
