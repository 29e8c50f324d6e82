import { describe, expect, it } from 'vitest'
import { LOGIN_CODE_TTL, SESSION_TTL, UiSessions } from '../../../src/api/ui-session.js'

describe('UiSessions', () => {
  const token = 'a-token-0123456789abcdefghijklmnopqrstuvwxyz'

  it('codes work once and expire; sessions expire and are bound to the token', () => {
    let now = 1_700_000_000_000
    const sessions = new UiSessions(token, () => now)
    const { code } = sessions.issueCode()
    const session = sessions.exchange(code)
    expect(session).toBeDefined()
    expect(sessions.exchange(code)).toBeUndefined()
    expect(sessions.valid(session?.cookie ?? '')).toBe(true)
    // another daemon (another token) does not take it
    expect(new UiSessions(`${token}x`, () => now).valid(session?.cookie ?? '')).toBe(false)

    const late = sessions.issueCode()
    now += LOGIN_CODE_TTL
    expect(sessions.exchange(late.code)).toBeUndefined()

    now += SESSION_TTL
    expect(sessions.valid(session?.cookie ?? '')).toBe(false)
  })

  it('refuses malformed and tampered cookies', () => {
    const sessions = new UiSessions(token)
    const cookie = sessions.exchange(sessions.issueCode().code)?.cookie ?? ''
    const [expiry, nonce, mac] = cookie.split('.')
    for (const bad of ['', 'x', `${expiry}.${nonce}`, `${Number(expiry) + 1}.${nonce}.${mac}`, `${expiry}.${nonce}.${mac?.slice(1)}A`]) {
      expect(sessions.valid(bad)).toBe(false)
    }
  })
})
