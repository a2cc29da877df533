import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  readTestEvents,
  testEventName,
  testEventSchemaContent,
  testEventSchemaName,
} from "../../stacks/test-events.js";

function eventsDirectory(files: Record<string, string>): string {
  const directory = mkdtempSync(join(tmpdir(), "agentfix-events-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(directory, name), content);
  return directory;
}

describe("console test events", () => {
  it("reads one function's events, named after the file, and ignores the others'", () => {
    const directory = eventsDirectory({
      "launch.replay.json": '{"instanceIds":["i-0aaa"],"autoScalingGroupName":"web"}',
      "launch.eventbridge.json": '{"source":"aws.autoscaling"}',
      "launch-notes.md": "not an event",
      "sweep.scheduled.json": "{}",
    });

    expect(readTestEvents(directory, "launch")).toEqual([
      { name: "eventbridge", value: { source: "aws.autoscaling" } },
      { name: "replay", value: { instanceIds: ["i-0aaa"], autoScalingGroupName: "web" } },
    ]);
  });

  it("keeps event names within what the console accepts", () => {
    expect(testEventName("warm pool: ec2 to warmpool (current shape)")).toBe("warm-pool-ec2-to-warmpool");
    expect(testEventName("replay_2")).toBe("replay_2");
    expect(testEventName("...")).toBe("-");
    expect(testEventName("")).toBe("event");
  });

  it("fails on an event file that is not JSON, naming it", () => {
    const directory = eventsDirectory({ "sweep.broken.json": "{" });
    expect(() => readTestEvents(directory, "sweep")).toThrow(/sweep\.broken\.json is not valid JSON/);
  });

  it("has no events for a function when the directory is missing", () => {
    expect(readTestEvents(join(tmpdir(), "agentfix-no-such-directory"), "launch")).toEqual([]);
  });

  it("writes the schema the Lambda console reads: OpenAPI 3 with the events as named examples", () => {
    expect(testEventSchemaName("agentfix-prod-launch")).toBe("_agentfix-prod-launch-schema");
    const content = JSON.parse(
      testEventSchemaContent([
        { name: "replay", value: { deploymentId: "d-1" } },
        { name: "eventbridge", value: { source: "aws.codedeploy" } },
      ]),
    );
    expect(content).toEqual({
      openapi: "3.0.0",
      info: { version: "1.0.0", title: "Event" },
      paths: {},
      components: {
        schemas: { Event: { type: "object" } },
        examples: {
          replay: { value: { deploymentId: "d-1" } },
          eventbridge: { value: { source: "aws.codedeploy" } },
        },
      },
    });
  });
});
