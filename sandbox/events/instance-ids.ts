/**
 * The EC2 instance ids an event or a Lambda payload is about, wherever the shape keeps them: a launch
 * lifecycle event or notification (`EC2InstanceId`), Run Command's status change (`instance-id`),
 * CodeDeploy's instance state change (`instanceId`), the launch path's replay payload
 * (`instanceIds`), and SQS records whose body holds any of these. The trace names the instances a
 * dropped event or a cut-off invocation concerned, so the figures can follow each fault to its end.
 */
const SINGLE_KEYS = new Set(["EC2InstanceId", "instance-id", "instanceId"]);
const MAXIMUM_DEPTH = 6;

export function instanceIdsIn(payload: unknown): string[] {
  const found = new Set<string>();
  collect(payload, found, 0);
  return [...found];
}

function collect(value: unknown, found: Set<string>, depth: number): void {
  if (depth > MAXIMUM_DEPTH || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    for (const item of value) collect(item, found, depth + 1);
    return;
  }
  for (const [key, member] of Object.entries(value)) {
    if (SINGLE_KEYS.has(key) && typeof member === "string" && member.startsWith("i-")) found.add(member);
    else if (key === "instanceIds" && Array.isArray(member)) {
      for (const id of member) if (typeof id === "string" && id.startsWith("i-")) found.add(id);
    } else if (key === "body" && typeof member === "string") collect(parseJson(member), found, depth + 1);
    else collect(member, found, depth + 1);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // An SQS body that is not JSON names no instance.
    return undefined;
  }
}
