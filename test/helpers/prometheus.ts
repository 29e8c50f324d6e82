/** One sample line of the Prometheus text format: `name{label="value",…} value`. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"'
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`)
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`)
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (-?(?:\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)|(?:[nN][aA][nN])|[+-]Inf)(?: -?\\d+)?$`)
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/**
 * Parses the text exposition format (version 0.0.4) strictly, line by line, and throws on the
 * first line that is not empty (allowed, and ignored), a HELP, a TYPE or a sample of the family its TYPE announced (a
 * histogram's or summary's _bucket, _sum and _count included), or on a family announced twice.
 * Values are read as Prometheus reads them (Go's ParseFloat): NaN in any case — prom-client
 * writes `Nan` — and ±Inf.
 */
export function parseExposition (text: string): { samples: Sample[], types: Map<string, string> } {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  let family: string | undefined
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  lines.forEach((line, i) => {
    const fail = (why: string): never => { throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`) }
    if (line === '') return
    if (line.startsWith('#')) {
      const type = TYPE.exec(line)
      if (type != null) {
        if (types.has(type[1] ?? '')) fail('family announced twice')
        types.set(type[1] ?? '', type[2] ?? '')
        family = type[1]
      } else if (HELP.exec(line) == null) fail('neither HELP nor TYPE')
      return
    }
    const match = SAMPLE.exec(line) ?? fail('not a sample line')
    const name = match[1] ?? ''
    const kind = family == null ? undefined : types.get(family)
    const suffixes = kind === 'histogram' ? ['', '_bucket', '_sum', '_count'] : kind === 'summary' ? ['', '_sum', '_count'] : ['']
    if (family == null || !suffixes.some(s => name === family + s)) fail(`sample outside its family (${family ?? 'none'})`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL_PAIR)) labels[key ?? ''] = value ?? ''
    const text = match[3] ?? ''
    samples.push({ name, labels, value: /^nan$/i.test(text) ? NaN : Number(text.replace('Inf', 'Infinity')) })
  })
  return { samples, types }
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function total (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
}
