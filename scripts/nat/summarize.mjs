// Summarises the all.json files written by holepunch-experiment.mjs into a Markdown table.
// Usage: node scripts/nat/summarize.mjs /tmp/hp-results/all.json [more all.json…]
import { readFileSync } from 'node:fs'

const rows = process.argv.slice(2).flatMap(f => JSON.parse(readFileSync(f, 'utf8')))
const med = a => { const s = a.filter(x => x != null).sort((p, q) => p - q); return s.length ? s[Math.floor(s.length / 2)] : null }
const range = a => { const s = a.filter(x => x != null).sort((p, q) => p - q); return s.length ? `${med(s)} (${s[0]}–${s[s.length - 1]})` : '–' }
const groups = new Map()
for (const r of rows) {
  const key = `${r.transport}${r.guard ? ' + guard' : ''} | ${r.nat ?? 'eim/eim'} | ${r.relayLimits ?? 'none'}`
  if (!groups.has(key)) groups.set(key, [])
  groups.get(key).push(r)
}
console.log('| transport | NAT A/B | relay limits | tries | relayed | direct | time to direct ms, median (min–max) | RTT relayed p50 ms | RTT direct p50 ms | 1 KiB round trips/s relayed → direct | CPU ms per 500 round trips (A) relayed → direct | idle CPU % (A) | RSS MiB (A) | stream by PeerId ok |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const [key, rs] of groups) {
  const ok = rs.filter(r => r.direct)
  const f = v => v ?? '–'
  console.log(`| ${key} | ${rs.length} | ${rs.filter(r => r.relayed).length} | ${ok.length} | ${range(ok.map(r => r.timeToDirectMs))} | ${f(med(rs.map(r => r.rttRelayed?.p50)))} | ${f(med(ok.map(r => r.rttDirect?.p50)))} | ${f(med(rs.map(r => r.rttRelayed?.roundTripsPerSec)))} → ${f(med(ok.map(r => r.rttDirect?.roundTripsPerSec)))} | ${f(med(rs.map(r => r.rttRelayed?.cpuMsPer500)))} → ${f(med(ok.map(r => r.rttDirect?.cpuMsPer500)))} | ${f(med(rs.map(r => r.idleCpuPctA)))} | ${f(med(rs.map(r => r.rssMiBA)))} | ${rs.some(r => r.streamByPeerId) ? `${rs.filter(r => r.streamByPeerId?.startsWith('ok')).length}/${rs.filter(r => r.streamByPeerId).length}` : 'not measured'} |`)
  const base = rs.filter(r => r.rttDirectToRelay)
  if (base.length) console.log(`|   ↳ baseline: A's direct ${base[0].directToRelayAddr.split('/').slice(3, 4)} connection to the relay | | | ${base.length} | | | | | ${f(med(base.map(r => r.rttDirectToRelay.p50)))} | → ${f(med(base.map(r => r.rttDirectToRelay.roundTripsPerSec)))} | → ${f(med(base.map(r => r.rttDirectToRelay.cpuMsPer500)))} | | | |`)
}
