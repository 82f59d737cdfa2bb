/** A day in milliseconds: Asia/Shanghai, whose days the billing rules count, has no daylight saving. */
export const DAY_MS = 86_400_000;
