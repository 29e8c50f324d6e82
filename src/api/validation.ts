import { Ajv, type ValidateFunction } from 'ajv'
import type { FastifySchemaCompiler } from 'fastify'

/**
 * How requests are validated. Fastify's default Ajv converts types and drops
 * unknown fields: `{"text": 1}` became "1", `1e400` became "Infinity", and a
 * misspelt field vanished silently despite `additionalProperties: false`.
 * Here nothing is changed behind the client's back:
 * - no type is converted in a body: JSON values already have their types;
 * - querystrings, path parameters and headers are text by nature: there a
 *   plain decimal numeral ("50") becomes the number a schema asks for, and
 *   nothing else does ("1e400", "Infinity", "0x10" stay text and are refused;
 *   Ajv's own coercion turns the first two into Infinity and lets it through);
 * - an unknown field is refused (400), never removed;
 * - `strictNumbers`: NaN and ±Infinity are no numbers.
 */
const ajv = new Ajv({
  coerceTypes: false,
  removeAdditional: false,
  useDefaults: true,
  strictNumbers: true,
  // one error is enough to answer, and collecting all of them costs work an attacker chooses
  allErrors: false,
  // our schemas carry documentation keywords (summary, tags …) for the OpenAPI document
  strictSchema: false
})

const NUMERALS = {
  integer: /^-?\d{1,15}$/,
  number: /^-?\d{1,15}(?:\.\d{1,15})?$/
} as const

interface FlatSchema {
  properties?: Record<string, { type?: unknown }>
}

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const validate = ajv.compile(schema as object)
  if (httpPart === 'body') return validate
  // the numeric properties of a flat object of strings (querystring, params, headers)
  const numeric = Object.entries((schema as FlatSchema).properties ?? {})
    .flatMap(([name, property]) => property.type === 'integer' || property.type === 'number' ? [[name, NUMERALS[property.type]] as const] : [])
  if (numeric.length === 0) return validate
  const fromText = Object.assign((data: unknown): boolean => {
    if (typeof data === 'object' && data !== null) {
      const fields = data as Record<string, unknown>
      for (const [name, numeral] of numeric) {
        const value = fields[name]
        if (typeof value === 'string' && numeral.test(value)) fields[name] = Number(value)
      }
    }
    const valid = validate(data) as boolean
    fromText.errors = validate.errors
    return valid
  }, { errors: null as ValidateFunction['errors'] })
  return fromText
}
