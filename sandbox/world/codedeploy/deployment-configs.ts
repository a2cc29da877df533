// Deployment configurations: how many instances a deployment takes at a time, and when it stops.
// https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html

/** The configuration a deployment group gets when it names none. */
export const ONE_AT_A_TIME = "CodeDeployDefault.OneAtATime";

/**
 * OneAtATime deploys to one instance after the other and stops at the first failed one (the rest are
 * Skipped); every other configuration here deploys to all instances at once.
 */
export function deploysOneAtATime(configName: string): boolean {
  return configName === ONE_AT_A_TIME;
}
