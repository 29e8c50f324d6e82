// Benchmark "faults": what octet accepts, delivers and loses when the machine misbehaves —
// a full disk at the sender or the receiver, damaged state, a mailbox flood, SSE clients that
// never read, a log flood. Each scenario lives in a module under faults/ exporting
// `scenarios`: [{ name, description, run({ log }) → Outcome }], with
//   Outcome = { accepted, delivered, lost, rssGrowthMB?, logGrowthKB?, recoverMs?, note? }
// (counts are messages or envelopes, whichever the scenario is about; lost must be 0). The
// baseline of each scenario is its own fault-free part, reported in `note`.
export const name = 'faults'
export const description = 'full disks, damaged state, floods: accepted, delivered, lost (must be 0), memory and log growth, time to recover'

/** One module per area; each adds itself here. */
const SCENARIO_MODULES = [
  async () => await import('./faults/disk-full.js'),
  async () => await import('./faults/damage.js'),
  async () => await import('./faults/floods.js'),
  async () => await import('./faults/bounds.js')
]

export async function run ({ log = () => {} } = {}) {
  const rows = []
  const targets = []
  const add = (metric, value, unit, note = '') => { rows.push({ metric, value: typeof value === 'number' ? Math.round(value * 10) / 10 : value, unit, note }) }
  for (const load of SCENARIO_MODULES) {
    const { scenarios } = await load()
    for (const scenario of scenarios) {
      log(`${scenario.name} …`)
      const outcome = await scenario.run({ log })
      add(`${scenario.name}: accepted`, outcome.accepted, '', scenario.description)
      add(`${scenario.name}: delivered`, outcome.delivered, '')
      add(`${scenario.name}: lost`, outcome.lost, '', 'must be 0')
      if (outcome.rssGrowthMB != null) add(`${scenario.name}: daemon memory growth`, outcome.rssGrowthMB, 'MB')
      if (outcome.logGrowthKB != null) add(`${scenario.name}: log growth`, outcome.logGrowthKB, 'KB')
      if (outcome.recoverMs != null) add(`${scenario.name}: time to recover`, outcome.recoverMs, 'ms')
      if (outcome.note != null) add(`${scenario.name}: note`, outcome.note, '')
      targets.push({ target: `${scenario.name}: nothing lost`, value: outcome.lost, pass: outcome.lost === 0 })
    }
  }
  return { rows, targets }
}
