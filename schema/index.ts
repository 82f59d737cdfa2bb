import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './exchange-errors.js';
import './phone.js';
import './session.js';

export type { GraphQLContext, Services } from './context.js';

let built: GraphQLSchema | undefined;

export function buildSchema(): GraphQLSchema {
  built ??= builder.toSchema();
  return built;
}

/** The committed SDL: sorted so that diffs show real changes only. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
