import type { RevisionLocation } from "../world/codedeploy/records.js";
import type { World } from "../world/world.js";

/** The application the stories deploy: a tomcat service, in two releases. */
export const APPLICATION = "shop";
export const RELEASE_1: RevisionLocation = {
  revisionType: "S3",
  s3Location: {
    bucket: "shop-releases",
    key: "shop/shop-1.4.1.zip",
    bundleType: "zip",
    eTag: "9b2cf535f27731c974343645a3985328",
  },
};
export const RELEASE_2: RevisionLocation = {
  revisionType: "S3",
  s3Location: {
    bucket: "shop-releases",
    key: "shop/shop-1.4.2.zip",
    bundleType: "zip",
    eTag: "b1946ac92492d2347c6235b4d2611184",
  },
};
export const BROKEN_RELEASE: RevisionLocation = {
  revisionType: "S3",
  s3Location: {
    bucket: "shop-releases",
    key: "shop/shop-1.5.0-rc1.zip",
    bundleType: "zip",
    eTag: "591785b794601e212b260e25925636fd",
  },
};

/** An Auto Scaling group with its own CodeDeploy deployment group (and so CodeDeploy's launch hook). */
export function addGroupWithDeployments(
  world: World,
  spec: Parameters<World["autoScaling"]["createGroup"]>[0] & {
    deploymentConfigName?: string;
    autoRollback?: boolean;
  },
): string {
  world.autoScaling.createGroup(spec);
  if (!world.codeDeploy.applications.has(APPLICATION)) world.codeDeploy.createApplication(APPLICATION);
  const deploymentGroup = `${spec.name}-dg`;
  world.codeDeploy.createDeploymentGroup({
    applicationName: APPLICATION,
    name: deploymentGroup,
    autoScalingGroups: [spec.name],
    deploymentConfigName: spec.deploymentConfigName,
    autoRollbackConfiguration: spec.autoRollback
      ? { enabled: true, events: ["DEPLOYMENT_FAILURE"] }
      : undefined,
    lastSuccessfulRevision: RELEASE_1,
  });
  return `${APPLICATION}/${deploymentGroup}`;
}
