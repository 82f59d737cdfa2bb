/** The largest 32-bit signed integer: GraphQL's Int, and an integer column on both databases. */
export const INT32_MAX = 2_147_483_647;
