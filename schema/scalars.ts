import { GraphQLError } from 'graphql';
import { builder } from './builder.js';
import { parseInstant } from '../src/util/instant.js';

/** Instants are epoch milliseconds inside the gateway and ISO 8601 strings on the wire. */
export const DateTime = builder.scalarType('DateTime', {
  description: 'An instant, as an RFC 3339 string with a zone (e.g. 2026-11-22T08:00:00.000Z); the gateway answers in UTC with milliseconds.',
  specifiedByURL: 'https://scalars.graphql.org/andimarek/date-time',
  serialize: (ms) => new Date(ms as number).toISOString(),
  // A GraphQLError, so graphql-js reports the message as it is rather than behind "Expected type".
  parseValue: (value) => {
    try {
      return parseInstant(value);
    } catch (e) {
      throw new GraphQLError((e as Error).message);
    }
  },
});
