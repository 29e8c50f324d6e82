// One setting's value, from a flag, an environment variable or config.json, checked and
// normalised; each error says which setting and what would be accepted (INVALID_CONFIG).
import { isIP } from 'node:net'
import { OctetError } from './errors.js'

export function parseChoice<T extends string> (name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value.trim())) return value.trim() as T
  throw new OctetError('INVALID_CONFIG', `${name} must be one of ${choices.join(', ')}, not ${JSON.stringify(value)}`)
}

export function nonEmpty (value: string | undefined): string | undefined {
  return value == null || value.trim() === '' ? undefined : value
}

export function stringSetting (name: string, value: unknown): string | undefined {
  if (value == null) return undefined
  if (typeof value !== 'string' || value.trim() === '') {
    throw new OctetError('INVALID_CONFIG', `${name} must be a non-empty string`)
  }
  return value
}

export function listSetting (name: string, value: unknown): string[] {
  const items = typeof value === 'string' ? value.split(',') : value
  if (!Array.isArray(items) || !items.every(item => typeof item === 'string')) {
    throw new OctetError('INVALID_CONFIG', `${name} must be a list of strings (or a comma-separated string)`)
  }
  return items.map(item => item.trim()).filter(item => item !== '')
}

/** Names as a Host header carries them, without port: `bridge.example`, `192.0.2.7`, `::1` or `[::1]`. */
export function parseHostList (value: unknown): string[] {
  return listSetting('api allowed hosts', value).map(text => {
    const host = text.toLowerCase().replace(/^\[(.*)\]$/, '$1')
    if (isIP(host) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/.test(host)) {
      throw new OctetError('INVALID_CONFIG', `api allowed host "${text}" is not a host name or IP address (no scheme, no port), e.g. octet.example or 192.0.2.7`)
    }
    return host
  })
}

export function parseBoolean (name: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value
  if (typeof value === 'string') {
    const lower = value.trim().toLowerCase()
    if (['true', '1', 'yes', 'on'].includes(lower)) return true
    if (['false', '0', 'no', 'off'].includes(lower)) return false
  }
  throw new OctetError('INVALID_CONFIG', `${name} must be true or false, not ${JSON.stringify(value)}`)
}

export function parseInteger (name: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new OctetError('INVALID_CONFIG', `${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`)
  }
  return n
}
