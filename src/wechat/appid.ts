/** What WeChat's appids look like: "wx" and 16 lower-case hex digits. */
export const APPID_PATTERN = /^wx[0-9a-f]{16}$/;
