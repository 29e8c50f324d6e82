import { randomBytes, timingSafeEqual } from 'node:crypto'
import { chmod, mkdir, open, readFile, readdir, rm, stat, writeFile, access, constants as fsConstants } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { OctetError, errorMessage, systemErrorCode } from './errors.js'

/** The files of a data directory (DESIGN.md, "Data directory and daemon interface"). */
export function dataDirPaths (dataDir: string): { identity: string, token: string, apiUrl: string, apiSocket: string, lock: string, db: string, marker: string } {
  return {
    identity: join(dataDir, 'identity.key'),
    // which identity the state belongs to and how far it got (src/store/integrity.ts)
    marker: join(dataDir, 'state.marker'),
    token: join(dataDir, 'api.token'),
    apiUrl: join(dataDir, 'api.url'),
    // the same API on a Unix socket (0600): reachable from the host when the daemon runs in
    // a network namespace of its own, whose 127.0.0.1 is not the host's
    apiSocket: join(dataDir, 'api.sock'),
    lock: join(dataDir, 'daemon.lock'),
    db: join(dataDir, 'db')
  }
}

const SECRET_MODE = 0o600
const PRIVATE_DIR_MODE = 0o700

/**
 * Creates the data directory (0700) and checks that this process may write in
 * it. An existing one is tightened (see tightenDataDir); `onTightened` hears
 * what had been open to others.
 */
export async function prepareDataDir (dataDir: string, onTightened: (paths: string[]) => void = () => {}): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE })
    await access(dataDir, fsConstants.W_OK | fsConstants.X_OK)
    // access() trusts permission bits; a probe write also catches read-only mounts
    const probe = join(dataDir, `.write-test-${process.pid}`)
    await writeFile(probe, '')
    await rm(probe)
  } catch (err) {
    throw new OctetError('DATA_DIR_UNWRITABLE',
      `data directory ${dataDir} is not writable (${systemErrorCode(err) ?? errorMessage(err)}); fix its permissions or choose another with --data-dir`, { cause: err })
  }
  const tightened = await tightenDataDir(dataDir)
  if (tightened.length > 0) onTightened(tightened)
}

/**
 * The data directory and `db/` hold message plaintext and the Signal identity
 * key: directories 0700, the files of the databases 0600. Returns what had to
 * be tightened. Files LevelDB creates later follow the daemon's umask (0077,
 * set by `octet daemon`).
 */
export async function tightenDataDir (dataDir: string): Promise<string[]> {
  const tightened: string[] = []
  // the owner's bits stay as they are (0700 for directories, 0600 for files as created)
  const tighten = async (path: string): Promise<void> => {
    const current = (await stat(path)).mode & 0o777
    if ((current & 0o077) === 0) return
    await chmod(path, current & 0o700)
    tightened.push(path)
  }
  const walk = async (dir: string): Promise<void> => {
    await tighten(dir)
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await walk(path)
      else if (entry.isFile()) await tighten(path)
    }
  }
  await tighten(dataDir)
  const { db, marker } = dataDirPaths(dataDir)
  if (await pathExists(db)) await walk(db)
  if (await pathExists(marker)) await tighten(marker)
  return tightened
}

/** Whether `path` exists; errors other than ENOENT (permissions, I/O) are thrown, not taken for "no". */
export async function pathExists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false
    throw err
  }
}

/**
 * Writes a secret that must never be readable by others: created with mode
 * 0600 in one step, so there is no moment at which it is world-readable.
 */
async function writeSecret (path: string, data: Uint8Array | string): Promise<void> {
  await writeFile(path, data, { mode: SECRET_MODE, flag: 'wx' })
}

/** Tightens a secret file that someone loosened; the daemon keeps working. */
async function ensureSecretMode (path: string, onLoosened: (path: string, mode: number) => void): Promise<void> {
  const mode = (await stat(path)).mode & 0o777
  if ((mode & 0o077) !== 0) {
    onLoosened(path, mode)
    await chmod(path, SECRET_MODE)
  }
}

export interface SecretOptions {
  /** Called when an existing secret file was readable by group or others. */
  onLoosened?: (path: string, mode: number) => void
}

export interface IdentityOptions extends SecretOptions {
  /**
   * Whether a missing key may be made (default true). False once state exists
   * for some identity: a new key there would start a new node on old history.
   */
  create?: boolean
}

/** The node's libp2p Ed25519 key: created on first start, reused after, so the PeerId is stable. */
export async function loadOrCreateIdentity (dataDir: string, options: IdentityOptions = {}): Promise<PrivateKey> {
  const path = dataDirPaths(dataDir).identity
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw secretError(path, err)
    if (options.create === false) {
      throw new OctetError('STATE_MISMATCH', `identity key ${path} is missing`)
    }
    const key = await generateKeyPair('Ed25519')
    await writeSecret(path, privateKeyToProtobuf(key))
    return key
  }
  await ensureSecretMode(path, options.onLoosened ?? (() => {}))
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new OctetError('INVALID_CONFIG', `identity key ${path} is corrupt (${errorMessage(err)}); restore it from a backup, or move it away to start as a new node with a new PeerId`, { cause: err })
  }
}

/** The HTTP API bearer token: 32 random bytes, base64url, kept like a cookie file. */
export async function loadOrCreateApiToken (dataDir: string, options: SecretOptions = {}): Promise<string> {
  const path = dataDirPaths(dataDir).token
  try {
    const token = (await readFile(path, 'utf8')).trim()
    await ensureSecretMode(path, options.onLoosened ?? (() => {}))
    if (token.length < 32) {
      throw new OctetError('INVALID_CONFIG', `API token file ${path} is too short; delete it and restart to generate a new one`)
    }
    return token
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw secretError(path, err)
  }
  const token = randomBytes(32).toString('base64url')
  await writeSecret(path, token + '\n')
  return token
}

function secretError (path: string, err: unknown): Error {
  if (err instanceof OctetError) return err
  return new OctetError('DATA_DIR_UNWRITABLE', `cannot read ${path} (${systemErrorCode(err) ?? errorMessage(err)}); check the data directory's permissions`, { cause: err })
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from response times. */
export function tokensMatch (expected: string, given: string): boolean {
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * `daemon.lock`: holds the pid of the daemon using this directory. A lock
 * left by a process that no longer exists (a crash, SIGKILL) is taken over.
 */
export class DaemonLock {
  private constructor (private readonly path: string) {}

  static async acquire (dataDir: string): Promise<DaemonLock> {
    const path = dataDirPaths(dataDir).lock
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(path, 'wx', SECRET_MODE)
        await handle.writeFile(`${process.pid}\n`)
        await handle.close()
        return new DaemonLock(path)
      } catch (err) {
        if (systemErrorCode(err) !== 'EEXIST') throw secretError(path, err)
      }
      const holder = readLockHolder(path)
      if (holder != null && holder !== process.pid && isProcessAlive(holder)) {
        throw new OctetError('DAEMON_ALREADY_RUNNING',
          `another octet daemon (pid ${holder}) is already running on data directory ${dataDir}; stop it first, or start this one with another --data-dir`)
      }
      await rm(path, { force: true })
    }
    throw new OctetError('DAEMON_ALREADY_RUNNING', `could not take ${path}: another daemon is starting on ${dataDir}`)
  }

  async release (): Promise<void> {
    if (readLockHolder(this.path) === process.pid) await rm(this.path, { force: true })
  }
}

function readLockHolder (path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function isProcessAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    return systemErrorCode(err) === 'EPERM'
  }
}

/** Where a running daemon's API listens, for the CLI and scripts. */
export async function writeApiUrl (dataDir: string, url: string): Promise<void> {
  await writeFile(dataDirPaths(dataDir).apiUrl, url + '\n', { mode: 0o644 })
}

export async function removeApiUrl (dataDir: string): Promise<void> {
  await rm(dataDirPaths(dataDir).apiUrl, { force: true })
}
