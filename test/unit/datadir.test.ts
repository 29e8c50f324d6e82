import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  DaemonLock,
  dataDirPaths,
  loadOrCreateApiToken,
  loadOrCreateIdentity,
  prepareDataDir,
  removeApiUrl,
  tokensMatch,
  writeApiUrl
} from '../../src/datadir.js'
import { OctetError } from '../../src/errors.js'
import { Cleanup, ROOT } from '../helpers/daemon.js'

const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

let dataDir: string
beforeEach(async () => { dataDir = await cleanup.tempDir('octet-datadir-') })

async function modeOf (path: string): Promise<number> {
  return (await stat(path)).mode & 0o777
}

async function rejectsWithCode (promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(OctetError)
  return (err as OctetError).code
}

describe('identity key', () => {
  it('is created with mode 0600 and reused: the PeerId is stable', async () => {
    const first = await loadOrCreateIdentity(dataDir)
    const path = dataDirPaths(dataDir).identity
    expect(await modeOf(path)).toBe(0o600)
    const second = await loadOrCreateIdentity(dataDir)
    expect(peerIdFromPrivateKey(second).toString()).toBe(peerIdFromPrivateKey(first).toString())
    expect(first.type).toBe('Ed25519')
  })

  it('tightens a loosened mode (0644) back to 0600 and reports it', async () => {
    const first = await loadOrCreateIdentity(dataDir)
    const path = dataDirPaths(dataDir).identity
    await chmod(path, 0o644)
    const loosened: Array<[string, number]> = []
    const second = await loadOrCreateIdentity(dataDir, { onLoosened: (p, mode) => loosened.push([p, mode]) })
    expect(await modeOf(path)).toBe(0o600)
    expect(loosened).toEqual([[path, 0o644]])
    expect(peerIdFromPrivateKey(second).equals(peerIdFromPrivateKey(first))).toBe(true)
  })

  it('refuses a corrupt key file instead of silently making a new identity', async () => {
    await writeFile(dataDirPaths(dataDir).identity, 'not a key', { mode: 0o600 })
    expect(await rejectsWithCode(loadOrCreateIdentity(dataDir))).toBe('INVALID_CONFIG')
    expect(await readFile(dataDirPaths(dataDir).identity, 'utf8')).toBe('not a key')
  })
})

describe('API token', () => {
  it('is created with mode 0600 and reused', async () => {
    const first = await loadOrCreateApiToken(dataDir)
    const path = dataDirPaths(dataDir).token
    expect(await modeOf(path)).toBe(0o600)
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/) // 32 random bytes, base64url
    expect(await loadOrCreateApiToken(dataDir)).toBe(first)
    expect((await readFile(path, 'utf8')).trim()).toBe(first)
  })

  it('differs between data directories', async () => {
    const other = await cleanup.tempDir('octet-datadir-')
    expect(await loadOrCreateApiToken(dataDir)).not.toBe(await loadOrCreateApiToken(other))
  })

  it('tightens a loosened mode (0644) back to 0600', async () => {
    const token = await loadOrCreateApiToken(dataDir)
    const path = dataDirPaths(dataDir).token
    await chmod(path, 0o644)
    let reported = 0
    expect(await loadOrCreateApiToken(dataDir, { onLoosened: () => { reported++ } })).toBe(token)
    expect(await modeOf(path)).toBe(0o600)
    expect(reported).toBe(1)
  })

  it('refuses a token file too short to be safe', async () => {
    await writeFile(dataDirPaths(dataDir).token, 'short\n', { mode: 0o600 })
    expect(await rejectsWithCode(loadOrCreateApiToken(dataDir))).toBe('INVALID_CONFIG')
  })

  it('compares tokens exactly', () => {
    expect(tokensMatch('abcdef', 'abcdef')).toBe(true)
    expect(tokensMatch('abcdef', 'abcdeg')).toBe(false)
    expect(tokensMatch('abcdef', 'abcde')).toBe(false)
    expect(tokensMatch('abcdef', '')).toBe(false)
  })
})

describe('data directory', () => {
  it('is created with mode 0700', async () => {
    const dir = join(dataDir, 'nested', 'data')
    await prepareDataDir(dir)
    expect(await modeOf(dir)).toBe(0o700)
  })

  it('is refused with DATA_DIR_UNWRITABLE when its parent is a file', async () => {
    const file = join(dataDir, 'file')
    await writeFile(file, '')
    expect(await rejectsWithCode(prepareDataDir(join(file, 'data')))).toBe('DATA_DIR_UNWRITABLE')
  })

  it('api.url is written and removed', async () => {
    await writeApiUrl(dataDir, 'http://127.0.0.1:1234')
    expect(await readFile(dataDirPaths(dataDir).apiUrl, 'utf8')).toBe('http://127.0.0.1:1234\n')
    await removeApiUrl(dataDir)
    expect(existsSync(dataDirPaths(dataDir).apiUrl)).toBe(false)
    await removeApiUrl(dataDir) // idempotent
  })
})

describe('DaemonLock', () => {
  /** Another process that takes the lock through the built module, as a second daemon would. */
  async function holdLockInChild (): Promise<{ pid: number, kill: () => Promise<void> }> {
    const datadirModule = join(ROOT, 'dist', 'datadir.js')
    expect(existsSync(datadirModule), 'dist/datadir.js is missing: run `npm run build`').toBe(true)
    const script = `
      const { DaemonLock } = await import(${JSON.stringify(datadirModule)})
      await DaemonLock.acquire(${JSON.stringify(dataDir)})
      process.stdout.write('held\\n')
      setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const kill = async (): Promise<void> => {
      if (child.exitCode != null || child.signalCode != null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
    cleanup.add(kill)
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => { if (out.includes('held')) resolve() })
      child.once('exit', code => { reject(new Error(`lock holder exited with ${code}`)) })
    })
    return { pid: child.pid ?? -1, kill }
  }

  it('holds the pid of its process, and release removes it', async () => {
    const lock = await DaemonLock.acquire(dataDir)
    const path = dataDirPaths(dataDir).lock
    expect(await readFile(path, 'utf8')).toBe(`${process.pid}\n`)
    expect(await modeOf(path)).toBe(0o600)
    await lock.release()
    expect(existsSync(path)).toBe(false)
  })

  it('refuses a second acquire while another live process holds it: DAEMON_ALREADY_RUNNING naming the pid', async () => {
    const holder = await holdLockInChild()
    const err = await DaemonLock.acquire(dataDir).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(OctetError)
    expect((err as OctetError).code).toBe('DAEMON_ALREADY_RUNNING')
    expect((err as OctetError).message).toContain(String(holder.pid))
    // the holder's lock is untouched
    expect(await readFile(dataDirPaths(dataDir).lock, 'utf8')).toBe(`${holder.pid}\n`)

    // once the holder dies without releasing (SIGKILL), its lock is stale and taken over
    await holder.kill()
    const lock = await DaemonLock.acquire(dataDir)
    expect(await readFile(dataDirPaths(dataDir).lock, 'utf8')).toBe(`${process.pid}\n`)
    await lock.release()
  })

  it('takes over a stale lock that holds the pid of a process that has exited', async () => {
    const dead = spawn('true', { stdio: 'ignore' })
    await once(dead, 'exit')
    expect(dead.pid).toBeGreaterThan(0)
    await writeFile(dataDirPaths(dataDir).lock, `${dead.pid}\n`)
    const lock = await DaemonLock.acquire(dataDir)
    expect(await readFile(dataDirPaths(dataDir).lock, 'utf8')).toBe(`${process.pid}\n`)
    await lock.release()
  })

  it('takes over a lock file with garbage in it', async () => {
    await writeFile(dataDirPaths(dataDir).lock, 'not a pid')
    const lock = await DaemonLock.acquire(dataDir)
    expect(await readFile(dataDirPaths(dataDir).lock, 'utf8')).toBe(`${process.pid}\n`)
    await lock.release()
  })

  it('release leaves a lock that another process has taken alone', async () => {
    const lock = await DaemonLock.acquire(dataDir)
    await writeFile(dataDirPaths(dataDir).lock, '1\n')
    await lock.release()
    expect(await readFile(dataDirPaths(dataDir).lock, 'utf8')).toBe('1\n')
  })
})
