import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Lambda shareable test events live in the EventBridge schema registry `lambda-testevent-schemas`,
 * one schema per function named `_<function-name>-schema`, whose OpenAPI 3 content carries the
 * events under `components.examples.<name>.value`. This is the format the Lambda console reads and
 * writes, and the one AWS SAM CLI's `sam remote test-event` uses (samcli/lib/shared_test_events/
 * lambda_shared_test_event.py: registry, schema name and "OpenApi3" type):
 * https://docs.aws.amazon.com/lambda/latest/dg/testing-functions.html#creating-shareable-events
 */
export const TEST_EVENT_REGISTRY = "lambda-testevent-schemas";
export const TEST_EVENT_SCHEMA_TYPE = "OpenApi3";
/** The console accepts event names of letters, digits, '-' and '_', 25 characters at most. */
const MAX_EVENT_NAME_LENGTH = 25;

export interface TestEvent {
  name: string;
  value: unknown;
}

export function testEventSchemaName(functionName: string): string {
  return `_${functionName}-schema`;
}

/**
 * The sample events of one function: `events/<prefix>.<name>.json`, named after `<name>`.
 * A file that is not valid JSON fails the synth with its path.
 */
export function readTestEvents(directory: string, prefix: string): TestEvent[] {
  let files: string[];
  try {
    files = readdirSync(directory);
  } catch {
    return [];
  }
  return files
    .filter((file) => file.startsWith(`${prefix}.`) && file.endsWith(".json"))
    .sort()
    .map((file) => {
      const path = join(directory, file);
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(path, "utf8"));
      } catch (error) {
        throw new Error(`Test event ${path} is not valid JSON`, { cause: error });
      }
      return { name: testEventName(file.slice(prefix.length + 1, -".json".length)), value };
    });
}

export function testEventName(stem: string): string {
  return stem.replace(/[^A-Za-z0-9_-]+/g, "-").slice(0, MAX_EVENT_NAME_LENGTH) || "event";
}

/** The schema document the console expects, with the events as named examples. */
export function testEventSchemaContent(events: TestEvent[]): string {
  const examples = Object.fromEntries(events.map((event) => [event.name, { value: event.value }]));
  return JSON.stringify({
    openapi: "3.0.0",
    info: { version: "1.0.0", title: "Event" },
    paths: {},
    components: { schemas: { Event: { type: "object" } }, examples },
  });
}
