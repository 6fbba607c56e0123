/**
 * How many parallel SFTP channels ("lanes") one upload uses when --connections is not given.
 *
 * One SFTP channel moves at most its flow-control window per round trip: OpenSSH grants 2 MiB per session channel,
 * so one channel tops out near 2 MiB / RTT (about 13 MB/s at 150 ms, less in practice), whatever the line could
 * carry. On a LAN or loopback the round trip is well under a millisecond and one channel is CPU-bound: more
 * channels only cost CPU. So: one lane below LAN_RTT_MS; otherwise enough lanes that their windows cover
 * TARGET_BYTES_PER_SEC at the measured round-trip time, capped at MAX_AUTO_LANES, and never more lanes than
 * there are MIN_SEGMENT_BYTES pieces of the file to send. The server may still refuse some channels
 * (MaxSessions): the upload then uses the ones it got.
 */

/** Below this round-trip time the link is local: one channel. */
export const LAN_RTT_MS = 15;
/** OpenSSH's window per session channel (CHAN_SES_WINDOW_DEFAULT). */
export const CHANNEL_WINDOW_BYTES = 2 * 1024 * 1024;
/** The throughput the channels' windows should be able to carry together (a fast home or office uplink). */
export const TARGET_BYTES_PER_SEC = 80e6;
/** Most channels chosen automatically (OpenSSH's default MaxSessions is 10). */
export const MAX_AUTO_LANES = 8;
/**
 * A round trip this long at connect is a long-haul link for sure (a busy machine can slow a loopback answer to
 * tens of milliseconds): the extra channels are opened at once, before the first requests confirm the figure.
 */
export const EARLY_LANES_RTT_MS = 50;
/** Smallest piece of a file worth its own channel. */
export const MIN_SEGMENT_BYTES = 8 * 1024 * 1024;

/** Lanes for `bytes` still to send over a link with this round-trip time (milliseconds). */
export function autoLanes(rttMs: number, bytes: number): number {
  if (!(rttMs >= LAN_RTT_MS)) return 1;
  const forWindow = Math.ceil((TARGET_BYTES_PER_SEC * (rttMs / 1000)) / CHANNEL_WINDOW_BYTES);
  const forSize = Math.max(1, Math.floor(bytes / MIN_SEGMENT_BYTES));
  return Math.max(1, Math.min(MAX_AUTO_LANES, forWindow, forSize));
}

/**
 * Bytes in flight across all lanes of one upload. One lane keeps its full window (32 x 128 KiB); with more lanes
 * each gets its share, so memory stays bounded however many channels are used. A lane needs only its SSH window
 * (2 MiB at OpenSSH) in flight to move at full speed: what is beyond it waits in ssh2's buffers.
 */
export const MAX_BYTES_IN_FLIGHT = 12 * 1024 * 1024;

/** Requests in flight per lane when `lanes` lanes share MAX_BYTES_IN_FLIGHT (at least 4 each). */
export function laneWindow(window: { requests: number; chunkSize: number }, lanes: number): { requests: number; chunkSize: number } {
  const share = Math.floor(MAX_BYTES_IN_FLIGHT / (Math.max(1, lanes) * window.chunkSize));
  return { requests: Math.max(4, Math.min(window.requests, share)), chunkSize: window.chunkSize };
}

/**
 * The ramp: while the data of an automatically sized upload is sent over several lanes, more lanes are opened
 * (one at a time) as long as the link shows it can carry them: the lanes move at least RAMP_WINDOW_SHARE of what
 * their windows allow per round trip (they are window-bound, not line- or CPU-bound), and each added lane raised
 * the throughput by at least RAMP_MIN_GAIN of one lane's share. Never more than RAMP_MAX_LANES: beyond
 * MAX_BYTES_IN_FLIGHT / CHANNEL_WINDOW_BYTES lanes the bytes in flight do not grow, so neither does the throughput.
 */
export const RAMP_MAX_LANES = Math.min(MAX_AUTO_LANES, Math.ceil(MAX_BYTES_IN_FLIGHT / CHANNEL_WINDOW_BYTES));
export const RAMP_WINDOW_SHARE = 0.5;
export const RAMP_MIN_GAIN = 0.5;

/** Whether `lanes` lanes moving `bytesPerSec` together at this round-trip time are held back by their windows. */
export function windowBound(bytesPerSec: number, lanes: number, rttMs: number, laneInFlightBytes: number): boolean {
  if (!(rttMs > 0) || lanes < 1) return false;
  const windowRate = (lanes * Math.min(CHANNEL_WINDOW_BYTES, laneInFlightBytes)) / (rttMs / 1000);
  return bytesPerSec >= RAMP_WINDOW_SHARE * windowRate;
}

/** Whether the throughput after going from `lanes - 1` to `lanes` lanes rose enough to try one more. */
export function stillRising(before: number, after: number, lanes: number): boolean {
  return lanes <= 1 || after >= before * (1 + RAMP_MIN_GAIN / (lanes - 1));
}

/** Where a new lane splits the open segment [sent, end): the back half, when that half (at least 2 windows) is worth a lane. */
export function rampSplit(sent: number, end: number): number | undefined {
  const mid = sent + Math.ceil((end - sent) / 2);
  return end - mid >= MIN_SEGMENT_BYTES / 2 ? mid : undefined;
}
