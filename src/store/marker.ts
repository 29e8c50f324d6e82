/**
 * `<data-dir>/state.marker`: its format, read and checked for shape, and replaced in one
 * step. What a marker means at a start, and when it is written, is integrity.ts's.
 */
import { open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { dataDirPaths } from '../datadir.js'
import { OctetError, systemErrorCode } from '../errors.js'

export const MARKER_FORMAT = 1

export interface StateMarker {
  format: typeof MARKER_FORMAT
  /** the PeerId of the identity.key this state belongs to */
  peerId: string
  storeVersion: number
  /** a checkpoint the database held when this was written: it must hold at least this one */
  checkpoint: number
  /** records per sublevel, counted at `countedAt` (a clean stop, a repair, the first start) */
  counts: Record<string, number>
  countedAt: number
  writtenAt: number
  /** the last daemon stopped cleanly (false while one runs, and after a crash) */
  cleanStop: boolean
  /**
   * Damage found at a start and not repaired yet. Kept because LevelDB heals
   * some of it by opening (a damaged write-ahead log is replayed as far as it
   * reads and then deleted): the next start must refuse all the same.
   */
  damage?: string[]
}

/** Written before anything else by the first start: a first start that was cut short is finished, not refused. */
interface InitializingMarker {
  format: typeof MARKER_FORMAT
  initializing: true
  writtenAt: number
}

export type MarkerFile = StateMarker | InitializingMarker

export async function readMarker (dataDir: string): Promise<MarkerFile | undefined> {
  const path = dataDirPaths(dataDir).marker
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return undefined
    throw err
  }
  try {
    const parsed = JSON.parse(text) as MarkerFile
    if (parsed.format === MARKER_FORMAT && ('initializing' in parsed || typeof parsed.peerId === 'string')) return parsed
  } catch {}
  throw new OctetError('STATE_DAMAGED', `${path} is unreadable`)
}

/** Replaces the marker in one step (write aside, sync, rename), so a crash leaves the old one or the new one. */
export async function writeMarker (dataDir: string, marker: MarkerFile): Promise<void> {
  const path = dataDirPaths(dataDir).marker
  const aside = `${path}.new`
  const file = await open(aside, 'w', 0o600)
  try {
    await file.writeFile(JSON.stringify(marker, null, 2) + '\n')
    await file.sync()
  } finally {
    await file.close()
  }
  await rename(aside, path)
  const dir = await open(dirname(path), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
