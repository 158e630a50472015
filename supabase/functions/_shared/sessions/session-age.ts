// The platform has been seen refusing a brand-new apiKey for a while. Both functions must tell
// that activation delay from a dead key the same way: by the stored session's age.

/** True while a session created at `createdAt` (ms epoch, null if unknown) is in its grace period. */
export function isYoungSession(
  createdAt: number | null | undefined,
  now: number,
  graceMs: number,
): boolean {
  return typeof createdAt === "number" && now - createdAt < graceMs;
}
