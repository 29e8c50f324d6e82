import { stat } from 'node:fs/promises'
import type { Command } from 'commander'
import { resolveDataDir } from '../config.js'
import { OctetError, systemErrorCode } from '../errors.js'
import type { Examination, RepairOutcome } from '../store/integrity.js'
import { printJson, table } from './output.js'

/** The exit code of `octet doctor` that finds damage, and of a daemon that refuses it (sysexits' EX_DATAERR). */
export const EXIT_STATE_DAMAGED = 65

interface DoctorOptions { dataDir?: string, repair?: boolean, json?: boolean }

/**
 * `octet doctor [--repair]`: checks a data directory the way a start does and
 * reads every record (the start does not); with --repair runs LevelDB's repair
 * on what is damaged and says what was lost against the marker's counts. Runs
 * with no daemon on the directory: it holds daemon.lock meanwhile.
 */
export function registerDoctor (program: Command): void {
  program.command('doctor')
    .description('check that the state of a data directory is whole and belongs to its identity; --repair recovers what can be recovered')
    .option('--repair', 'run LevelDB\'s repair on damaged state and accept what is left')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const opts = command.optsWithGlobals<DoctorOptions>()
      const dataDir = resolveDataDir(opts.dataDir)
      try {
        await stat(dataDir)
      } catch (err) {
        if (systemErrorCode(err) !== 'ENOENT') throw err
        throw new OctetError('INVALID_CONFIG', `there is no data directory at ${dataDir}`)
      }
      // loaded here: the other commands are small API clients and should start fast
      const { DaemonLock } = await import('../datadir.js')
      const { examine, isNew, repairState, stateError } = await import('../store/integrity.js')
      const { readMarker } = await import('../store/marker.js')
      const lock = await DaemonLock.acquire(dataDir)
      try {
        if (await isNew(dataDir, await readMarker(dataDir).catch(() => undefined))) {
          if (opts.json === true) printJson({ dataDir, new: true, findings: [] })
          else process.stdout.write(`${dataDir}: no node here yet (a daemon started on it creates one)\n`)
          return
        }
        if (opts.repair === true) {
          const outcome = await repairState(dataDir)
          if (opts.json === true) return printJson(repairJson(outcome))
          process.stdout.write(describe(outcome.examination))
          process.stdout.write(outcome.repaired ? describeRepair(outcome) : 'nothing to repair\n')
          return
        }
        const found = await examine(dataDir, { census: true })
        await found.store?.close()
        if (opts.json === true) printJson(examinationJson(found))
        else process.stdout.write(describe(found))
        if (found.findings.length > 0) {
          const verdict = stateError(dataDir, found.findings)
          if (opts.json !== true) process.stdout.write(`\n${verdict.message}\n`)
          process.exitCode = EXIT_STATE_DAMAGED
        }
      } finally {
        await lock.release()
      }
    })
}

function examinationJson (found: Examination): object {
  return { dataDir: found.dataDir, peerId: found.peerId, marker: found.marker, checkpoint: found.checkpoint, counts: found.counts, findings: found.findings, libp2pProblems: found.libp2pProblems }
}

function repairJson (outcome: RepairOutcome): object {
  const before = outcome.examination.counts
  return { ...examinationJson(outcome.examination), repaired: outcome.repaired, before, after: outcome.after, lost: lost(outcome.examination.marker?.counts ?? before ?? {}, outcome.after) }
}

/** Records per sublevel that `reference` had and `after` has not. */
function lost (reference: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(reference)
    .map(([name, n]) => [name, n - (after[name] ?? 0)] as const)
    .filter(([, n]) => n > 0))
}

function describe (found: Examination): string {
  const lines = [`data directory  ${found.dataDir}`, `identity        ${found.peerId ?? 'missing'}`]
  const marker = found.marker
  lines.push(marker == null
    ? 'state.marker    none'
    : `state.marker    ${marker.peerId}, checkpoint ${marker.checkpoint}, written ${new Date(marker.writtenAt).toISOString()}, last stop ${marker.cleanStop ? 'clean' : 'not clean (a crash, or a daemon still running)'}`)
  if (found.checkpoint != null) lines.push(`state           checkpoint ${found.checkpoint}`)
  if (found.findings.length === 0) {
    lines.push('verdict         whole')
  } else {
    lines.push('verdict         damaged:')
    for (const finding of found.findings) lines.push(`  - ${finding.message}`)
  }
  if (found.libp2pProblems.length > 0) {
    lines.push("libp2p's data   damaged (known peers and DHT records: the next start, or --repair, repairs it):")
    for (const problem of found.libp2pProblems) lines.push(`  - ${problem}`)
  }
  const counts = found.counts
  if (counts != null || marker != null) {
    const names = [...new Set([...Object.keys(marker?.counts ?? {}), ...Object.keys(counts ?? {})])].sort()
    lines.push('', table(['records', `marker (${marker == null ? '-' : new Date(marker.countedAt).toISOString()})`, 'now'],
      names.map(name => [name, String(marker?.counts[name] ?? '-'), counts == null ? 'unreadable' : String(counts[name] ?? 0)])))
  }
  return lines.join('\n') + '\n'
}

function describeRepair (outcome: RepairOutcome): string {
  const { marker, counts: before } = outcome.examination
  const names = [...new Set([...Object.keys(marker?.counts ?? {}), ...Object.keys(before ?? {}), ...Object.keys(outcome.after)])].sort()
  const rows = names.map(name => [name, String(marker?.counts[name] ?? '-'), before == null ? 'unreadable' : String(before[name] ?? 0), String(outcome.after[name] ?? 0)])
  const gone = lost(marker?.counts ?? before ?? {}, outcome.after)
  const summary = Object.keys(gone).length === 0
    ? 'nothing lost against the marker\'s counts'
    : `lost against the ${marker != null ? 'marker\'s' : 'readable'} counts: ${Object.entries(gone).map(([name, n]) => `${n} ${name}`).join(', ')}`
  return `\nrepaired with LevelDB's repair; the state is marked whole again\n${table(['records', 'marker', 'before', 'after'], rows)}\n${summary}\n`
}
