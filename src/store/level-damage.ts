/**
 * What a LevelDB database shows of damage, and what a failed open means: the checks and the
 * error mapping that the state database (database.ts) and libp2p's datastore (integrity.ts)
 * share. Apart from Store because they read LevelDB's files and properties, not records.
 */
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ClassicLevel } from 'classic-level'
import { OctetError, errorMessage, systemErrorCode } from '../errors.js'

/**
 * What LevelDB itself shows of damage right after open, without reading every
 * record: tables whose size differs from what its manifest says (truncated or
 * replaced), and records of the write-ahead log it dropped as corrupt while
 * recovering. The binding offers no `paranoid_checks`, which would refuse the
 * latter: with it off LevelDB only notes "(ignoring error)" in its LOG, which
 * this reads. A process that crashed mid-write leaves a torn last record,
 * which LevelDB skips without such a note.
 */
export async function levelDamage (db: Pick<ClassicLevel, 'getProperty'>, path: string): Promise<string[]> {
  // LevelDB compacts in the background right after open and then deletes the tables it merged:
  // a table listed a moment ago may be gone for good reason (seen in tests after a SIGKILL).
  // It installs the new version before it deletes the old files, so a listing made after a
  // file went missing no longer names it; damage is what fresh listings go on showing
  let found: string[] = []
  for (let listing = 0; listing < TABLE_LISTINGS; listing++) {
    found = await tableDamage(parseTables(db.getProperty('leveldb.sstables')), path)
    if (found.length === 0) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const log = await readFile(join(path, 'LOG'), 'utf8').catch(() => '')
  const dropped = log.split('\n').filter(line => line.includes('(ignoring error)'))
  if (dropped.length > 0) found.push(`LevelDB dropped ${dropped.length} damaged part(s) of the write-ahead log of ${path} (${dropped[0]?.replace(/^.*\(ignoring error\) /, '')})`)
  return found
}

const TABLE_LISTINGS = 5

/** Tables of a listing whose file is missing or has another size than the manifest says. */
async function tableDamage (tables: Array<{ number: number, size: number }>, path: string): Promise<string[]> {
  const found: string[] = []
  for (const table of tables) {
    const file = join(path, `${String(table.number).padStart(6, '0')}.ldb`)
    let size: number | undefined
    try {
      size = (await stat(file)).size
    } catch (err) {
      if (systemErrorCode(err) !== 'ENOENT') throw err
    }
    if (size !== table.size) found.push(`table ${file} is ${size == null ? 'missing' : `${size} bytes`}, LevelDB's manifest says ${table.size}`)
  }
  return found
}

/** `leveldb.sstables` lists each level's tables as ` <number>:<size>[<smallest> .. <largest>]`. */
export function parseTables (property: string): Array<{ number: number, size: number }> {
  return [...property.matchAll(/^\s*(\d+):(\d+)\[/gm)].map(m => ({ number: Number(m[1]), size: Number(m[2]) }))
}

/**
 * Maps a failed open of any octet LevelDB database to an OctetError. Missing
 * files, a missing CURRENT or MANIFEST and corrupt tables are STATE_DAMAGED
 * (LevelDB says "Corruption", "does not exist", or an IO error on a file of
 * its own); permissions and the like stay DATA_DIR_UNWRITABLE.
 */
export function translateOpenError (err: unknown, path: string): Error {
  // classic-level wraps LevelDB's status: LEVEL_LOCKED when another process holds the LOCK file
  const code = systemErrorCode(err)
  const cause = err instanceof Error ? (err.cause as unknown) : undefined
  const causeCode = systemErrorCode(cause)
  const detail = cause instanceof Error ? cause.message : errorMessage(err)
  if (code === 'LEVEL_LOCKED' || causeCode === 'LEVEL_LOCKED') {
    return new OctetError('DAEMON_ALREADY_RUNNING', `the database at ${path} is in use by another process; stop the other octet daemon or use another --data-dir`, { cause: err })
  }
  if (/does not exist \(create_if_missing is false\)/.test(detail)) {
    // CURRENT names the manifest; without it LevelDB sees no database (and would make a new one)
    return new OctetError('STATE_DAMAGED', `the database at ${path} is damaged: its CURRENT file is missing`, { cause: err })
  }
  if (causeCode === 'LEVEL_CORRUPTION' || (causeCode === 'LEVEL_IO_ERROR' && /No such file or directory/.test(detail))) {
    return new OctetError('STATE_DAMAGED', `the database at ${path} is damaged: ${detail}`, { cause: err })
  }
  return new OctetError('DATA_DIR_UNWRITABLE', `cannot open the database at ${path}: ${detail}`, { cause: err })
}
