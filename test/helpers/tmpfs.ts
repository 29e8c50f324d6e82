import { spawnSync } from 'node:child_process'
import { mkdtemp, open, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Cleanup } from './daemon.js'

/**
 * Why a small tmpfs cannot be mounted here (not Linux, not root), in one
 * line; undefined when it can. For `describe.skipIf(skipUnlessTmpfs() != null)`.
 */
export function skipUnlessTmpfs (): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux'
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root'
  return undefined
}

/** Mounts a tmpfs of `sizeMiB` on a new temp directory; cleanup unmounts it (register it before whatever runs on it). */
export async function mountTmpfs (cleanup: Cleanup, sizeMiB = 8): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'octet-tmpfs-'))
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { encoding: 'utf8' })
  if (mounted.status !== 0) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`mount tmpfs failed: ${mounted.stderr}`)
  }
  cleanup.add(async () => {
    spawnSync('umount', [dir])
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}

/**
 * Fills the disk under `dir` with one real file until the kernel says ENOSPC,
 * then gives back `leaveBytes` of it. Returns the file, to free with freeDisk.
 */
export async function fillDisk (dir: string, leaveBytes = 0): Promise<string> {
  const path = join(dir, 'filler')
  const file = await open(path, 'w')
  const chunk = Buffer.alloc(64 * 1024, 0xa5)
  let size = 0
  try {
    while (true) size += (await file.write(chunk)).bytesWritten
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    await file.close()
  }
  if (leaveBytes > 0) await truncate(path, Math.max(0, size - leaveBytes))
  return path
}

export async function freeDisk (filler: string): Promise<void> {
  await rm(filler, { force: true })
}
