import { GraphQLError } from 'graphql';
import { builder } from './builder.js';

/** Instants are epoch milliseconds inside the gateway and ISO 8601 strings on the wire. */
export const DateTime = builder.scalarType('DateTime', {
  description: 'An instant, as an ISO 8601 string (e.g. 2026-11-22T08:00:00.000Z).',
  serialize: (ms) => new Date(ms as number).toISOString(),
  parseValue: (value) => {
    if (typeof value !== 'string') throw new GraphQLError('DateTime must be an ISO 8601 string');
    const ms = Date.parse(value);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) throw new GraphQLError('DateTime must be an ISO 8601 date and time');
    return ms;
  },
});

