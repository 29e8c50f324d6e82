import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Bytes of the files in directories (a LevelDB directory is flat: tables, logs, manifest),
 * walked at most once per `interval`: a scrape in between gets the last figures. A file that
 * goes while it is walked (a compaction) is left out.
 */
export class DirectorySizes {
  private last: { at: number, sizes: Record<string, number> } | undefined
  private walking: Promise<Record<string, number>> | undefined

  constructor (private readonly interval: number, private readonly now: () => number = Date.now) {}

  async read (directories: Record<string, string>): Promise<Record<string, number>> {
    if (this.last != null && this.now() - this.last.at < this.interval) return this.last.sizes
    this.walking ??= this.walk(directories).finally(() => { this.walking = undefined })
    return await this.walking
  }

  private async walk (directories: Record<string, string>): Promise<Record<string, number>> {
    const entries = await Promise.all(Object.entries(directories).map(async ([name, dir]) => [name, await directoryBytes(dir)] as const))
    const sizes = Object.fromEntries(entries)
    this.last = { at: this.now(), sizes }
    return sizes
  }
}

async function directoryBytes (dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [])
  const sizes = await Promise.all(names.map(async name => await stat(join(dir, name)).then(s => s.isFile() ? s.size : 0, () => 0)))
  return sizes.reduce((a, b) => a + b, 0)
}
