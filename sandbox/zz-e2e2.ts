import { createSandbox } from "./sandbox.js";

const t0 = Date.now();
const sb = await createSandbox({ seed: 7 });
const { world } = sb;
const REV = { revisionType: "S3", s3Location: { bucket: "b", key: "shop.zip", bundleType: "zip" } };
world.autoScaling.createGroup({ name: "api", maxSize: 10, image: { imageId: "ami-0new", bakedAgent: null } });
world.addRunningInstance("api", {
  agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
});
world.codeDeploy.createApplication("shop");
world.codeDeploy.createDeploymentGroup({
  applicationName: "shop",
  name: "api-dg",
  autoScalingGroups: ["api"],
  lastSuccessfulRevision: REV,
});
const svc = await sb.deployService({ groups: ["api"], deploymentGroups: ["shop/api-dg"] });
world.trace.subscribe((e) => {
  if (!e.kind.startsWith("event."))
    console.log(sb.elapsedSeconds().toFixed(0).padStart(5), e.kind, e.message);
});
world.codeDeploy.createDeployment({
  applicationName: "shop",
  deploymentGroupName: "api-dg",
  revision: { ...REV, s3Location: { ...REV.s3Location, key: "shop-2.zip" } },
  description: "release 2",
});
const ok = await sb.waitFor(
  () =>
    [...world.codeDeploy.deployments.values()].some(
      (d) => d.description?.includes("agentfix redeploy") && d.status === "Succeeded",
    ),
  { timeoutSeconds: 3600 },
);
console.log("ok", ok, "real ms", Date.now() - t0, "aws s", sb.elapsedSeconds());
console.log(sb.counters.calls, sb.counters.errors, world.errors);
for (const inv of svc.failure.invocations) console.log(JSON.stringify(inv).slice(0, 1500));
await sb.close();
