import type { Sandbox } from "../sandbox.js";
import type { ServiceDeployment } from "../service.js";
import { APPLICATION, addGroupWithDeployments, RELEASE_2 } from "./fleet.js";
import { isRedeploy } from "./measure.js";
import { waitUntilQuiet } from "./settle.js";
import { baseSandboxOptions, type Check, type Scenario, type ScenarioContext } from "./types.js";

/** One case's figures, beside the same fleet without the service (its association-only twin group). */
export interface FailOpenCase {
  name: string;
  /** Launches our hook abandoned for a fault not the instance's own, plus actions outside the stage. */
  harm: number;
  /** Share of the desired capacity InService at the end. */
  inServiceShare: number;
  inServiceShareWithout: number;
  /** Launches completed with ABANDON by our hook (by the function, its timeout or its deletion). */
  abandonedByOurHook: number;
  failedLaunchDeployments: number;
  failedLaunchDeploymentsWithout: number;
  /** What the case adds to say it passed. */
  detail: string;
  /** The case's own condition beside the figures (the deploy refused, the newer agent let in...). */
  ok: boolean;
}

/** The agent AWS publishes on release day, while a scale-out runs. */
export const RELEASED_AGENT = "1.8.2";
const PROD_PIN = "1.8.1";
/** Distributor is down this long during case 3's scale-out. */
const OUTAGE_SECONDS = 1800;
/** Case 4's package is gone this long after the deploy, then published again. */
const WITHDRAWN_SECONDS = 1200;
const MUTATING = [
  "SSM.SendCommand",
  "CodeDeploy.CreateDeployment",
  "AutoScaling.CompleteLifecycleAction",
  "AutoScaling.RecordLifecycleActionHeartbeat",
];
/** An AMI without an agent (as docs/deploy.md advises), and one whose agent 1.8.1 starts at boot. */
const BARE = { imageId: "ami-0base2026", bakedAgent: null };
const BAKED_181 = { imageId: "ami-0agent181", bakedAgent: { version: PROD_PIN, running: true } };

interface CaseFleet {
  group: string;
  twin: string;
  pair: string;
  twinPair: string;
  since: number;
}

/** A group and its twin: same image and deployment group shape; the twin has only an association. */
function fleet(
  sandbox: Sandbox,
  name: string,
  image: Parameters<Sandbox["world"]["autoScaling"]["createGroup"]>[0]["image"],
  association: { packageName: string; version: string } | null,
  maxSize: number,
): CaseFleet {
  const { world } = sandbox;
  const pair = addGroupWithDeployments(world, { name, maxSize, image });
  const twin = `${name}-without`;
  const twinPair = addGroupWithDeployments(world, { name: twin, maxSize, image });
  if (association) {
    world.associations.create({
      id: `association-${twin}`,
      groupNames: [twin],
      ...association,
      scheduleSeconds: 0,
    });
  }
  return { group: name, twin, pair, twinPair, since: world.now() };
}

function share(sandbox: Sandbox, group: string): number {
  const { world } = sandbox;
  const g = world.autoScaling.group(group);
  const inService = world.autoScaling
    .liveInstances(g)
    .filter((instance) => instance.lifecycleState === "InService").length;
  return g.desiredCapacity === 0 ? 1 : Math.round((inService / g.desiredCapacity) * 1000) / 1000;
}

function failedLaunchDeployments(sandbox: Sandbox, pair: string, since: number): number {
  return [...sandbox.world.codeDeploy.deployments.values()].filter(
    (deployment) =>
      deployment.creator === "autoscaling" &&
      deployment.createTime >= since &&
      `${deployment.applicationName}/${deployment.deploymentGroupName}` === pair &&
      deployment.status === "Failed",
  ).length;
}

function abandonedBy(sandbox: Sandbox, hookName: string, groups: string[], since: number): number {
  return sandbox.world.autoScaling.actions.filter(
    (action) =>
      action.hookName === hookName &&
      groups.includes(action.groupName) &&
      action.startedAt >= since &&
      action.completed?.result === "ABANDON",
  ).length;
}

/**
 * What a stage did outside what it names: mutating calls by a stage that names nothing, its install
 * document sent to instances outside its groups, its redeploys in deployment groups it does not name.
 */
function outsideStage(sandbox: Sandbox, service: ServiceDeployment): number {
  const { world } = sandbox;
  const { stage, groups, deploymentGroups } = service.config;
  const prefix = `agentfix-${stage}-`;
  let count = 0;
  if (groups.length === 0 && deploymentGroups.length === 0) {
    for (const [caller, calls] of Object.entries(sandbox.counters.byCaller)) {
      if (!caller.startsWith(prefix)) continue;
      for (const operation of MUTATING) count += calls[operation] ?? 0;
    }
  }
  const document = service.wiring.documents.install.name;
  for (const command of world.ssm.commands.values()) {
    if (command.documentName !== document) continue;
    for (const invocation of command.invocations) {
      const group = world.instances.get(invocation.instanceId)?.groupName ?? "";
      if (!groups.includes("*") && !groups.includes(group)) count++;
    }
  }
  for (const deployment of world.codeDeploy.deployments.values()) {
    if (!isRedeploy(deployment.description) || !deployment.description?.includes(`agentfix ${stage} `))
      continue;
    const pair = `${deployment.applicationName}/${deployment.deploymentGroupName}`;
    if (!deploymentGroups.includes("*") && !deploymentGroups.includes(pair)) count++;
  }
  return count;
}

async function settle(
  context: ScenarioContext,
  services: ServiceDeployment[],
  fleets: CaseFleet[],
): Promise<boolean> {
  return waitUntilQuiet(
    context.sandbox,
    services,
    {
      groups: fleets.flatMap((f) => [f.group, f.twin]),
      deploymentGroups: fleets.flatMap((f) => [f.pair, f.twinPair]),
    },
    { timeoutSeconds: 6 * 3600, quietSeconds: 120 },
  );
}

function figures(
  sandbox: Sandbox,
  name: string,
  service: ServiceDeployment | undefined,
  f: CaseFleet,
  extra: { outside?: number; ok: boolean; detail: string },
): FailOpenCase {
  const abandoned = service ? abandonedBy(sandbox, service.config.hook.name, [f.group], f.since) : 0;
  const outside = (service ? outsideStage(sandbox, service) : 0) + (extra.outside ?? 0);
  return {
    name,
    harm: abandoned + outside,
    inServiceShare: share(sandbox, f.group),
    inServiceShareWithout: share(sandbox, f.twin),
    abandonedByOurHook: abandoned,
    failedLaunchDeployments: failedLaunchDeployments(sandbox, f.pair, f.since),
    failedLaunchDeploymentsWithout: failedLaunchDeployments(sandbox, f.twinPair, f.since),
    ok: extra.ok,
    detail: extra.detail,
  };
}

/** 1. A personal stage that names nothing, deployed beside prod while a prod deployment fails. */
async function personalStage(context: ScenarioContext, size: number): Promise<FailOpenCase> {
  const { sandbox, note, deploy } = context;
  const { world } = sandbox;
  const f = fleet(
    sandbox,
    "prod-web",
    BARE,
    { packageName: "AWSCodeDeployAgent", version: PROD_PIN },
    size * 3,
  );
  world.addRunningInstance("prod-web", {
    agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
  });
  world.addRunningInstance(f.twin, {
    agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
  });
  const prod = await deploy(
    { groups: ["prod-web"], deploymentGroups: [f.pair], agent: { version: PROD_PIN } },
    { stage: "prod" },
  );
  // With no entry at all the stage would deploy nothing that acts, and synth refuses it: the refusal
  // is part of the story. Alice's only setting is then an association on her own instances.
  let refusal = "";
  try {
    await deploy({}, { stage: "alice" });
  } catch (error) {
    refusal = String((error as Error).message)
      .split("\n")
      .slice(1)
      .join(" ")
      .trim();
  }
  note(
    `fail-open 1: stage alice with no config entry: ${refusal ? `refused (${refusal.slice(0, 100)}...)` : "deployed"}`,
  );
  const alice = await deploy(
    { association: { target: { key: "tag:Name", values: ["alice-dev"] } } },
    { stage: "alice" },
  );
  note(
    `fail-open 1: stage alice (no groups, no deploymentGroups: ${alice.has.launch || alice.has.failure ? "paths deployed!" : "no launch or failure path"}) beside prod (${f.pair}, pinned ${PROD_PIN}); a release to prod fails on agent 1.7.1 while prod-web scales out to ${size + 1}`,
  );
  const release = world.codeDeploy.createDeployment({
    applicationName: APPLICATION,
    deploymentGroupName: "prod-web-dg",
    revision: RELEASE_2,
    description: "release 1.4.2",
  });
  world.codeDeploy.createDeployment({
    applicationName: APPLICATION,
    deploymentGroupName: "prod-web-without-dg",
    revision: RELEASE_2,
    description: "release 1.4.2",
  });
  await sandbox.waitFor(() => release.status === "Failed" || release.status === "Succeeded", {
    timeoutSeconds: 3600,
  });
  world.autoScaling.setDesiredCapacity("prod-web", size + 1);
  world.autoScaling.setDesiredCapacity(f.twin, size + 1);
  await settle(context, [prod, alice], [f]);
  const aliceCalls = Object.entries(sandbox.counters.byCaller)
    .filter(([caller]) => caller.startsWith("agentfix-alice-"))
    .reduce((sum, [, calls]) => sum + Object.values(calls).reduce((a, b) => a + b, 0), 0);
  const redeploys = [...world.codeDeploy.deployments.values()].filter((d) => isRedeploy(d.description));
  return figures(sandbox, "personal stage beside prod", prod, f, {
    outside: outsideStage(sandbox, alice),
    ok:
      aliceCalls === 0 &&
      release.status === "Failed" &&
      redeploys.every((d) => d.description?.includes("agentfix prod ")),
    detail: `alice made ${aliceCalls} AWS calls; prod's release ${release.id} ${release.status}, redeployed by ${redeploys.map((d) => `${d.id} ${d.status} (${d.description})`).join(", ") || "nobody"}`,
  });
}

/** 2. Release day: a newer agent is published mid-scale-out on a stage taking the latest. */
async function releaseDay(context: ScenarioContext, size: number): Promise<FailOpenCase> {
  const { sandbox, note, deploy } = context;
  const { world } = sandbox;
  const f = fleet(sandbox, "release-web", BARE, { packageName: "AWSCodeDeployAgent", version: "" }, size * 4);
  const dev = await deploy({ groups: ["release-web"], deploymentGroups: [f.pair] }, { stage: "dev" });
  note(
    `fail-open 2: release-web (stage dev, latest agent) scales out to ${size}; AWS publishes ${RELEASED_AGENT} 60 s later, and the group scales to ${2 * size} at 120 s`,
  );
  world.ssm.publishPackageVersion("AWSCodeDeployAgent", RELEASED_AGENT, { atSeconds: 60 });
  world.autoScaling.setDesiredCapacity("release-web", size);
  world.autoScaling.setDesiredCapacity(f.twin, size);
  await sandbox.waitFor(() => false, { timeoutSeconds: 120, pollSeconds: 10 });
  world.autoScaling.setDesiredCapacity("release-web", 2 * size);
  world.autoScaling.setDesiredCapacity(f.twin, 2 * size);
  await settle(context, [dev], [f]);
  const live = world.autoScaling.liveInstances(world.autoScaling.group("release-web"));
  const newer = live.filter(
    (i) => i.lifecycleState === "InService" && i.agent.version === RELEASED_AGENT && i.agent.running,
  );
  const verified = live.filter((i) => i.milestones.verified !== undefined);
  return figures(sandbox, "release day", dev, f, {
    ok: newer.length > 0 && verified.length === live.length,
    detail: `${newer.length}/${live.length} in service run ${RELEASED_AGENT}; ${verified.length}/${live.length} verified`,
  });
}

/** 3. Distributor down for 30 minutes during a scale-out. */
async function distributorDown(context: ScenarioContext, size: number): Promise<FailOpenCase> {
  const { sandbox, note, deploy } = context;
  const { world } = sandbox;
  const f = fleet(sandbox, "outage-web", BARE, { packageName: "AWSCodeDeployAgent", version: "" }, size * 2);
  const stage = await deploy({ groups: ["outage-web"], deploymentGroups: [f.pair] }, { stage: "outage" });
  note(
    `fail-open 3: Distributor down for ${OUTAGE_SECONDS / 60} minutes while outage-web scales out to ${size}`,
  );
  world.ssm.distributorOutage({ forSeconds: OUTAGE_SECONDS });
  world.autoScaling.setDesiredCapacity("outage-web", size);
  world.autoScaling.setDesiredCapacity(f.twin, size);
  await settle(context, [stage], [f]);
  const failedOpen = world.autoScaling.actions.filter(
    (a) =>
      a.hookName === stage.config.hook.name && a.startedAt >= f.since && a.completed?.result === "CONTINUE",
  ).length;
  const failedInstalls = world.trace.entries.filter(
    (e) => e.at >= f.since && e.kind === "hook.completed" && e.groupName === "outage-web",
  ).length;
  return figures(sandbox, "Distributor down for 30 minutes", stage, f, {
    ok: failedOpen > 0,
    detail: `${failedOpen} launches completed CONTINUE by our hook (${failedInstalls} hook completions in the group)`,
  });
}

/** 4. The 2.x package missing in the Region: the deploy is refused; then a package gone after the deploy. */
async function packageMissing(context: ScenarioContext, size: number): Promise<FailOpenCase[]> {
  const { sandbox, note, deploy } = context;
  const { world } = sandbox;
  const v2 = world.ssm.packageVersions.AWSCodeDeployAgentV2 ?? [];
  world.ssm.withdrawPackage("AWSCodeDeployAgentV2");
  const a = fleet(sandbox, "v2-web", BAKED_181, null, size * 2);
  let refusal = "";
  try {
    await deploy(
      { groups: ["v2-web"], deploymentGroups: [a.pair], agent: { package: "AWSCodeDeployAgentV2" } },
      { stage: "v2" },
    );
  } catch (error) {
    refusal = String((error as Error).message);
  }
  note(`fail-open 4a: deploying stage v2 with agent.package AWSCodeDeployAgentV2: ${refusal || "deployed!"}`);
  world.autoScaling.setDesiredCapacity("v2-web", size);
  world.autoScaling.setDesiredCapacity(a.twin, size);
  await settle(context, [], [a]);
  const hooks = [...world.autoScaling.group("v2-web").hooks.keys()].filter((hook) =>
    hook.startsWith("agentfix-"),
  );
  const refused = figures(sandbox, "2.x package missing: deploy refused", undefined, a, {
    ok: /agent\.package/.test(refusal) && hooks.length === 0,
    detail: `deploy ${refusal ? `refused: ${refusal.slice(0, 120)}` : "went ahead"}; hooks of ours on v2-web: ${hooks.length}`,
  });
  for (const version of v2) world.ssm.publishPackageVersion("AWSCodeDeployAgentV2", version);

  const b = fleet(
    sandbox,
    "gone-web",
    BAKED_181,
    { packageName: "AWSCodeDeployAgent", version: RELEASED_AGENT },
    size * 2,
  );
  const gone = await deploy(
    { groups: ["gone-web"], deploymentGroups: [b.pair], agent: { version: RELEASED_AGENT } },
    { stage: "gone" },
  );
  note(
    `fail-open 4b: AWSCodeDeployAgent withdrawn for ${WITHDRAWN_SECONDS / 60} minutes after stage gone (pinned ${RELEASED_AGENT}) deployed; gone-web (agent 1.8.1 baked) scales out to ${size}`,
  );
  world.ssm.withdrawPackage("AWSCodeDeployAgent", { forSeconds: WITHDRAWN_SECONDS });
  world.autoScaling.setDesiredCapacity("gone-web", size);
  world.autoScaling.setDesiredCapacity(b.twin, size);
  await settle(context, [gone], [b]);
  // The cases after this one need the package: AWS publishes it again.
  await sandbox.waitFor(() => world.ssm.packageVersions.AWSCodeDeployAgent !== undefined, {
    timeoutSeconds: WITHDRAWN_SECONDS + 60,
  });
  const notFound = world.ssm.invocations.filter(
    (invocation) =>
      world.instances.get(invocation.instanceId)?.groupName === "gone-web" &&
      /not found/.test(
        `${invocation.output}${invocation.errorOutput}${JSON.stringify(invocation.steps ?? [])}`,
      ),
  ).length;
  const continued = world.autoScaling.actions.filter(
    (action) => action.hookName === gone.config.hook.name && action.completed?.result === "CONTINUE",
  ).length;
  return [
    refused,
    figures(sandbox, "package gone after deploy", gone, b, {
      ok: notFound > 0 && continued > 0,
      detail: `${notFound} installs failed with "not found"; ${continued} launches completed CONTINUE by our hook`,
    }),
  ];
}

/** 5. Instances that never register with SSM, on a stage that opted into ABANDON. */
async function neverRegister(context: ScenarioContext, size: number): Promise<FailOpenCase> {
  const { sandbox, note, deploy } = context;
  const { world } = sandbox;
  const image = { ...BAKED_181, imageId: "ami-0no-ssm-profile", neverRegistersProbability: 1 };
  const f = fleet(sandbox, "noreg-web", image, { packageName: "AWSCodeDeployAgent", version: "" }, size * 2);
  const stage = await deploy(
    { groups: ["noreg-web"], deploymentGroups: [f.pair], launch: { failureResult: "ABANDON" } },
    { stage: "noreg" },
  );
  note(
    `fail-open 5: noreg-web's instance profile lacks AmazonSSMManagedInstanceCore (never Online); launch.failureResult ABANDON; scales out to ${size}`,
  );
  world.autoScaling.setDesiredCapacity("noreg-web", size);
  world.autoScaling.setDesiredCapacity(f.twin, size);
  await settle(context, [stage], [f]);
  const waited = world.autoScaling.actions
    .filter((a) => a.hookName === stage.config.hook.name && a.completed?.result === "CONTINUE")
    .map((a) => Math.round((a.completed!.at - a.startedAt) / 1000));
  return figures(sandbox, "instances that never register", stage, f, {
    ok:
      waited.length >= size &&
      waited.every((seconds) => seconds >= stage.config.launch.registrationTimeoutSeconds),
    detail: `${waited.length} launches completed CONTINUE after ${Math.min(...waited)}-${Math.max(...waited)} s (registration timeout ${stage.config.launch.registrationTimeoutSeconds} s)`,
  });
}

/** 6. A stack update removes a group while its launches wait on our hook. */
async function groupRemoved(context: ScenarioContext, size: number): Promise<FailOpenCase> {
  const { sandbox, note, deploy } = context;
  const { world } = sandbox;
  // Never Online: the launches wait on our hook for the registration timeout, long enough to update.
  const image = { ...BAKED_181, imageId: "ami-0slow-ssm", neverRegistersProbability: 1 };
  const keep = addGroupWithDeployments(world, { name: "keep-web", maxSize: 2, image: BAKED_181 });
  const f = fleet(sandbox, "shrink-web", image, { packageName: "AWSCodeDeployAgent", version: "" }, size * 2);
  const config = { deploymentGroups: [keep, f.pair], sweep: { enabled: false } };
  const stage = await deploy({ ...config, groups: ["keep-web", "shrink-web"] }, { stage: "shrink" });
  const hook = stage.config.hook.name;
  world.autoScaling.setDesiredCapacity("shrink-web", size);
  world.autoScaling.setDesiredCapacity(f.twin, size);
  const waiting = () =>
    world.autoScaling.actions.filter(
      (a) => a.groupName === "shrink-web" && a.hookName === hook && !a.completed,
    );
  await sandbox.waitFor(() => waiting().length === size, { timeoutSeconds: 600 });
  const held = waiting().length;
  note(
    `fail-open 6: a stack update removes shrink-web from stage shrink while ${held} launches wait on ${hook}`,
  );
  const update = await sandbox.updateService(stage, { ...config, groups: ["keep-web"] });
  await settle(context, [stage], [f]);
  const continued = update.drained.flatMap((report) => report.continued).length;
  return figures(sandbox, "group removed while its launches wait", stage, f, {
    ok: held === size && continued === held && !world.autoScaling.group("shrink-web").hooks.has(hook),
    detail: `${held} waiting on our hook when the update ran; the drain completed ${continued} with CONTINUE, then the hook was deleted`,
  });
}

/**
 * Fail open, case by case: a fault that is not the instance's own never costs the fleet capacity.
 * Each case's fleet ends no worse than its twin group without the service's hook (the same image and
 * faults, the agent from a State Manager association alone): in-service share, launches abandoned by
 * our hook (0), failed launch deployments; and `harm` (those abandons plus actions outside the stage)
 * is 0. The cases run one after another in one account.
 */
export const failOpen: Scenario = {
  name: "fail-open",
  title:
    "Fail open: a personal stage, release day, Distributor down, a missing package, no SSM, a removed group",
  defaultInstances: 100,
  sandboxOptions: (options, instances) => baseSandboxOptions(options, instances),
  async play(context) {
    const { instances, note } = context;
    // Case 3 is the large scale-out; the others need only a few instances each.
    const small = Math.max(2, Math.min(instances, 4));
    const cases: FailOpenCase[] = [];
    const services: ServiceDeployment[] = [];
    const deploy: ScenarioContext["deploy"] = async (config, options) => {
      const service = await context.deploy(config, options);
      services.push(service);
      return service;
    };
    const ctx = { ...context, deploy };
    const since = context.sandbox.world.now();
    cases.push(await personalStage(ctx, small));
    cases.push(await releaseDay(ctx, small));
    cases.push(await distributorDown(ctx, instances));
    cases.push(...(await packageMissing(ctx, small)));
    cases.push(await neverRegister(ctx, small));
    cases.push(await groupRemoved(ctx, small));
    for (const c of cases) {
      note(
        `fail-open: ${c.name}: harm ${c.harm}, in service ${c.inServiceShare} (without ${c.inServiceShareWithout}), abandoned by our hook ${c.abandonedByOurHook}, failed launch deployments ${c.failedLaunchDeployments} (without ${c.failedLaunchDeploymentsWithout})`,
      );
    }
    const release = services.find((service) => service.config.stage === "dev")!;
    return {
      service: release,
      services,
      scope: {
        groups: ["release-web"],
        hookName: release.config.hook.name,
        deploymentGroups: release.config.deploymentGroups,
        since,
      },
      extra: () => ({
        cases: cases.map(({ detail: _detail, ok: _ok, ...figures }) => figures),
      }),
      checks: () =>
        cases.map(
          (c): Check => ({
            name: `${c.name}: no harm, none abandoned by our hook, in service no worse than without, failed launch deployments no more than without`,
            ok:
              c.ok &&
              c.harm === 0 &&
              c.abandonedByOurHook === 0 &&
              c.inServiceShare >= c.inServiceShareWithout &&
              c.failedLaunchDeployments <= c.failedLaunchDeploymentsWithout,
            detail: `harm ${c.harm}; in service ${c.inServiceShare} (without ${c.inServiceShareWithout}); abandoned by our hook ${c.abandonedByOurHook}; failed launch deployments ${c.failedLaunchDeployments} (without ${c.failedLaunchDeploymentsWithout}); ${c.detail}`,
          }),
        ),
    };
  },
};
