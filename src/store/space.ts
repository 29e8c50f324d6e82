import { readdir, stat, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { OctetError, errorMessage, systemErrorCode } from '../errors.js'
import { MiB, SECOND } from '../units.js'

/** While the disk is full, how often we look whether space came back. */
export const SPACE_CHECK_INTERVAL = 1 * SECOND
/**
 * Free space wanted, beyond the size of the database's log files, before
 * writing is tried again: reopening turns the logs into tables, and a write
 * that fails again at once would only start the wait over.
 */
export const RESUME_HEADROOM = 1 * MiB

/**
 * Whether a write failed for lack of space. LevelDB reports the OS error in
 * its message only ("IO error: …/000003.log: No space left on device"), with
 * classic-level's code LEVEL_IO_ERROR; a quota counts as a full disk too.
 */
export function isNoSpaceError (err: unknown): boolean {
  const code = systemErrorCode(err)
  if (code === 'ENOSPC' || code === 'EDQUOT') return true
  if (code !== 'LEVEL_IO_ERROR') return false
  return /No space left on device|Disk quota exceeded/i.test(errorMessage(err))
}

export function diskFullError (dir: string, cause?: unknown): OctetError {
  return new OctetError('DISK_FULL',
    `the disk holding ${dir} is full: nothing can be saved (reads still work). Free space on that disk; ` +
    'octet notices within seconds and resumes writing by itself, no restart needed', { cause })
}

/** Whether the database directory's disk has room to resume writing. */
export async function hasRoomToResume (dir: string): Promise<boolean> {
  const fs = await statfs(dir)
  const free = fs.bavail * fs.bsize
  let logs = 0
  for (const name of await readdir(dir)) {
    if (name.endsWith('.log')) logs += (await stat(join(dir, name))).size
  }
  return free >= logs + RESUME_HEADROOM
}
