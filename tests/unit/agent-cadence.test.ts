import { describe, expect, it } from "vitest";
import { nextInstallLook, nextRegistrationLook } from "../../functions/core/agent/job.js";

const SECOND = 1000;
const CADENCE = { registrationPollMs: 5 * SECOND, overdueMs: 60 * SECOND };

describe("when a registering instance is next looked at", () => {
  it("keeps to the shared 5 s beat for the first three minutes", () => {
    expect(nextRegistrationLook(0, 12 * SECOND, CADENCE)).toBe(15 * SECOND);
    expect(nextRegistrationLook(0, 175 * SECOND, CADENCE)).toBe(180 * SECOND);
  });

  it("looks every beat, not every other, though each message is back a moment after its beat", () => {
    // Back 2.5 s after each beat (a whole-second delay, then the batching window): due a beat on.
    const looks = [];
    for (
      let now = 12.5 * SECOND;
      now < 60 * SECOND;
      now = nextRegistrationLook(0, now, CADENCE) + 2.5 * SECOND
    )
      looks.push(now / SECOND);
    expect(looks).toEqual([12.5, 17.5, 22.5, 27.5, 32.5, 37.5, 42.5, 47.5, 52.5, 57.5]);
  });

  it("stays close to the beat just after three minutes, so a late registration is found within seconds", () => {
    // 210 s: 30 s beyond the first three minutes, a sixth of it is the 5 s beat.
    expect(nextRegistrationLook(0, 210 * SECOND, CADENCE) - 210 * SECOND).toBeLessThanOrEqual(10 * SECOND);
    // 240 s: a sixth of 60 s beyond.
    expect(nextRegistrationLook(0, 240 * SECOND, CADENCE)).toBe(250 * SECOND);
  });

  it("then backs off to at most two minutes, on the beat", () => {
    expect(nextRegistrationLook(0, 600 * SECOND, CADENCE)).toBe(670 * SECOND);
    expect(nextRegistrationLook(0, 3600 * SECOND, CADENCE)).toBe(3720 * SECOND);
  });

  it("costs a few dozen looks for an instance that never registers in fifteen minutes", () => {
    let looks = 0;
    for (let now = 0; now < 900 * SECOND; now = nextRegistrationLook(0, now, CADENCE)) looks++;
    expect(looks).toBeGreaterThan(36);
    expect(looks).toBeLessThanOrEqual(70);
  });
});

describe("when an install whose end was not signalled is next looked up", () => {
  it("is looked up once overdue, once more an overdue interval later, then with doubling gaps", () => {
    const sentAt = 1_000 * SECOND;
    expect(nextInstallLook(sentAt, 0, undefined, CADENCE)).toBe(sentAt + 60 * SECOND);
    const gaps = [1, 2, 3, 4, 5, 6].map((lookups) => nextInstallLook(sentAt, lookups, 0, CADENCE) / SECOND);
    expect(gaps).toEqual([60, 120, 240, 480, 900, 900]);
  });

  it("takes a read after it was overdue, for another instance's event, as its overdue look", () => {
    const sentAt = 1_000 * SECOND;
    expect(nextInstallLook(sentAt, 0, sentAt + 55 * SECOND, CADENCE)).toBe(sentAt + 60 * SECOND);
    expect(nextInstallLook(sentAt, 0, sentAt + 70 * SECOND, CADENCE)).toBe(sentAt + 130 * SECOND);
  });

  it("is read seven times during an hour-long install", () => {
    let at = nextInstallLook(0, 0, undefined, CADENCE);
    let lookups = 0;
    while (at < 3600 * SECOND) {
      lookups++;
      at = nextInstallLook(0, lookups, at, CADENCE);
    }
    expect(lookups).toBe(7);
  });

  it("is looked at every followMs when followed by hand", () => {
    expect(nextInstallLook(0, 3, 50 * SECOND, { ...CADENCE, followMs: 5 * SECOND })).toBe(55 * SECOND);
  });
});
