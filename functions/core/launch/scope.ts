// Which requests the launch path acts on: launches (into the group or its warm pool) of the groups in
// scope on our own hook, one request per instance, each with its hook resolved.
import { type LaunchConfig, inScope as named } from "../config.js";
import { DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, LAUNCH_TRANSITION } from "../contract.js";
import { SAME_START_MS } from "./action.js";
import { findLaunchActivities, findLaunchHooks } from "./lifecycle.js";
import type { LaunchRequest } from "./types.js";

/** Why a request is not ours to act on, or undefined when it is. */
export function outOfScope(request: LaunchRequest, config: LaunchConfig): string | undefined {
  if (request.transition && request.transition !== LAUNCH_TRANSITION)
    return `transition ${request.transition} is not a launch`;
  // A stage acts only on the groups it names (`*`: every group, said explicitly); empty: none.
  if (!named(config.TARGET_GROUPS, request.group))
    return `group ${request.group} is not in scope (TARGET_GROUPS)`;
  if (request.hook && config.LIFECYCLE_HOOK_NAME && !ourHookNames(config).includes(request.hook))
    return `hook ${request.hook} is not this service's hook (${config.LIFECYCLE_HOOK_NAME})`;
  if (request.destination && request.destination !== "AutoScalingGroup" && request.destination !== "WarmPool")
    return `destination ${request.destination} is not a launch into the group or its warm pool`;
  return undefined;
}

/** The stage's hook name, and its previous release's while groups move over. */
export function ourHookNames(
  config: Pick<LaunchConfig, "LIFECYCLE_HOOK_NAME" | "PREVIOUS_LIFECYCLE_HOOK_NAME">,
): string[] {
  return [config.LIFECYCLE_HOOK_NAME, config.PREVIOUS_LIFECYCLE_HOOK_NAME].filter(Boolean);
}

/**
 * The requests ours to act on, each with its hook and heartbeat timeout, and why the others are not.
 * Replays may leave the hook out: it is the group's one hook of ours. Unknown hooks (not described
 * yet, or cached before they were created) get the documented default heartbeat timeout.
 */
export async function inScope(
  requests: readonly LaunchRequest[],
  config: LaunchConfig,
): Promise<{ requests: Map<string, LaunchRequest>; skipped: [LaunchRequest, string][] }> {
  const skipped: [LaunchRequest, string][] = [];
  const work = new Map<string, LaunchRequest>();
  for (const request of requests) {
    const skip = outOfScope(request, config);
    const known = work.get(request.instanceId);
    if (skip) skipped.push([request, skip]);
    // A duplicate of an instance in the same batch is handled once: the newest launch wins, and of one
    // launch the event (it carries the token) wins over a sweep or replay.
    else if (!known || replaces(request, known)) work.set(request.instanceId, request);
  }
  for (const [instanceId, request] of work) {
    const names = config.LIFECYCLE_HOOK_NAME ? ourHookNames(config) : request.hook ? [request.hook] : [];
    const hooks = await findLaunchHooks(request.group, names);
    const hook = request.hook ? hooks.find((candidate) => candidate.name === request.hook) : hooks[0];
    const skip = request.hook
      ? undefined
      : hooks.length > 1
        ? `group ${request.group} has ${hooks.length} launch hooks of ours (${hooks.map((h) => h.name).join(", ")}); name one with lifecycleHookName`
        : !hook
          ? `group ${request.group} has no launch lifecycle hook of ours`
          : undefined;
    if (skip) {
      skipped.push([request, skip]);
      work.delete(instanceId);
      continue;
    }
    request.hook ??= hook?.name;
    request.heartbeatTimeoutSeconds = hook?.heartbeatTimeoutSeconds ?? DEFAULT_HEARTBEAT_TIMEOUT_SECONDS;
  }
  return { requests: work, skipped };
}

function replaces(request: LaunchRequest, known: LaunchRequest): boolean {
  const start = request.startedAt ?? 0;
  const knownStart = known.startedAt ?? 0;
  if (request.source !== known.source && Math.abs(start - knownStart) <= SAME_START_MS)
    return request.source === "event";
  return start >= knownStart;
}

/**
 * Sweeps and replays may carry no start time: it (and whether the instance leaves a warm pool) comes
 * from the group's scaling activities, so every deadline counts from the launch itself.
 */
export async function fillLaunchStarts(requests: readonly LaunchRequest[]): Promise<void> {
  const byGroup = new Map<string, LaunchRequest[]>();
  for (const request of requests.filter((candidate) => candidate.startedAt === undefined))
    byGroup.set(request.group, [...(byGroup.get(request.group) ?? []), request]);
  for (const [group, missing] of byGroup) {
    const launches = await findLaunchActivities(
      group,
      missing.map((request) => request.instanceId),
    );
    for (const request of missing) {
      const launch = launches.get(request.instanceId);
      if (!launch) continue;
      request.startedAt = launch.startedAt;
      request.origin ??= launch.origin;
    }
  }
}
