import { readdir } from 'node:fs/promises'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { ClassicLevel } from 'classic-level'
import { dataDirPaths, loadOrCreateIdentity, pathExists, type SecretOptions } from '../datadir.js'
import { OctetError, errorMessage, isOctetError, systemErrorCode, type ErrorCode } from '../errors.js'
import type { Logger } from '../logger.js'
import { STORE_VERSION, Store, databasePaths } from './database.js'
import { levelDamage, translateOpenError } from './level-damage.js'
import { MARKER_FORMAT, readMarker, writeMarker, type MarkerFile, type StateMarker } from './marker.js'

/**
 * Damaged state is never silent. `<data-dir>/state.marker` says which identity
 * the state belongs to and how far it got; every start compares it, the
 * identity key and LevelDB's own view of its files before anything is served,
 * and refuses with one line that names the damage and `octet doctor`.
 *
 * What a crash may leave is not damage. LevelDB writes each batch to its
 * write-ahead log before the batch resolves, so a process that is killed
 * loses nothing that was committed (the operating system has the bytes) and
 * at most tears its last record, which LevelDB skips silently. The marker
 * records only checkpoints that were synced to disk before it was written
 * (Store.checkpoint), so it may lag behind the database, never run ahead of
 * it: a database whose checkpoint is below the marker's lost writes.
 */

/** How often a running daemon moves the marker up to what is on disk, when anything changed. */
export const CHECKPOINT_INTERVAL = 10_000

/** One thing wrong with the state; `code` says whether doctor --repair can help (STATE_DAMAGED) or not. */
export interface Finding {
  code: Extract<ErrorCode, 'STATE_DAMAGED' | 'STATE_MISMATCH'>
  message: string
}

/** What one look at a data directory found. */
export interface Examination {
  dataDir: string
  peerId?: string
  privateKey?: PrivateKey
  marker?: StateMarker
  findings: Finding[]
  /** open when it could be opened; the caller closes it */
  store?: Store
  /** the database's checkpoint */
  checkpoint?: number
  /** records per sublevel, when examined with `census` and readable */
  counts?: Record<string, number>
  /**
   * What LevelDB shows of damage in db/libp2p. Not findings: its peers and DHT records are
   * learnt again from the network, so a start repairs it with a warning instead of refusing
   * (a full disk tears its write-ahead log like any other, see store/space.ts).
   */
  libp2pProblems: string[]
}

/** Whether a directory exists and holds anything. */
async function hasFiles (dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false
    throw err
  }
}

/**
 * Whether nothing of a node is there yet, or only what a first start that was
 * cut short left (nothing was served from it: the marker is final before that).
 */
export async function isNew (dataDir: string, marker: MarkerFile | undefined): Promise<boolean> {
  if (marker != null) return 'initializing' in marker
  return !await hasFiles(databasePaths(dataDir).state) && !await pathExists(dataDirPaths(dataDir).identity)
}

/**
 * Looks at a data directory that is not new: identity.key, the marker, the
 * state database (opened without creating it, LevelDB's view of its files,
 * the checkpoint) and libp2p's datastore. `census` also reads every record.
 * Never repairs and never throws for damage: it is reported in `findings`.
 */
export async function examine (dataDir: string, options: SecretOptions & { census?: boolean } = {}): Promise<Examination> {
  const found: Examination = { dataDir, findings: [], libp2pProblems: [] }
  const damaged = (message: string): void => {
    if (!found.findings.some(f => f.message === message)) found.findings.push({ code: 'STATE_DAMAGED', message })
  }
  const mismatch = (message: string): void => { found.findings.push({ code: 'STATE_MISMATCH', message }) }

  let marker: MarkerFile | undefined
  try {
    marker = await readMarker(dataDir)
  } catch (err) {
    if (!isOctetError(err, 'STATE_DAMAGED')) throw err
    damaged(err.message)
  }
  if (marker != null && !('initializing' in marker)) {
    found.marker = marker
    for (const message of marker.damage ?? []) damaged(message)
  }
  const belongsTo = found.marker?.peerId

  try {
    found.privateKey = await loadOrCreateIdentity(dataDir, { ...options, create: false })
    found.peerId = peerIdFromPrivateKey(found.privateKey).toString()
  } catch (err) {
    if (!isOctetError(err, 'STATE_MISMATCH')) throw err
    mismatch(`identity.key is missing, and the state belongs to ${belongsTo ?? 'an existing node'}`)
  }
  if (found.peerId != null && belongsTo != null && belongsTo !== found.peerId) {
    mismatch(`identity.key is ${found.peerId}, but the state belongs to ${belongsTo}`)
  }

  const paths = databasePaths(dataDir)
  if (!await hasFiles(paths.state)) {
    damaged(`the state (${paths.state}) is missing or empty next to the identity of ${found.peerId ?? belongsTo ?? 'an existing node'}: it was not created fresh`)
  } else {
    try {
      found.store = await Store.open(dataDir, { create: false })
      const store = found.store
      const owner = await store.owner()
      if (owner != null && found.peerId != null && owner !== found.peerId && belongsTo !== owner) {
        mismatch(`identity.key is ${found.peerId}, but the state belongs to ${owner}`)
      }
      found.checkpoint = await store.lastCheckpoint()
      if (found.marker != null && found.checkpoint < found.marker.checkpoint) {
        damaged(`the state went back from checkpoint ${found.marker.checkpoint} to ${found.checkpoint}: writes were lost (a damaged write-ahead log, or an older copy of ${paths.state})`)
      }
      if (options.census === true) found.counts = await store.census()
    } catch (err) {
      if (isOctetError(err) && err.code !== 'STATE_DAMAGED') {
        await found.store?.close()
        throw err
      }
      // LevelDB reports what it could not read as it reads (LEVEL_CORRUPTION and the like)
      damaged(isOctetError(err) ? err.message : `reading ${paths.state} failed: ${errorMessage(err)}`)
    }
  }

  // libp2p's datastore is peers and DHT records, all learnt again from the network: its damage
  // is repaired rather than refused (libp2pProblems), but never quietly started over by LevelDB
  if (await hasFiles(paths.libp2p)) {
    const datastore = new ClassicLevel(paths.libp2p, { createIfMissing: false })
    try {
      await datastore.open()
      found.libp2pProblems.push(...await levelDamage(datastore, paths.libp2p))
    } catch (err) {
      const translated = translateOpenError(err, paths.libp2p)
      if (!isOctetError(translated, 'STATE_DAMAGED')) throw translated
      found.libp2pProblems.push(translated.message)
    } finally {
      await datastore.close()
    }
  }
  return found
}

/** The one line a refused start or doctor gives: what is wrong and the way out. */
export function stateError (dataDir: string, findings: Finding[]): OctetError {
  const what = findings.map(f => f.message).join('; ')
  const dirFlag = `--data-dir ${dataDir}`
  if (findings.some(f => f.code === 'STATE_MISMATCH')) {
    return new OctetError('STATE_MISMATCH',
      `identity and state of ${dataDir} do not belong together: ${what}; restore the identity.key the state belongs to, or move db/ and state.marker away to start as a new node (\`octet doctor ${dirFlag}\` shows more)`)
  }
  return new OctetError('STATE_DAMAGED',
    `the state of ${dataDir} is damaged: ${what}; run \`octet doctor ${dirFlag}\` to see what is affected, \`octet doctor --repair ${dirFlag}\` to recover what can be recovered`)
}

/** A start that refuses remembers why (see StateMarker.damage). */
async function recordDamage (dataDir: string, marker: StateMarker | undefined, findings: Finding[]): Promise<void> {
  const damage = findings.filter(f => f.code === 'STATE_DAMAGED').map(f => f.message)
  if (marker == null || damage.length === 0) return
  const known = new Set(marker.damage ?? [])
  if (damage.every(message => known.has(message))) return
  await writeMarker(dataDir, { ...marker, damage: [...known, ...damage.filter(message => !known.has(message))] })
}

export interface CheckedStateOptions extends SecretOptions {
  log: Logger
}

/**
 * The identity and the state of a data directory, checked to belong together
 * and to be whole: what the daemon runs on. While open it moves the marker up
 * every CHECKPOINT_INTERVAL; close() records a clean stop with the counts.
 */
export class CheckedState {
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<void> = Promise.resolve()

  private constructor (
    readonly dataDir: string,
    readonly privateKey: PrivateKey,
    readonly store: Store,
    private marker: StateMarker,
    private readonly log: Logger
  ) {}

  /** Opens the state, or throws STATE_DAMAGED / STATE_MISMATCH (one line, with the way out). */
  static async open (dataDir: string, options: CheckedStateOptions): Promise<CheckedState> {
    const { log } = options
    let marker: MarkerFile | undefined
    try {
      marker = await readMarker(dataDir)
    } catch (err) {
      if (!isOctetError(err, 'STATE_DAMAGED')) throw err
      throw stateError(dataDir, [{ code: 'STATE_DAMAGED', message: err.message }])
    }
    if (await isNew(dataDir, marker)) return await CheckedState.create(dataDir, options)

    const found = await examine(dataDir, options)
    const { store, privateKey, peerId } = found
    if (found.findings.length > 0 || store == null || privateKey == null || peerId == null) {
      await store?.close()
      await recordDamage(dataDir, found.marker, found.findings)
      throw stateError(dataDir, found.findings)
    }
    if (found.libp2pProblems.length > 0) {
      await ClassicLevel.repair(databasePaths(dataDir).libp2p)
      log.warn({ problems: found.libp2pProblems }, "libp2p's datastore (known peers and DHT records, learnt again from the network) was damaged; repaired it")
    }
    try {
      if (found.marker == null) {
        // a data directory from before markers, or one whose marker was deleted: what can
        // be checked without it was, and from now on it is checked like any other
        log.warn({ dataDir, peerId }, 'the state had no state.marker; checked what could be checked without it and wrote one')
      }
      if (await store.owner() == null) await store.setOwner(peerId)
      const base = found.marker ?? { format: MARKER_FORMAT, peerId, storeVersion: STORE_VERSION, counts: await store.census(), countedAt: Date.now() }
      return await CheckedState.begin(dataDir, privateKey, store, base, log)
    } catch (err) {
      await store.close()
      throw err
    }
  }

  /** A new data directory: the marker first, then the identity, then the state, then the marker again. */
  private static async create (dataDir: string, options: CheckedStateOptions): Promise<CheckedState> {
    await writeMarker(dataDir, { format: MARKER_FORMAT, initializing: true, writtenAt: Date.now() })
    const privateKey = await loadOrCreateIdentity(dataDir, options)
    const peerId = peerIdFromPrivateKey(privateKey).toString()
    const store = await Store.open(dataDir, { create: true })
    try {
      await store.setOwner(peerId)
      const base = { format: MARKER_FORMAT as typeof MARKER_FORMAT, peerId, storeVersion: STORE_VERSION, counts: await store.census(), countedAt: Date.now() }
      return await CheckedState.begin(dataDir, privateKey, store, base, options.log)
    } catch (err) {
      await store.close()
      throw err
    }
  }

  /** A state just opened or created: its first synced checkpoint and marker, then one every CHECKPOINT_INTERVAL. */
  private static async begin (dataDir: string, privateKey: PrivateKey, store: Store,
    base: Omit<StateMarker, 'checkpoint' | 'writtenAt' | 'cleanStop'>, log: Logger): Promise<CheckedState> {
    const state = new CheckedState(dataDir, privateKey, store, { ...base, checkpoint: 0, writtenAt: 0, cleanStop: false }, log)
    await state.advance({ cleanStop: false })
    state.startTimer()
    return state
  }

  /** A synced checkpoint, then the marker that records it (never the other way round). */
  private async advance (change: { cleanStop: boolean, counts?: Record<string, number> }): Promise<void> {
    const checkpoint = await this.store.checkpoint()
    const now = Date.now()
    this.marker = {
      ...this.marker,
      checkpoint,
      writtenAt: now,
      cleanStop: change.cleanStop,
      ...(change.counts != null ? { counts: change.counts, countedAt: now } : {})
    }
    await writeMarker(this.dataDir, this.marker)
  }

  private startTimer (): void {
    this.timer = setInterval(() => {
      if (!this.store.changedSinceCheckpoint) return
      this.ticking = this.advance({ cleanStop: false }).catch(err => {
        // the marker lags a little more; the next tick tries again
        this.log.warn({ err }, 'could not write a state checkpoint')
      })
    }, CHECKPOINT_INTERVAL)
    this.timer.unref()
  }

  /** Records a clean stop (a last checkpoint and the counts), then closes the database. */
  async close (): Promise<void> {
    clearInterval(this.timer)
    await this.ticking
    try {
      await this.advance({ cleanStop: true, counts: await this.store.census() })
    } finally {
      await this.store.close()
    }
  }
}

/** What `octet doctor --repair` did. */
export interface RepairOutcome {
  examination: Examination
  repaired: boolean
  /** records per sublevel after the repair */
  after: Record<string, number>
}

/**
 * LevelDB's repair (ClassicLevel.repair: every table and log that can be read
 * is kept, the manifest is rebuilt) on whatever is damaged, then a new marker
 * for what is left. A state that belongs to another identity is not touched:
 * no repair makes it ours. A state that is gone is made anew, empty.
 */
export async function repairState (dataDir: string, options: SecretOptions = {}): Promise<RepairOutcome> {
  const examination = await examine(dataDir, { ...options, census: true })
  await examination.store?.close()
  delete examination.store
  const { findings, privateKey, peerId } = examination
  if (findings.some(f => f.code === 'STATE_MISMATCH') || privateKey == null || peerId == null) {
    throw stateError(dataDir, findings)
  }
  const paths = databasePaths(dataDir)
  if (findings.length === 0 && examination.libp2pProblems.length === 0) return { examination, repaired: false, after: examination.counts ?? {} }

  if (findings.length > 0 && await hasFiles(paths.state)) await ClassicLevel.repair(paths.state)
  if (examination.libp2pProblems.length > 0) await ClassicLevel.repair(paths.libp2p)
  // a repair may lose the version stamp with the rest of a table: made again like a new state's
  const store = await Store.open(dataDir, { create: true })
  try {
    const left = await store.structuralDamage()
    if (left.length > 0) throw new OctetError('STATE_DAMAGED', `LevelDB's repair left ${paths.state} damaged: ${left.join('; ')}; restore it from a backup`)
    const after = await store.census()
    await store.setOwner(peerId)
    const checkpoint = await store.checkpoint()
    const now = Date.now()
    await writeMarker(dataDir, { format: MARKER_FORMAT, peerId, storeVersion: STORE_VERSION, checkpoint, counts: after, countedAt: now, writtenAt: now, cleanStop: true })
    return { examination, repaired: true, after }
  } catch (err) {
    throw isOctetError(err) ? err : new OctetError('STATE_DAMAGED', `repairing ${paths.state} failed: ${errorMessage(err)}`, { cause: err })
  } finally {
    await store.close()
  }
}
